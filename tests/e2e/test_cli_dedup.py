"""`mpi dedup` end to end: what a user gets in the output folder, for each way of calling it."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from mpi.cli.main import app
from mpi.domain.identifiers import complete_matricule
from mpi.matching.comparators import build_comparator
from mpi.rules.columns import SOURCE_COLUMN
from mpi.rules.loader import default_rules_path, load_rules

PAIR_COLUMNS = ["record_id_l", "record_id_r", "match_probability", "match_weight", "decision"]
FAMILY = (
    "Schmit", "Weber", "Muller", "Wagner", "Hoffmann", "Thill", "Ferreira", "Da Silva", "Kieffer", "Reuter",
    "Schroeder", "Klein", "Majerus", "Goergen", "Ries", "Faber", "Becker", "Meyer", "Braun", "Lentz",
    "Santos", "Pereira", "Rodrigues", "Martins", "Gomes", "Lopes", "Marques", "Kremer", "Welter", "Steffen",
)  # fmt: skip
GIVEN = (
    "Jean", "Marie", "Paul", "Anne", "Luc", "Sophie", "Marc", "Laura", "Tom", "Lisa", "Carlos", "Ana",
    "Pedro", "Sara", "Julie", "Pierre", "Claude", "Michel", "Nadine", "Joao", "Rita", "Georges", "Chantal",
    "Yves", "Monique", "Ben", "Lea", "Max", "Emma", "Nicolas",
)  # fmt: skip
CITY = ("Luxembourg", "Esch-sur-Alzette", "Differdange", "Dudelange", "Ettelbruck", "Diekirch", "Wiltz")
NICKNAMES = {"Nicolas": "Nico", "Pierre": "Pierrot", "Georges": "Jos"}
RULES = load_rules()
DEFAULT_RULES_TEXT = default_rules_path().read_text(encoding="utf-8")
runner = CliRunner()


def population(n_people: int, seed: int) -> pd.DataFrame:
    """Batch-schema records of ``n_people`` persons, a third of them seen two or three times.

    Copies carry the errors of DOMAIN.md's error model: one typing error in a name, a nickname,
    a day/month swap, a missing matricule. ``person_id`` is the ground truth.
    """
    rng = np.random.default_rng(seed)
    rows: list[dict[str, str]] = []
    for person in range(n_people):
        year, month, day = int(rng.integers(1930, 2015)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
        original = {
            "family_name": str(rng.choice(FAMILY)),
            "given_names": str(rng.choice(GIVEN)),
            "birth_date": f"{year:04d}-{month:02d}-{day:02d}",
            "sex": str(rng.choice(["M", "F"])),
            "national_id": complete_matricule(
                f"{year:04d}{month:02d}{day:02d}{int(rng.integers(0, 1000)):03d}"
            ),
            "postcode": str(int(rng.integers(1000, 9999))),
            "city": str(rng.choice(CITY)),
            "house_number": str(int(rng.integers(1, 200))),
        }
        copies = 1 + int(rng.random() < 0.35) + int(rng.random() < 0.1)
        for copy in range(copies):
            record = dict(original)
            if copy:
                error = int(rng.integers(0, 4))
                if error == 0:
                    name = record["family_name"]
                    cut = int(rng.integers(1, len(name)))
                    record["family_name"] = name[:cut] + name[cut + 1 :]
                elif error == 1:
                    record["given_names"] = NICKNAMES.get(
                        record["given_names"], record["given_names"].upper()
                    )
                elif error == 2 and day <= 12:
                    record["birth_date"] = f"{year:04d}-{day:02d}-{month:02d}"
                if rng.random() < 0.3:
                    record["national_id"] = ""
            rows.append(
                {
                    "record_id": f"R{len(rows):04d}",
                    "source": f"S{copy}",
                    **record,
                    "person_id": f"P{person:04d}",
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    frame = population(160, seed=3)
    frame.drop(columns="person_id").to_csv(folder / "records.csv", index=False)
    frame[["record_id", "person_id"]].to_csv(folder / "truth.csv", index=False)
    frame.to_csv(folder / "records_with_truth.csv", index=False)
    first = frame["source"] == "S0"
    frame[first].drop(columns="person_id").to_csv(folder / "hospital.csv", index=False)
    frame[~first].drop(columns="person_id").to_csv(folder / "lab.csv", index=False)
    return folder


def missing_sources(columns: tuple[str, ...], present: set[str]) -> list[str]:
    """The input columns ``columns`` (standardised names) come from that ``present`` lacks, sorted."""
    return sorted({SOURCE_COLUMN[c] for c in columns} - present)


def expected_dropped_comparisons(present: set[str]) -> dict[str, list[str]]:
    comparators = (build_comparator(c) for c in RULES.comparisons)
    return {
        c.name: missing_sources(c.required, present)
        for c in comparators
        if c.usable_with(lambda column: SOURCE_COLUMN[column] in present)
    }


def expected_dropped_blocking_rules(present: set[str]) -> set[str]:
    return {rule.name for rule in RULES.blocking.rules if missing_sources(rule.keys, present)}


def input_columns(path: Path) -> set[str]:
    return set(pd.read_csv(path, nrows=0).columns)


def dedup(*args: str | Path) -> Result:
    result = runner.invoke(app, ["dedup", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def read_summary(out: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return summary


def read_pairs(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "pairs.csv", dtype={"record_id_l": str, "record_id_r": str})


def pair_set(pairs: pd.DataFrame) -> set[frozenset[str]]:
    return {frozenset(p) for p in zip(pairs["record_id_l"], pairs["record_id_r"], strict=True)}


@pytest.fixture(scope="module")
def default_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    out = tmp_path_factory.mktemp("run") / "out"
    return out, dedup(data / "records.csv", "--truth", data / "truth.csv", "--out", out)


STRICT_TRAITS = ("given_names", "birth_date", "sex", "national_id")


def conflicting_strict_traits(records: pd.DataFrame, left: pd.Series, right: pd.Series) -> pd.Series:
    """Per pair: do the raw records hold two different values of a strict identity trait."""
    by_id = records.set_index("record_id")
    a = by_id.loc[left.to_numpy(), list(STRICT_TRAITS)].reset_index(drop=True)
    b = by_id.loc[right.to_numpy(), list(STRICT_TRAITS)].reset_index(drop=True)
    differ = a.notna() & b.notna() & (a != b)
    return pd.Series(differ.any(axis=1).to_numpy(), index=left.index)


def test_pairs_file_has_the_documented_columns_and_decisions(
    data: Path, default_run: tuple[Path, Result]
) -> None:
    out, _ = default_run
    pairs = read_pairs(out)
    assert list(pairs.columns) == PAIR_COLUMNS
    assert len(pairs) > 0
    assert set(pairs["decision"]) <= {"link", "review"}
    link = pairs["decision"] == "link"
    assert (pairs.loc[link, "match_probability"] >= RULES.thresholds.link).all()
    # A pair scored above the link threshold stays in review only when a strict trait conflicts.
    held = pairs[~link & (pairs["match_probability"] >= RULES.thresholds.link)]
    records = pd.read_csv(data / "records.csv", dtype=str)
    assert conflicting_strict_traits(records, held["record_id_l"], held["record_id_r"]).all()
    assert (pairs["match_probability"] >= RULES.thresholds.review).all()
    assert (pairs["record_id_l"] != pairs["record_id_r"]).all()
    assert len(pair_set(pairs)) == len(pairs)  # each pair once
    probability = 1 / (1 + 2.0 ** -pairs["match_weight"])
    np.testing.assert_allclose(pairs["match_probability"], probability, atol=1e-4)


def test_clusters_cover_every_record_once(data: Path, default_run: tuple[Path, Result]) -> None:
    out, _ = default_run
    records = pd.read_csv(data / "records.csv", dtype=str)
    clusters = pd.read_csv(out / "clusters.csv", dtype=str)
    assert list(clusters.columns) == ["record_id", "cluster_id"]
    assert sorted(clusters["record_id"]) == sorted(records["record_id"])
    assert set(clusters["cluster_id"]) <= set(records["record_id"])
    # Linked records share a cluster.
    pairs = read_pairs(out)
    cluster_of = dict(zip(clusters["record_id"], clusters["cluster_id"], strict=True))
    links = pairs[pairs["decision"] == "link"]
    assert all(
        cluster_of[a] == cluster_of[b]
        for a, b in zip(links["record_id_l"], links["record_id_r"], strict=True)
    )


def test_summary_counts_agree_with_the_files(data: Path, default_run: tuple[Path, Result]) -> None:
    out, _ = default_run
    summary = read_summary(out)
    pairs = read_pairs(out)
    clusters = pd.read_csv(out / "clusters.csv", dtype=str)
    counts = summary["counts"]
    assert counts["records"] == len(clusters)
    assert counts["links"] == int((pairs["decision"] == "link").sum())
    assert counts["reviews"] == int((pairs["decision"] == "review").sum())
    assert counts["clusters"] == clusters["cluster_id"].nunique()
    assert counts["candidate_pairs"] >= len(pairs)
    sizes = clusters["cluster_id"].value_counts().value_counts()
    assert summary["cluster_sizes"] == {str(size): int(n) for size, n in sizes.items()}
    assert summary["mode"] == "dedup"
    assert summary["rules"] == RULES.stamp
    assert summary["thresholds"] == {"link": RULES.thresholds.link, "review": RULES.thresholds.review}


def test_summary_has_timings_for_each_step(default_run: tuple[Path, Result]) -> None:
    timings = read_summary(default_run[0])["timings_seconds"]
    assert {"read", "standardise", "train", "blocking", "score", "cluster", "write", "total"} <= set(timings)
    assert all(value >= 0 for value in timings.values())
    assert timings["total"] >= timings["score"]


def test_summary_has_blocking_statistics_with_pair_completeness(
    data: Path, default_run: tuple[Path, Result]
) -> None:
    summary = read_summary(default_run[0])
    blocking = summary["blocking"]
    rules = {rule["name"]: rule for rule in blocking["rules"]}
    assert "matricule" in rules
    assert sum(rule["pairs"] for rule in rules.values()) == summary["counts"]["candidate_pairs"]
    largest = rules["birth_date"]["largest_blocks"]
    assert largest and all(block["size"] >= 2 and block["key"] for block in largest)
    assert [b["size"] for b in largest] == sorted((b["size"] for b in largest), reverse=True)
    assert 0.9 <= blocking["pair_completeness"] <= 1.0
    true_pairs = summary["accuracy"]["pairwise_links"]["actual"]
    found = sum(rule["true_pairs_found"] for rule in rules.values())
    assert blocking["pair_completeness"] == pytest.approx(found / true_pairs, abs=1e-6)
    # Rules on columns the input lacks (street, phone, email, birth name) are dropped, not run.
    dropped = {rule["name"] for rule in blocking["dropped_rules"]}
    assert dropped == expected_dropped_blocking_rules(input_columns(data / "records.csv"))
    assert {"phone", "email"} <= dropped
    assert not dropped & set(rules)
    assert set(rules) | dropped == {rule.name for rule in RULES.blocking.rules}


def test_summary_has_model_facts_and_dropped_comparisons(
    data: Path, default_run: tuple[Path, Result]
) -> None:
    model = read_summary(default_run[0])["model"]
    assert model["method"] == "em"
    assert 0 < model["prior"] < 1
    dropped = {d["name"]: d["missing_columns"] for d in model["comparisons_dropped"]}
    assert dropped == expected_dropped_comparisons(input_columns(data / "records.csv"))
    assert dropped == {"phone": ["phone"], "email": ["email"]}  # the address runs without a street
    assert set(model["comparisons_used"]) == {c.name for c in RULES.comparisons} - set(dropped)
    assert model["em_passes"]


def test_accuracy_on_easy_synthetic_data(default_run: tuple[Path, Result]) -> None:
    out, result = default_run
    accuracy = read_summary(out)["accuracy"]
    assert accuracy["pairwise_links"]["f1"] >= 0.95
    assert accuracy["clusters"]["f1"] >= 0.95
    assert "precision" in result.stdout and "recall" in result.stdout


def test_printed_summary_names_the_dropped_comparisons(data: Path, default_run: tuple[Path, Result]) -> None:
    _, result = default_run
    dropped_lines = [line for line in result.stdout.splitlines() if "comparisons dropped" in line]
    assert len(dropped_lines) == 1
    dropped = expected_dropped_comparisons(input_columns(data / "records.csv"))
    assert dropped
    for name, missing in dropped.items():
        assert f"{name} (no {'/'.join(missing)})" in dropped_lines[0]


def test_trained_model_is_saved_beside_the_results(default_run: tuple[Path, Result]) -> None:
    out, _ = default_run
    params = json.loads((out / "model.params.json").read_text(encoding="utf-8"))
    assert (params["rules_name"], params["rules_version"]) == (RULES.model.name, RULES.model.version)


def test_model_reuse_gives_the_same_pairs_without_training(
    data: Path, default_run: tuple[Path, Result], tmp_path: Path
) -> None:
    trained, _ = default_run
    out = tmp_path / "reuse"
    dedup(data / "records.csv", "--model", trained / "model.params.json", "--out", out, "--quiet")
    summary = read_summary(out)
    assert summary["model"]["loaded_from"] == str(trained / "model.params.json")
    assert "train" not in summary["timings_seconds"]
    assert not (out / "model.params.json").exists()
    pd.testing.assert_frame_equal(read_pairs(out), read_pairs(trained))


def test_link_only_gives_only_pairs_across_files(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "link"
    dedup(data / "hospital.csv", data / "lab.csv", "--link-only", "--truth", data / "truth.csv", "--out", out)
    hospital = set(pd.read_csv(data / "hospital.csv", dtype=str)["record_id"])
    lab = set(pd.read_csv(data / "lab.csv", dtype=str)["record_id"])
    pairs = read_pairs(out)
    assert len(pairs) > 0
    crossing = [
        (a in hospital) != (b in hospital)
        for a, b in zip(pairs["record_id_l"], pairs["record_id_r"], strict=True)
    ]
    assert all(crossing)
    clusters = pd.read_csv(out / "clusters.csv", dtype=str)
    assert set(clusters["record_id"]) == hospital | lab
    summary = read_summary(out)
    assert summary["mode"] == "link"
    assert summary["inputs"] == [str(data / "hospital.csv"), str(data / "lab.csv")]
    assert summary["accuracy"]["pairwise_links"]["f1"] >= 0.9


def test_without_link_only_two_files_are_deduplicated_together(
    data: Path, default_run: tuple[Path, Result], tmp_path: Path
) -> None:
    out = tmp_path / "both"
    model = default_run[0] / "model.params.json"
    dedup(data / "hospital.csv", data / "lab.csv", "--model", model, "--out", out, "--quiet")
    lab = set(pd.read_csv(data / "lab.csv", dtype=str)["record_id"])
    pairs = read_pairs(out)
    within_lab = [
        a in lab and b in lab for a, b in zip(pairs["record_id_l"], pairs["record_id_r"], strict=True)
    ]
    assert any(within_lab)  # a person seen twice at the lab is a duplicate there too
    assert read_summary(out)["mode"] == "dedup"


def test_parquet_format(data: Path, default_run: tuple[Path, Result], tmp_path: Path) -> None:
    trained, _ = default_run
    out = tmp_path / "parquet"
    dedup(
        data / "records.csv",
        "--model",
        trained / "model.params.json",
        "--format",
        "parquet",
        "--out",
        out,
        "-q",
    )
    assert not (out / "pairs.csv").exists()
    pairs = pd.read_parquet(out / "pairs.parquet")
    clusters = pd.read_parquet(out / "clusters.parquet")
    assert list(pairs.columns) == PAIR_COLUMNS
    assert list(clusters.columns) == ["record_id", "cluster_id"]
    assert pair_set(pairs) == pair_set(read_pairs(trained))
    assert read_summary(out)["outputs"]["pairs"].endswith("pairs.parquet")


def test_parquet_input(data: Path, default_run: tuple[Path, Result], tmp_path: Path) -> None:
    trained, _ = default_run
    source = tmp_path / "records.parquet"
    pd.read_csv(data / "records.csv", dtype=str, keep_default_na=False).to_parquet(source)
    out = tmp_path / "from-parquet"
    dedup(source, "--model", trained / "model.params.json", "--out", out, "-q")
    assert pair_set(read_pairs(out)) == pair_set(read_pairs(trained))


def test_csv_with_quoted_fields_and_header_is_read(
    data: Path, default_run: tuple[Path, Result], tmp_path: Path
) -> None:
    # Spreadsheet exports, pandas with QUOTE_ALL and pyarrow (mpi's own output) quote every field.
    trained, _ = default_run
    source = tmp_path / "quoted.csv"
    frame = pd.read_csv(data / "records.csv", dtype=str, keep_default_na=False)
    frame.to_csv(source, index=False, quoting=csv.QUOTE_ALL)
    out = tmp_path / "from-quoted"
    dedup(source, "--model", trained / "model.params.json", "--out", out, "-q")
    assert pair_set(read_pairs(out)) == pair_set(read_pairs(trained))


FEBRL_STYLE = {
    "record_id": "rec_id",
    "family_name": "surname",
    "given_names": "given_name",
    "birth_date": "date_of_birth",
    "postcode": "postcode",
    "city": "suburb",
    "house_number": "street_number",
}


@pytest.fixture(scope="module")
def renamed_input(data: Path) -> Path:
    frame = pd.read_csv(data / "records.csv", dtype=str, keep_default_na=False)
    renamed = frame[list(FEBRL_STYLE)].rename(columns=FEBRL_STYLE)
    path = data / "febrl_style.csv"
    renamed.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def batch_schema_subset_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = pd.read_csv(data / "records.csv", dtype=str, keep_default_na=False)
    path = data / "subset.csv"
    frame[list(FEBRL_STYLE)].to_csv(path, index=False)
    out = tmp_path_factory.mktemp("subset") / "out"
    dedup(path, "--out", out, "-q")
    return out


def test_map_options_rename_columns(
    renamed_input: Path, batch_schema_subset_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mapped"
    maps = [arg for src, dst in FEBRL_STYLE.items() if src != dst for arg in ("--map", f"{dst}={src}")]
    dedup(renamed_input, *maps, "--model", batch_schema_subset_run / "model.params.json", "--out", out, "-q")
    pd.testing.assert_frame_equal(read_pairs(out), read_pairs(batch_schema_subset_run))
    assert read_summary(out)["ignored_columns"] == {}


@pytest.mark.parametrize("style", ["lines", "toml"])
def test_mapping_file_renames_columns(
    renamed_input: Path, batch_schema_subset_run: Path, tmp_path: Path, style: str
) -> None:
    renames = {src: dst for dst, src in FEBRL_STYLE.items() if src != dst}
    mapping = tmp_path / f"mapping.{'toml' if style == 'toml' else 'txt'}"
    if style == "toml":
        body = "\n".join(f'{src} = "{dst}"' for src, dst in renames.items())
        mapping.write_text(f"[columns]\n{body}\n", encoding="utf-8")
    else:
        body = "\n".join(f"{src}={dst}" for src, dst in renames.items())
        mapping.write_text(f"# FEBRL to batch schema\n{body}\n", encoding="utf-8")
    out = tmp_path / "mapped"
    dedup(
        renamed_input,
        "--mapping",
        mapping,
        "--model",
        batch_schema_subset_run / "model.params.json",
        "--out",
        out,
        "-q",
    )
    pd.testing.assert_frame_equal(read_pairs(out), read_pairs(batch_schema_subset_run))


def test_unmapped_columns_are_reported_as_ignored(
    renamed_input: Path, batch_schema_subset_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "partly"
    model = batch_schema_subset_run / "model.params.json"
    dedup(
        renamed_input,
        "--map",
        "rec_id=record_id",
        "--map",
        "surname=family_name",
        "--model",
        model,
        "--out",
        out,
    )
    ignored = read_summary(out)["ignored_columns"][str(renamed_input)]
    assert set(ignored) == {"given_name", "date_of_birth", "suburb", "street_number"}


def test_truth_column_trains_supervised(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "supervised"
    dedup(data / "records_with_truth.csv", "--truth-column", "person_id", "--out", out, "-q")
    summary = read_summary(out)
    assert summary["model"]["method"] == "supervised"
    assert summary["accuracy"]["pairwise_links"]["f1"] >= 0.95
    assert "person_id" not in json.dumps(summary["ignored_columns"])
    params = json.loads((out / "model.params.json").read_text(encoding="utf-8"))
    assert params["method"] == "supervised"


def test_oversized_block_is_skipped_with_a_warning_naming_key_and_size(tmp_path: Path) -> None:
    text = DEFAULT_RULES_TEXT.replace("max_block_size = 2000", "max_block_size = 4")
    assert text != DEFAULT_RULES_TEXT
    rules = tmp_path / "small_blocks.toml"
    rules.write_text(text, encoding="utf-8")
    names = ["Weber", "Thill", "Klein", "Faber", "Ries", "Braun"]
    source = tmp_path / "same_day.csv"
    rows = [f"R{i},{name},Anna,1980-01-01" for i, name in enumerate(names)]
    source.write_text(
        "record_id,family_name,given_names,birth_date\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    result = dedup(source, "--rules", rules, "--out", out)
    birth_date = next(r for r in read_summary(out)["blocking"]["rules"] if r["name"] == "birth_date")
    assert birth_date["skipped_oversized_blocks"] == [{"key": "1980-01-01", "size": 6}]
    assert birth_date["pairs"] == 0
    warnings = [line for line in result.stdout.splitlines() if "1980-01-01" in line]
    assert len(warnings) == 1
    assert "warning" in warnings[0]
    assert "birth_date" in warnings[0]
    assert "6 records" in warnings[0]


def test_quiet_prints_nothing_and_progress_goes_to_stderr(
    data: Path, default_run: tuple[Path, Result]
) -> None:
    trained, loud = default_run
    assert loud.stdout.strip()
    assert "scoring" in loud.stderr  # progress bars are on stderr, the summary on stdout
    assert "scoring" not in loud.stdout
    out = trained.parent / "quiet"
    quiet = dedup(data / "records.csv", "--model", trained / "model.params.json", "--out", out, "--quiet")
    assert quiet.stdout == ""
    assert quiet.stderr == ""


def test_installed_console_script_runs_a_job(
    data: Path, default_run: tuple[Path, Result], tmp_path: Path
) -> None:
    script = Path(sys.executable).with_name("mpi")
    assert script.exists(), "the `mpi` console script is not installed in this environment"
    trained, _ = default_run
    out = tmp_path / "subprocess"
    model = trained / "model.params.json"
    completed = subprocess.run(
        [
            str(script),
            "dedup",
            str(data / "records.csv"),
            "--model",
            str(model),
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == ""
    pd.testing.assert_frame_equal(read_pairs(out), read_pairs(trained))
    assert read_summary(out)["counts"]["records"] == len(pd.read_csv(data / "records.csv"))
