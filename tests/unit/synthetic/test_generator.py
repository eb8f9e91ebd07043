"""Behaviour of the synthetic population generator that benchmarks and demos rely on."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rapidfuzz.distance import DamerauLevenshtein

from mpi.domain.identifiers import MatriculeStatus, classify_matricules
from mpi.errors import MPIError
from mpi.synthetic.config import DEFAULT_SOURCES, ErrorRates, SourceProfile
from mpi.synthetic.corruption import CORRUPTIONS
from mpi.synthetic.generator import RECORD_COLUMNS, SyntheticData, generate, write
from mpi.synthetic.pools import load_pools
from mpi.synthetic.text import fold_one

N = 20_000
DEMOGRAPHICS = [c for c in RECORD_COLUMNS if c not in ("record_id", "source", "local_id")]
ADDRESS = ["street", "house_number", "postcode", "city", "country"]

# A reference source that is never corrupted and holds every person once, and two
# plain sources with every error at the configured rate: a record's error is then
# visible as a difference from the person's reference record.
REFERENCE = SourceProfile(
    name="REF",
    coverage=1.0,
    cross_border_coverage=1.0,
    duplicate_rate=0.0,
    local_id_prefix="R",
    local_id_digits=8,
    is_register=True,
    error_scale=0.0,
    phone_present=1.0,
    email_present=1.0,
    address_missing=0.0,
)
PLAIN = tuple(
    dataclasses.replace(REFERENCE, name=name, coverage=coverage, cross_border_coverage=coverage,
                        duplicate_rate=0.1, local_id_prefix=name, is_register=False, error_scale=1.0)
    for name, coverage in (("A", 0.9), ("B", 0.7))
)  # fmt: skip
SOURCES = (REFERENCE, *PLAIN)
NO_ERRORS = ErrorRates(**{f.name: 0.0 for f in dataclasses.fields(ErrorRates)} | {"first_record_scale": 1.0})


def with_rate(**rates: float) -> ErrorRates:
    return dataclasses.replace(NO_ERRORS, **rates)


def reference_records(data: SyntheticData) -> pd.DataFrame:
    """Each person's record in the reference source, indexed by person_id."""
    records = data.records.merge(data.truth, on="record_id")
    return records[records["source"] == "REF"].set_index("person_id")


