"""The scoring step's progress bar of ``mpi dedup`` counts up to its total, whatever several
blocking rules have in common."""

from __future__ import annotations

from pathlib import Path

from mpi.batch.local import JobOptions, run_dedup
from mpi.rules.loader import default_rules_path, parameters_path_for

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "synthetic"


class RecordedSteps:
    def __init__(self) -> None:
        self.steps: list[tuple[str, int | None, list[int]]] = []
        self.finished: list[str] = []

    def start(self, step: str, total: int | None = None) -> None:
        self.steps.append((step, total, []))

    def advance(self, amount: int) -> None:
        self.steps[-1][2].append(amount)

    def note(self, message: str) -> None:
        pass

    def finish(self) -> None:
        self.finished.append(self.steps[-1][0])


def test_the_scoring_bar_reaches_its_total_before_the_step_finishes() -> None:
    progress = RecordedSteps()
    model = parameters_path_for(default_rules_path())
    options = JobOptions(inputs=[SAMPLE / "records.csv"], model_path=model, chunk_pairs=5_000)
    summary = run_dedup(options, progress)

    (total, advances) = next((t, a) for s, t, a in progress.steps if s == "scoring candidate pairs")
    scored = summary["blocking"]["candidate_pairs"]
    assert total is not None and total > scored  # rules share pairs, each scored once
    assert len(advances) > 10 and all(amount >= 0 for amount in advances)
    assert sum(advances) == total
