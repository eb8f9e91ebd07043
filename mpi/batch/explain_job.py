"""`mpi explain`: the waterfall of one pair of records from input files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from mpi.batch.io import parse_mapping
from mpi.batch.local import JobOptions, prepare, train
from mpi.batch.progress import SilentProgress
from mpi.errors import InputError
from mpi.rules.loader import default_rules_path, load_parameters, parameters_path_for


def explain_records(
    inputs: Sequence[Path],
    left_id: str,
    right_id: str,
    rules_path: Path | None,
    model_path: Path | None,
    map_pairs: Sequence[str],
    mapping_file: Path | None,
) -> dict[str, Any]:
    options = JobOptions(inputs=inputs, rules_path=rules_path, mapping=parse_mapping(map_pairs, mapping_file))
    prepared = prepare(options, SilentProgress())
    ids = prepared.table.frame["record_id"].to_numpy(dtype=object)
    positions = {}
    for name, wanted in (("--left", left_id), ("--right", right_id)):
        hits = np.flatnonzero(ids == wanted)
        if hits.size == 0:
            raise InputError(", ".join(map(str, inputs)), f"{name}: no record with record_id {wanted!r}")
        positions[name] = int(hits[0])
    beside = parameters_path_for(rules_path or default_rules_path())
    if model_path is not None:
        params = load_parameters(model_path, prepared.rules)
    elif beside.exists():
        params = load_parameters(beside, prepared.rules)
    else:
        params, _ = train(prepared, link_only=False, supervised=False, progress=SilentProgress())
    scorer = prepared.engine.scorer(prepared.records, params)
    explanation = prepared.engine.explain(scorer, positions["--left"], positions["--right"])
    thresholds = prepared.rules.thresholds
    p = explanation.match_probability
    levels = scorer.levels(np.array([positions["--left"]]), np.array([positions["--right"]]))
    capped = not bool(scorer.linkable(levels)[0])
    if p >= thresholds.link and not capped:
        decision = "link"
    elif p >= thresholds.review:
        decision = "review (conflicting identity traits)" if capped and p >= thresholds.link else "review"
    else:
        decision = "no match"
    return {**asdict(explanation), "decision": decision, "left": left_id, "right": right_id}