def against_reference(data: SyntheticData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Non-reference records, and the reference record of the same person row by row."""
    records = data.records.merge(data.truth, on="record_id")
    others = records[records["source"] != "REF"].reset_index(drop=True)
    return others, reference_records(data).loc[others["person_id"]].reset_index()


def masculine_surnames(names: pd.Series) -> pd.Series:
    """Polish surnames agree with sex (Kowalska, Kowalski): compare them in the masculine form."""
    return names.str.replace(r"(sk|ck|dzk)a$", r"\1i", regex=True)


def assert_rate(hits: int, trials: int, rate: float) -> None:
    """Within four binomial standard deviations of the configured rate."""
    assert trials > 500, "too few eligible records to judge a rate"
    sigma = math.sqrt(rate * (1 - rate) / trials)
    assert abs(hits / trials - rate) < 4 * sigma + 1e-9, f"{hits}/{trials} for a rate of {rate}"


@pytest.fixture(scope="module")
def default_data() -> SyntheticData:
    return generate(N, seed=7)


@pytest.fixture(scope="module")
def clean_data() -> SyntheticData:
    return generate(N, seed=11, sources=SOURCES, errors=NO_ERRORS)


# --- shape, schema, determinism ---------------------------------------------------


@pytest.mark.parametrize("n_rows", [1, 2, 17, 999, 2345])
def test_exactly_the_requested_number_of_rows(n_rows: int) -> None:
    data = generate(n_rows, seed=3)
    assert len(data.records) == n_rows
    assert len(data.truth) == n_rows


def test_records_follow_the_batch_schema(default_data: SyntheticData) -> None:
    records = default_data.records
    assert list(records.columns) == list(RECORD_COLUMNS)
    assert records["record_id"].is_unique
    assert not records.duplicated(["source", "local_id"]).any()
    assert set(records["source"]) <= {s.name for s in DEFAULT_SOURCES}
    for column in records.columns:  # missing is NA, never an empty string
        assert not (records[column] == "").any(), column
    dates = records["birth_date"].dropna()
    assert dates.str.fullmatch(r"(19|20)\d\d-(0\d|1[0-2])-([0-2]\d|3[01])").all()
    assert set(records["sex"].dropna()) <= {"M", "F", "U"}
    assert set(records["country"].dropna()) == {"LU", "FR", "BE", "DE"}
    assert records["postcode"].dropna().str.fullmatch(r"(L-)?\d{4,5}").all()
    assert records["phone"].dropna().str.fullmatch(r"(\+\d{2,3} [\d ]+|00\d{10,13}|\d{3} \d{3} \d{3})").all()
    assert records["email"].dropna().str.fullmatch(r"[a-z0-9._-]+@[a-z.]*example\.(com|net|org)").all()


def test_local_ids_follow_each_source_scheme(default_data: SyntheticData) -> None:
    records = default_data.records
    for source in DEFAULT_SOURCES:
        ids = records.loc[records["source"] == source.name, "local_id"]
        pattern = re.escape(source.local_id_prefix) + rf"[1-9]\d{{{source.local_id_digits - 1},}}"
        assert ids.str.fullmatch(pattern).all(), source.name


def test_truth_covers_every_record(default_data: SyntheticData) -> None:
    truth = default_data.truth
    assert list(truth.columns) == ["record_id", "person_id"]
    assert truth["record_id"].tolist() == default_data.records["record_id"].tolist()
    assert truth["person_id"].notna().all()
    assert 4_000 < truth["person_id"].nunique() < 10_000


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = {}
    for run, seed in (("a", 5), ("b", 5), ("c", 6)):
        (tmp_path / run).mkdir()
        monkeypatch.chdir(tmp_path / run)  # same relative --out, so the manifests may be equal too
        paths = write(generate(3000, seed=seed), Path("out"), "csv")
        written[run] = {name: (tmp_path / run / path).read_bytes() for name, path in paths.items()}
    assert written["a"] == written["b"]
    assert written["a"]["records"] != written["c"]["records"]


def test_rows_are_shuffled_so_order_reveals_nothing(default_data: SyntheticData) -> None:
    persons = default_data.truth["person_id"]
    same_as_next = (persons.to_numpy()[1:] == persons.to_numpy()[:-1]).mean()
    assert same_as_next < 0.01


# --- files ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_written_files_read_back_to_the_same_tables(tmp_path: Path, fmt: str) -> None:
    data = generate(2000, seed=2)
    paths = write(data, tmp_path / "out", fmt)  # type: ignore[arg-type]
    for name, frame in (("records", data.records), ("truth", data.truth), ("corruptions", data.corruptions)):
        if fmt == "csv":
            back = pd.read_csv(paths[name], dtype=str, keep_default_na=False, encoding="utf-8")
            back = back.replace("", pd.NA)
        else:
            back = pd.read_parquet(paths[name])
        pd.testing.assert_frame_equal(back.astype(object), frame.astype(object), check_dtype=False)


def test_readme_and_manifest_name_the_command(tmp_path: Path) -> None:
    data = generate(1500, seed=9)
    out = tmp_path / "sample"
    paths = write(data, out, "csv")
    command = f"mpi synth --n 1500 --seed {data.seed} --out {out.as_posix()}"
    assert command in paths["readme"].read_text(encoding="utf-8")
    manifest = json.loads(paths["manifest"].read_text(encoding="utf-8"))
    assert manifest["command"] == command
    assert (manifest["seed"], manifest["n_rows"], manifest["default_configuration"]) == (
        data.seed,
        1500,
        True,
    )
    assert manifest["files"]["records"]["rows"] == 1500
    digest = hashlib.sha256(paths["records"].read_bytes()).hexdigest()
    assert manifest["files"]["records"]["sha256"] == digest


def test_bad_arguments_are_refused_with_an_mpi_error(tmp_path: Path) -> None:
    with pytest.raises(MPIError, match="at least 1"):
        generate(0, seed=1)
    with pytest.raises(MPIError, match="format"):
        write(generate(10, seed=1), tmp_path, "xlsx")  # type: ignore[arg-type]
    with pytest.raises(MPIError, match="probability"):
        ErrorRates(family_name_typo=1.5)
    crowded = dataclasses.replace(PLAIN[0], group="GP", coverage=0.8)
    with pytest.raises(MPIError, match="cover more than"):
        generate(100, seed=1, sources=(crowded, dataclasses.replace(crowded, name="C", local_id_prefix="C")))


def test_committed_sample_is_what_the_generator_makes(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[3] / "data" / "synthetic"
    manifest = json.loads((sample / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["command"] == "mpi synth --n 10000 --seed 1 --out data/synthetic"
    paths = write(generate(10_000, seed=1), tmp_path, "csv")
    for name in ("records", "truth", "corruptions", "hard_negatives"):
        assert paths[name].read_bytes() == (sample / f"{name}.csv").read_bytes(), (
            f"data/synthetic/{name}.csv is stale: rerun `{manifest['command']}`"
        )


# --- national numbers -------------------------------------------------------------


def test_every_national_id_is_valid_unless_logged_as_mistyped(default_data: SyntheticData) -> None:
    records = default_data.records
    present = records[records["national_id"].notna()]
    _, status = classify_matricules(present["national_id"].to_numpy(dtype=object))
    invalid = set(present.loc[status == MatriculeStatus.INVALID, "record_id"])
    corruptions = default_data.corruptions
    mistyped = set(corruptions.loc[corruptions["corruption"] == "national_id_mistyped", "record_id"])
    assert invalid == mistyped
    assert 0.002 < len(invalid) / len(present) < 0.02  # 1 % per record, scaled per source
    assert (status == MatriculeStatus.UPGRADED).sum() > 50  # legacy 11-digit forms are typed in


def test_national_ids_are_unique_per_person(clean_data: SyntheticData) -> None:
    records = clean_data.records.merge(clean_data.truth, on="record_id")
    per_person = records.groupby("person_id")["national_id"].nunique()
    assert (per_person == 1).all()
    reference = records[records["source"] == "REF"]
    assert reference["national_id"].is_unique
    _, status = classify_matricules(reference["national_id"].to_numpy(dtype=object))
    assert (status == MatriculeStatus.VALID).all()
    unknown_parts = reference["national_id"].str.slice(4, 8).str.contains("00$|^00")
    assert 0.003 < unknown_parts.mean() < 0.05  # immigrants whose birth day or month is unknown


# --- duplicates and hard negatives ------------------------------------------------


def test_within_source_duplicates_follow_the_configured_rate(default_data: SyntheticData) -> None:
    records = default_data.records.merge(default_data.truth, on="record_id")
    per_person = records.groupby(["source", "person_id"]).size()
    for source in DEFAULT_SOURCES:
        counts = per_person[per_person.index.get_level_values("source") == source.name].to_numpy()
        if counts.sum() < 1500:
            continue
        share = (counts - 1).sum() / counts.sum()
        assert abs(share - source.duplicate_rate) < 0.03, (source.name, share)
    sources_per_person = records.groupby("person_id")["source"].nunique()
    assert (sources_per_person > 1).mean() > 0.6


def test_twins_share_surname_birth_date_and_address_but_are_distinct(clean_data: SyntheticData) -> None:
    pairs = clean_data.hard_negatives
    twins = pairs[pairs["relation"] == "twin"]
    assert len(twins) > 100
    by_person = reference_records(clean_data)
    first, second = by_person.loc[twins["person_id"]], by_person.loc[twins["other_person_id"]]
    assert (twins["person_id"].to_numpy() != twins["other_person_id"].to_numpy()).all()
    for column in ["birth_date", *ADDRESS]:
        assert (first[column].to_numpy() == second[column].to_numpy()).all(), column
    surname = [masculine_surnames(first["family_name"]), masculine_surnames(second["family_name"])]
    assert (surname[0].to_numpy() == surname[1].to_numpy()).all()
    assert (first["given_names"].to_numpy() != second["given_names"].to_numpy()).all()
    assert (first["national_id"].to_numpy() != second["national_id"].to_numpy()).all()
    assert 0.25 < (first["sex"].to_numpy() != second["sex"].to_numpy()).mean() < 0.55


def test_other_hard_negatives_look_alike(clean_data: SyntheticData) -> None:
    pairs = clean_data.hard_negatives
    by_person = reference_records(clean_data)

    def sides(relation: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        chosen = pairs[pairs["relation"] == relation]
        assert len(chosen) > 50, relation
        return by_person.loc[chosen["person_id"]], by_person.loc[chosen["other_person_id"]]

    parent, child = sides("parent_child")
    for column in ["family_name", "given_names", "sex", *ADDRESS]:
        assert (parent[column].to_numpy() == child[column].to_numpy()).all(), column
    gap = (
        child["birth_date"].str.slice(0, 4).astype(int).to_numpy()
        - parent["birth_date"].str.slice(0, 4).astype(int).to_numpy()
    )
    assert ((gap >= 25) & (gap <= 41)).all()

    husband, wife = sides("spouse")
    for column in ADDRESS:
        assert (husband[column].to_numpy() == wife[column].to_numpy()).all(), column
    assert (husband["sex"] == "M").all() and (wife["sex"] == "F").all()

    anchor, namesake = sides("namesake")
    assert (anchor["family_name"].to_numpy() == namesake["family_name"].to_numpy()).all()
    assert (
        anchor["birth_date"].str.slice(0, 4).to_numpy() == namesake["birth_date"].str.slice(0, 4).to_numpy()
    ).all()
    assert (anchor["birth_date"].to_numpy() != namesake["birth_date"].to_numpy()).all()
    common = {name for pool in load_pools().family_names.values() for name in pool.names.values[pool.common]}
    # The surname a person is known by: the last for the Portuguese, the first for everyone else.
    tokens = masculine_surnames(anchor["family_name"]).str.split()
    common_tokens = {n.split()[-1] for n in common}
    assert (tokens.str[-1].isin(common_tokens) | tokens.str[0].isin(common_tokens)).all()


# --- the error model --------------------------------------------------------------


def test_without_errors_all_records_of_a_person_agree(clean_data: SyntheticData) -> None:
    others, reference = against_reference(clean_data)
    for column in DEMOGRAPHICS:
        assert (others[column].fillna("").to_numpy() == reference[column].fillna("").to_numpy()).all(), column
    assert len(clean_data.corruptions) == 0


@pytest.mark.parametrize(
    ("kind", "column"), [("family_name_typo", "family_name"), ("given_name_typo", "given_names")]
)
def test_typos_are_mostly_single_keyboard_edits(kind: str, column: str) -> None:
    data = generate(N, seed=21, sources=SOURCES, errors=with_rate(**{kind: 0.1}, second_edit=0.12))
    others, reference = against_reference(data)
    distance = np.array(
        [DamerauLevenshtein.distance(a, b) for a, b in zip(others[column], reference[column], strict=True)]
    )
    assert_rate(int((distance > 0).sum()), len(others), 0.1)
    assert distance.max() <= 2
    assert (distance[distance > 0] == 1).mean() > 0.8
    logged = data.corruptions.loc[data.corruptions["corruption"] == kind, "record_id"]
    assert set(logged) == set(others.loc[distance > 0, "record_id"])


def test_birth_date_errors_change_what_they_say(clean_data: SyntheticData) -> None:
    rates = with_rate(day_month_swap=0.1, date_part_wrong=0.05, year_off_by_one=0.05)
    data = generate(N, seed=11, sources=SOURCES, errors=rates)
    others, reference = against_reference(data)
    logged = data.corruptions.groupby("corruption")["record_id"].apply(set)
    parts = reference["birth_date"].str.split("-", expand=True).astype(int)
    year, month, day = parts[0], parts[1], parts[2]
    swappable = (month > 0) & (day > 0) & (day <= 12) & (day != month)
    only_swapped = others["record_id"].isin(logged["day_month_swap"]) & ~others["record_id"].isin(
        logged["date_part_wrong"] | logged["year_off_by_one"]
    )
    expected = (
        year.astype(str).str.zfill(4)
        + "-"
        + day.astype(str).str.zfill(2)
        + "-"
        + month.astype(str).str.zfill(2)
    )
    assert (others.loc[only_swapped, "birth_date"] == expected[only_swapped]).all()
    assert_rate(int(others["record_id"].isin(logged["day_month_swap"]).sum()), int(swappable.sum()), 0.1)
    off_by_one = others["record_id"].isin(logged["year_off_by_one"]) & ~others["record_id"].isin(
        logged["date_part_wrong"] | logged["day_month_swap"]
    )
    shifted = others.loc[off_by_one, "birth_date"].str.slice(0, 4).astype(int) - year[off_by_one]
    assert set(shifted) == {-1, 1}
    assert_rate(len(logged["year_off_by_one"]), len(others), 0.05)
    changed = others["birth_date"].to_numpy() != reference["birth_date"].to_numpy()
    assert (
        set(others.loc[changed, "record_id"])
        == logged["day_month_swap"] | logged["date_part_wrong"] | logged["year_off_by_one"]
    )


def test_national_id_errors_follow_their_rates() -> None:
    rates = with_rate(national_id_mistyped=0.05, national_id_wrong_person=0.02)
    data = generate(N, seed=13, sources=SOURCES, errors=rates)
    others, reference = against_reference(data)
    _, status = classify_matricules(others["national_id"].to_numpy(dtype=object))
    invalid = status == MatriculeStatus.INVALID
    assert_rate(int(invalid.sum()), len(others), 0.05)
    given_another = (
        others["record_id"]
        .isin(data.corruptions.loc[data.corruptions["corruption"] == "national_id_wrong_person", "record_id"])
        .to_numpy()
    )
    slipped = invalid & ~given_another
    for typed, true in zip(
        others.loc[slipped, "national_id"], reference.loc[slipped, "national_id"], strict=True
    ):
        assert DamerauLevenshtein.distance(typed, true) == 1
    wrong = ~invalid & (others["national_id"].to_numpy() != reference["national_id"].to_numpy())
    assert_rate(int(wrong.sum()), int((~invalid).sum()), 0.02 * 0.95)
    assert others.loc[wrong, "national_id"].isin(set(reference_records(data)["national_id"])).all()


def _sex_flipped(o: pd.DataFrame, r: pd.DataFrame) -> pd.Series:
    return o["sex"] != r["sex"]


def _address_changed(o: pd.DataFrame, r: pd.DataFrame) -> pd.Series:
    return pd.Series((o[ADDRESS].to_numpy() != r[ADDRESS].to_numpy()).any(axis=1))


def _names_swapped(o: pd.DataFrame, r: pd.DataFrame) -> pd.Series:
    return (o["family_name"] == r["given_names"]) & (o["family_name"] != r["family_name"])


def _phone_changed(o: pd.DataFrame, r: pd.DataFrame) -> pd.Series:
    return (o["phone"] != r["phone"]) & r["phone"].notna()  # missing != missing is true in pandas


@pytest.mark.parametrize(
    ("rate_name", "rate", "changed"),
    [
        ("sex_wrong", 0.05, _sex_flipped),
        ("moved", 0.2, _address_changed),
        ("names_swapped", 0.05, _names_swapped),
        ("phone_changed", 0.1, _phone_changed),
    ],
)
def test_simple_errors_follow_their_rates(
    rate_name: str, rate: float, changed: Callable[[pd.DataFrame, pd.DataFrame], pd.Series]
) -> None:
    data = generate(N, seed=17, sources=SOURCES, errors=with_rate(**{rate_name: rate}))
    others, reference = against_reference(data)
    hits = changed(others, reference).to_numpy(dtype=bool)
    # Only a person with a phone can get another one.
    eligible = (
        reference["phone"].notna() if rate_name == "phone_changed" else pd.Series(True, index=others.index)
    )
    assert_rate(int(hits.sum()), int(eligible.sum()), rate)
    logged = data.corruptions.loc[data.corruptions["corruption"] == rate_name, "record_id"]
    assert set(others.loc[hits, "record_id"]) <= set(logged)


def test_name_representations_follow_their_rates() -> None:
    pools = load_pools()
    rates = with_rate(nickname=0.2, given_names_truncated=0.3, diacritics_lost=0.3)
    data = generate(N, seed=19, sources=SOURCES, errors=rates)
    others, reference = against_reference(data)
    logged = data.corruptions.groupby("corruption")["record_id"].apply(set)

    truncated = others["record_id"].isin(logged["given_names_truncated"]).to_numpy()
    full, short = reference.loc[truncated, "given_names"], others.loc[truncated, "given_names"]
    assert all(len(s) < len(f) for s, f in zip(short, full, strict=True))
    assert_rate(int(truncated.sum()), int((reference["given_names"].str.count(" ") >= 1).sum()), 0.3)

    nicknamed = others["record_id"].isin(logged["nickname"]).to_numpy()
    shown = others.loc[nicknamed, "given_names"].map(fold_one).to_numpy()  # accents may be lost too
    true = reference.loc[nicknamed, "given_names"].map(fold_one).to_numpy()
    nicknames: dict[str, list[str]] = {}  # António and Antonio fold alike: keep both lists
    for name, nicks in pools.nicknames.items():
        nicknames.setdefault(fold_one(name), []).extend(fold_one(n) for n in nicks)
    for short, full in zip(shown, true, strict=True):  # first given names may be compound: Maria da Conceição
        assert any(  # later given names may have been dropped too
            full.startswith(name) and short.startswith(nick) and (nick + full[len(name) :]).startswith(short)
            for name, nicks in nicknames.items()
            for nick in nicks
        ), (short, full)

    folded = others["record_id"].isin(logged["diacritics_lost"]).to_numpy()
    assert (others.loc[folded, "family_name"] == reference.loc[folded, "family_name"].map(fold_one)).all()
    # Eligible: records still carrying an accent when typed (a dropped middle name may have taken it).
    accented = ~(others[["family_name", "given_names"]].apply(lambda c: c.map(str.isascii))).all(axis=1)
    assert_rate(int(folded.sum()), int((accented | folded).sum()), 0.3)


def test_married_women_appear_under_the_husbands_name() -> None:
    data = generate(N, seed=23, sources=SOURCES, errors=with_rate(married_name_used=0.5, birth_name_kept=0.5))
    others, _ = against_reference(data)
    spouses = data.hard_negatives[data.hard_negatives["relation"] == "spouse"]
    husband_of = dict(zip(spouses["other_person_id"], spouses["person_id"], strict=True))
    by_person = reference_records(data)
    wives = others[others["person_id"].isin(list(husband_of))]
    husband_name = by_person.loc[wives["person_id"].map(husband_of), "family_name"].to_numpy()
    renamed = wives["family_name"].to_numpy() != by_person.loc[wives["person_id"], "family_name"].to_numpy()
    assert_rate(int(renamed.sum()), len(wives), 0.5)
    shown = wives.loc[renamed, "family_name"].to_numpy()
    # The husband's main surname (his last, for the Portuguese), alone or before a hyphen and hers.
    assert all(s.split("-")[0] in h for s, h in zip(shown, husband_name[renamed], strict=True))
    kept = wives.loc[renamed, "birth_name"].notna()
    assert 0.4 < kept.mean() < 0.6
    assert set(CORRUPTIONS) >= set(data.corruptions["corruption"])
