"""Identity vigilance in `mpi dedup` and `mpi explain`: hard negatives are never linked automatically.

Twins share a family name, a birth date, an address and the household phone;
a parent and a child can share all names and the address. On score alone the
default model would link them; its never-link caps (conflicting sex, birth
date, first given name or matricule) send them to a person instead, while a
true duplicate with a typing error is still linked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_cli_dedup import population  # the same synthetic persons as the dedup tests
from typer.testing import CliRunner, Result

from mpi.cli.main import app
from mpi.domain.identifiers import complete_matricule
from mpi.rules.loader import default_rules_path, load_rules

RULES = load_rules()
STREETS = ("Rue de la Gare", "Route d'Arlon", "Grand-Rue", "Rue Principale", "Hauptstrooss", "Rue du Fort")
runner = CliRunner()


def household(street: str, house: str, postcode: str, city: str, phone: str) -> dict[str, str]:
    return {"street": street, "house_number": house, "postcode": postcode, "city": city, "phone": phone}


def person(
    record_id: str, person_id: str, family: str, given: str, born: str, sex: str, **rest: str
) -> dict[str, str]:
    return {
        "record_id": record_id,
        "person_id": person_id,
        "source": "S0",
        "family_name": family,
        "given_names": given,
        "birth_date": born,
        "sex": sex,
        "national_id": "",
        **rest,
    }


BERCHEM = household("Rue des Prés", "14", "3321", "Berchem", "26 36 11 01")
WECKER = household("Rue du Moulin", "3", "6871", "Wecker", "26 71 22 02")
ETTELBRUCK = household("Rue Neuve", "7", "9051", "Ettelbruck", "26 81 33 03")
WILTZ = household("Grand-Rue", "21", "9530", "Wiltz", "26 95 44 04")
MERSCH = household("Rue de la Gare", "5", "7535", "Mersch", "26 32 55 05")
DUDELANGE = household("Rue du Parc", "40", "3542", "Dudelange", "26 51 66 06")
SEX_TYPED_WRONG = complete_matricule("19661130045")

TWINS = [("TW1a", "TW1b"), ("TW2a", "TW2b")]
PARENT_AND_CHILD = [("PC1a", "PC1b"), ("PC2a", "PC2b")]
TYPO_DUPLICATES = [("DU1a", "DU1b"), ("DU2a", "DU2b")]
SEX_ERROR = ("SX1a", "SX1b")  # one person, the sex typed wrong on one record
HARD_NEGATIVES = TWINS + PARENT_AND_CHILD

FAMILIES = [
    person("TW1a", "TW1a", "Hoffmann", "Lucas", "2003-04-17", "M", **BERCHEM),
    person("TW1b", "TW1b", "Hoffmann", "Emma", "2003-04-17", "F", **BERCHEM),
    person("TW2a", "TW2a", "Santos", "Pedro", "1998-10-02", "M", **WECKER),
    person("TW2b", "TW2b", "Santos", "Sara", "1998-10-02", "F", **WECKER),
    person("PC1a", "PC1a", "Majerus", "Jean", "1952-09-03", "M", **ETTELBRUCK),
    person("PC1b", "PC1b", "Majerus", "Jean", "1981-02-11", "M", **ETTELBRUCK),
    person("PC2a", "PC2a", "Kremer", "Marie", "1960-05-23", "F", **WILTZ),
    person("PC2b", "PC2b", "Kremer", "Marie", "1989-12-08", "F", **WILTZ),
    person("DU1a", "DU1", "Kieffer", "Nadine", "1977-06-21", "F", **MERSCH),
    person("DU1b", "DU1", "Kiefer", "Nadine", "1977-06-21", "F", **MERSCH),
    person("DU2a", "DU2", "Goergen", "Claude", "1948-01-30", "M", **DUDELANGE),
    person("DU2b", "DU2", "Goergen", "Cluade", "1948-01-30", "M", **DUDELANGE),
    person("SX1a", "SX1", "Welter", "Michel", "1966-11-30", "M", **MERSCH, national_id=SEX_TYPED_WRONG),
    person("SX1b", "SX1", "Welter", "Michel", "1966-11-30", "F", **MERSCH, national_id=SEX_TYPED_WRONG),
]


def records_with_households() -> pd.DataFrame:
    """The dedup tests' persons, given a street and often a phone, plus the families above."""
    frame = population(160, seed=3)
    rng = np.random.default_rng(11)
    persons = frame["person_id"].unique()
    street = dict(zip(persons, rng.choice(np.array(STREETS), persons.size), strict=True))
    phone = {p: f"621 {100_000 + 37 * k:06d}" if rng.random() < 0.6 else "" for k, p in enumerate(persons)}
    frame["street"] = frame["person_id"].map(street)
    frame["phone"] = frame["person_id"].map(phone)
    return pd.concat([frame, pd.DataFrame(FAMILIES)], ignore_index=True).fillna("")


def without_caps(text: str) -> str:
    stripped = re.sub(r"^never_link = \[.*?^\]\n", "", text, flags=re.MULTILINE | re.DOTALL)
    assert stripped != text
    return stripped


def dedup(*args: str | Path) -> Result:
    result = runner.invoke(app, ["dedup", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("households")
    frame = records_with_households()
    frame.drop(columns="person_id").to_csv(folder / "records.csv", index=False)
    frame[["record_id", "person_id"]].to_csv(folder / "truth.csv", index=False)
    uncapped = folder / "uncapped.toml"
    uncapped.write_text(without_caps(default_rules_path().read_text(encoding="utf-8")), encoding="utf-8")
    assert load_rules(uncapped).thresholds.never_link == ()
    return folder


@pytest.fixture(scope="module")
def capped(data: Path) -> Path:
    """`mpi dedup` with the default model, trained on the file."""
    out = data / "capped"
    dedup(data / "records.csv", "--truth", data / "truth.csv", "--out", out, "-q")
    return out


@pytest.fixture(scope="module")
def uncapped(data: Path, capped: Path) -> Path:
    """The same trained parameters with the caps removed: what the score alone decides."""
    out = data / "uncapped"
    model = capped / "model.params.json"
    dedup(data / "records.csv", "--rules", data / "uncapped.toml", "--model", model, "--out", out, "-q")
    return out


def decisions(out: Path) -> dict[frozenset[str], tuple[str, float]]:
    pairs = pd.read_csv(out / "pairs.csv", dtype={"record_id_l": str, "record_id_r": str})
    return {
        frozenset((a, b)): (decision, p)
        for a, b, decision, p in zip(
            pairs["record_id_l"],
            pairs["record_id_r"],
            pairs["decision"],
            pairs["match_probability"],
            strict=True,
        )
    }


def decision_of(out: Path, pair: tuple[str, str]) -> str:
    return decisions(out).get(frozenset(pair), ("not a candidate", 0.0))[0]


def cluster_of(out: Path) -> dict[str, str]:
    clusters = pd.read_csv(out / "clusters.csv", dtype=str)
    return dict(zip(clusters["record_id"], clusters["cluster_id"], strict=True))


@pytest.mark.parametrize("pair", TWINS, ids=lambda p: p[0][:3])
def test_twins_are_never_linked_but_shown_for_review(capped: Path, pair: tuple[str, str]) -> None:
    assert decision_of(capped, pair) == "review"
    clusters = cluster_of(capped)
    assert clusters[pair[0]] != clusters[pair[1]]


@pytest.mark.parametrize("pair", PARENT_AND_CHILD, ids=lambda p: p[0][:3])
def test_parent_and_child_with_the_same_names_are_never_linked(capped: Path, pair: tuple[str, str]) -> None:
    assert decision_of(capped, pair) == "review"
    clusters = cluster_of(capped)
    assert clusters[pair[0]] != clusters[pair[1]]


def test_the_score_alone_would_link_these_hard_negatives(capped: Path, uncapped: Path) -> None:
    # Without this, the tests above could pass because the pairs merely score low.
    # (Without caps, clustering's own guard against two matricules or two sexes in
    # one person may still refuse some of these links: the score is what is tested.)
    with_caps, without = decisions(capped), decisions(uncapped)
    for pair in [*HARD_NEGATIVES, SEX_ERROR]:
        key = frozenset(pair)
        assert without[key][1] >= RULES.thresholds.link, pair
        assert with_caps[key][1] == without[key][1]  # caps change the decision, never the score


@pytest.mark.parametrize("pair", TYPO_DUPLICATES, ids=lambda p: p[0][:3])
def test_a_true_duplicate_with_a_typing_error_is_linked(capped: Path, pair: tuple[str, str]) -> None:
    assert decision_of(capped, pair) == "link"
    clusters = cluster_of(capped)
    assert clusters[pair[0]] == clusters[pair[1]]


def test_a_sex_typed_wrong_goes_to_review_despite_a_shared_matricule(capped: Path) -> None:
    assert decision_of(capped, SEX_ERROR) == "review"


def test_only_capped_pairs_change_decision(capped: Path, uncapped: Path) -> None:
    with_caps, without = decisions(capped), decisions(uncapped)
    assert set(with_caps) == set(without)
    changed = {pair for pair in with_caps if with_caps[pair][0] != without[pair][0]}
    assert all(with_caps[frozenset(p)][0] == "review" for p in [*HARD_NEGATIVES, SEX_ERROR])
    assert changed
    assert all(with_caps[pair][0] == "review" and without[pair][0] == "link" for pair in changed)
    summary = json.loads((capped / "summary.json").read_text(encoding="utf-8"))
    uncapped_summary = json.loads((uncapped / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["links"] == uncapped_summary["counts"]["links"] - len(changed)
    assert summary["counts"]["reviews"] == uncapped_summary["counts"]["reviews"] + len(changed)


# --- explain ------------------------------------------------------------------------------------


def explain(data: Path, capped: Path, pair: tuple[str, str], *extra: str) -> Result:
    model = capped / "model.params.json"
    args = ["explain", data / "records.csv", "--left", pair[0], "--right", pair[1], "--model", model, *extra]
    result = runner.invoke(app, list(map(str, args)))
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("pair", [SEX_ERROR, TWINS[0], PARENT_AND_CHILD[0]], ids=["sex", "twins", "parent"])
def test_explain_says_why_a_high_scoring_pair_is_only_reviewed(
    data: Path, capped: Path, pair: tuple[str, str]
) -> None:
    # Rich wraps the closing line at the terminal width (80 columns under the test runner).
    printed = " ".join(explain(data, capped, pair).stdout.split())
    assert printed.endswith("decision: review (conflicting identity traits)")
    explained: dict[str, Any] = json.loads(explain(data, capped, pair, "--json").stdout)
    assert explained["decision"] == "review (conflicting identity traits)"
    assert explained["match_probability"] >= RULES.thresholds.link
    capped_levels = {(ref.comparison, ref.level) for ref in RULES.thresholds.never_link}
    assert {(step["comparison"], step["level"]) for step in explained["steps"]} & capped_levels


def test_explain_links_a_true_duplicate_with_a_typo(data: Path, capped: Path) -> None:
    last_line = explain(data, capped, TYPO_DUPLICATES[0]).stdout.splitlines()[-1]
    assert last_line.endswith("decision: link")
