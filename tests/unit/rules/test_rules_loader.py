"""Loading rules and trained parameters: every mistake names the file and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mpi.errors import RulesError
from mpi.matching.comparators import ADDRESS_COLUMNS, build_comparator
from mpi.rules.loader import (
    default_rules_path,
    load_parameters,
    load_rules,
    parameters_path_for,
    save_parameters,
)
from mpi.rules.parameters import LevelParameters, TrainedParameters

LINKAGE_RULES = Path(__file__).resolve().parents[3] / "matching_rules" / "linkage.toml"

VALID_RULES = """
[model]
name = "test-rules"
version = "1.0"

[thresholds]
link = 0.9
review = 0.5

[blocking]
max_block_size = 100
rules = [
    { name = "birth_date", keys = ["birth_date"] },
    { name = "names", keys = ["family_dm", "given_dm"] },
]

[training]
em_blocking = [{ name = "birth_date", keys = ["birth_date"] }]
deterministic_rules = [{ name = "all", keys = ["family_name", "given_name", "birth_date"] }]

[[comparison]]
name = "family_name"
comparator = "surname"
column = "family_name"
thresholds = [0.92, 0.8]

[[comparison]]
name = "sex"
comparator = "exact"
column = "sex"
"""


def write(tmp_path: Path, text: str, name: str = "rules.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def rules_error(path: Path) -> RulesError:
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    error = caught.value
    assert str(path) in str(error)
    assert "\n" not in str(error)  # one line for the CLI
    return error


def test_valid_rules_load(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, VALID_RULES))
    assert rules.stamp == "test-rules@1.0"
    assert [c.name for c in rules.comparisons] == ["family_name", "sex"]
    assert rules.comparisons[0].thresholds == (0.92, 0.8)
    assert rules.training.em_max_iterations == 40  # defaults fill what a file leaves out


def test_default_rules_load_and_every_comparison_builds() -> None:
    rules = load_rules()
    assert load_rules(default_rules_path()) == rules
    assert rules.model.name == "luxembourg-default"
    assert 0 < rules.thresholds.review <= rules.thresholds.link < 1
    names = {c.name for c in rules.comparisons}
    # The strict identity traits of identity vigilance, each compared.
    assert {"family_name", "given_name", "birth_date", "sex", "matricule"} <= names
    assert len(rules.blocking.rules) >= 2
    for comparison in rules.comparisons:
        comparator = build_comparator(comparison)
        assert len(comparator.labels) >= 2
        assert comparator.labels[-1] == "different"  # levels run from agreement to disagreement


def test_default_rules_compare_the_address_as_one_piece_of_evidence() -> None:
    # A household shares street, house number, postcode and city: four comparisons
    # would count that one fact four times for spouses, twins, parent and child.
    comparisons = load_rules().comparisons
    address = [c for c in comparisons if c.comparator == "address"]
    assert len(address) == 1
    others = [c for c in comparisons if c.comparator != "address"]
    assert not {column for c in others for column in (c.column, *c.alternates)} & set(ADDRESS_COLUMNS)


def test_default_rules_cap_conflicting_strict_traits_at_review() -> None:
    rules = load_rules()
    comparators = {c.name: build_comparator(c) for c in rules.comparisons}
    capped = {(ref.comparison, ref.level) for ref in rules.thresholds.never_link}
    assert {("sex", "different"), ("birth_date", "different"), ("given_name", "different")} <= capped
    assert ("matricule", "different") in capped
    for name, level in capped:
        # Every cap names a real level, and never the strongest agreement.
        assert comparators[name].labels.index(level) > 0


def test_linkage_profile_compares_address_parts_separately_without_caps() -> None:
    default, linkage = load_rules(), load_rules(LINKAGE_RULES)
    assert linkage.model.name != default.model.name
    assert linkage.thresholds.never_link == ()
    compared = {c.column for c in linkage.comparisons}
    assert set(ADDRESS_COLUMNS) <= compared
    assert all(c.comparator != "address" for c in linkage.comparisons)
    for comparison in linkage.comparisons:
        assert build_comparator(comparison).labels[-1] == "different"


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    error = rules_error(write(tmp_path, VALID_RULES.replace("[thresholds]", "[thresholds")))
    assert "not valid TOML" in error.message
    assert "line 6" in error.message  # where the parser stopped


def test_non_utf8_rules_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(VALID_RULES.replace("test-rules", "r\xe8gles").encode("latin-1"))
    assert "UTF-8" in rules_error(path).message


def test_missing_rules_file_is_named(tmp_path: Path) -> None:
    assert "not found" in rules_error(tmp_path / "nowhere.toml").message


def test_unknown_key_is_named(tmp_path: Path) -> None:
    error = rules_error(write(tmp_path, VALID_RULES.replace("review = 0.5", "review = 0.5\ncolour = 1")))
    assert error.key == "thresholds.colour"
    assert "thresholds.colour" in str(error)


def test_unknown_key_in_a_comparison_is_named_with_its_position(tmp_path: Path) -> None:
    text = VALID_RULES.replace('column = "sex"', 'column = "sex"\nweight = 3')
    assert rules_error(write(tmp_path, text)).key == "comparison.1.weight"


def test_missing_section_is_named(tmp_path: Path) -> None:
    text = VALID_RULES.replace("[thresholds]\nlink = 0.9\nreview = 0.5\n", "")
    assert rules_error(write(tmp_path, text)).key == "thresholds"


def test_unknown_comparator_is_named(tmp_path: Path) -> None:
    text = VALID_RULES.replace('comparator = "exact"', 'comparator = "fuzzy"')
    assert rules_error(write(tmp_path, text)).key == "comparison.1.comparator"


def test_unknown_comparison_column_is_named(tmp_path: Path) -> None:
    error = rules_error(write(tmp_path, VALID_RULES.replace('column = "sex"', 'column = "shoe_size"')))
    assert error.key == "comparison.1.column"
    assert "shoe_size" in error.message


def test_unknown_blocking_column_is_named(tmp_path: Path) -> None:
    text = VALID_RULES.replace('keys = ["family_dm", "given_dm"]', 'keys = ["family_dm", "eye_colour"]')
    error = rules_error(write(tmp_path, text))
    assert error.key == "blocking.rules.1.keys"
    assert "eye_colour" in error.message


def test_review_threshold_above_link_is_refused(tmp_path: Path) -> None:
    error = rules_error(write(tmp_path, VALID_RULES.replace("review = 0.5", "review = 0.95")))
    assert error.key == "thresholds"
    assert "review" in error.message


@pytest.mark.parametrize("value", ["1.5", "0", "-0.2"])
def test_threshold_outside_zero_one_is_refused(tmp_path: Path, value: str) -> None:
    error = rules_error(write(tmp_path, VALID_RULES.replace("link = 0.9", f"link = {value}")))
    assert error.key == "thresholds.link"


@pytest.mark.parametrize("thresholds", ["[0.8, 0.92]", "[0.9, 0.9]", "[1.2, 0.8]"])
def test_similarity_thresholds_must_strictly_decrease_within_zero_one(
    tmp_path: Path, thresholds: str
) -> None:
    error = rules_error(write(tmp_path, VALID_RULES.replace("[0.92, 0.8]", thresholds)))
    assert error.key == "comparison.0.thresholds"


def test_duplicate_comparison_names_are_refused(tmp_path: Path) -> None:
    text = VALID_RULES.replace('name = "sex"', 'name = "family_name"')
    error = rules_error(write(tmp_path, text))
    assert error.key == "comparison"
    assert "family_name" in error.message


def test_duplicate_blocking_rule_names_are_refused(tmp_path: Path) -> None:
    text = VALID_RULES.replace('{ name = "names",', '{ name = "birth_date",')
    error = rules_error(write(tmp_path, text))
    assert error.key == "blocking.rules"
    assert "birth_date" in error.message


def test_a_wrongly_typed_value_is_named(tmp_path: Path) -> None:
    error = rules_error(
        write(tmp_path, VALID_RULES.replace("max_block_size = 100", 'max_block_size = "big"'))
    )
    assert error.key == "blocking.max_block_size"


def with_never_link(*refs: tuple[str, str]) -> str:
    entries = ", ".join(f'{{ comparison = "{c}", level = "{level}" }}' for c, level in refs)
    return VALID_RULES.replace("review = 0.5", f"review = 0.5\nnever_link = [{entries}]")


def test_never_link_caps_load_in_order(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, with_never_link(("sex", "different"), ("family_name", "different"))))
    assert [(r.comparison, r.level) for r in rules.thresholds.never_link] == [
        ("sex", "different"),
        ("family_name", "different"),
    ]


def test_never_link_naming_an_unknown_comparison_is_refused(tmp_path: Path) -> None:
    error = rules_error(write(tmp_path, with_never_link(("sex", "different"), ("gender", "different"))))
    assert "thresholds.never_link" in str(error)
    assert "'gender'" in error.message


def test_never_link_naming_an_unknown_comparison_sets_the_key_of_the_entry(tmp_path: Path) -> None:
    error = rules_error(write(tmp_path, with_never_link(("sex", "different"), ("gender", "different"))))
    assert error.key == "thresholds.never_link.1.comparison"


def test_never_link_entry_needs_a_level(tmp_path: Path) -> None:
    text = VALID_RULES.replace("review = 0.5", 'review = 0.5\nnever_link = [{ comparison = "sex" }]')
    assert rules_error(write(tmp_path, text)).key == "thresholds.never_link.0.level"


# --- trained parameters -------------------------------------------------------------------------


def trained_for(name: str, version: str) -> TrainedParameters:
    return TrainedParameters(
        rules_name=name,
        rules_version=version,
        method="em",
        prior=0.001,
        trained_on_records=10,
        comparisons={"sex": LevelParameters(labels=("exact", "different"), m=(0.98, 0.02), u=(0.5, 0.5))},
    )


def test_parameters_round_trip_beside_the_rules(tmp_path: Path) -> None:
    rules_path = write(tmp_path, VALID_RULES)
    rules = load_rules(rules_path)
    params_path = parameters_path_for(rules_path)
    assert params_path == tmp_path / "rules.params.json"
    save_parameters(trained_for("test-rules", "1.0"), params_path)
    assert load_parameters(params_path, rules) == trained_for("test-rules", "1.0")


@pytest.mark.parametrize(("name", "version"), [("test-rules", "0.9"), ("other-rules", "1.0")])
def test_parameters_for_other_rules_are_refused(tmp_path: Path, name: str, version: str) -> None:
    rules = load_rules(write(tmp_path, VALID_RULES))
    path = tmp_path / "model.params.json"
    save_parameters(trained_for(name, version), path)
    with pytest.raises(RulesError) as caught:
        load_parameters(path, rules)
    assert str(path) in str(caught.value)
    assert caught.value.key == "rules_version"
    assert f"{name}@{version}" in caught.value.message
    assert "test-rules@1.0" in caught.value.message


def test_malformed_parameters_json_names_the_file(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, VALID_RULES))
    path = tmp_path / "model.params.json"
    path.write_text('{"rules_name": ', encoding="utf-8")
    with pytest.raises(RulesError, match="not valid JSON") as caught:
        load_parameters(path, rules)
    assert str(path) in str(caught.value)


def test_parameters_whose_probabilities_do_not_sum_to_one_name_the_key(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, VALID_RULES))
    raw = trained_for("test-rules", "1.0").model_dump(mode="json")
    raw["comparisons"]["sex"]["m"] = [0.5, 0.2]
    path = tmp_path / "model.params.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        load_parameters(path, rules)
    assert caught.value.key == "comparisons.sex"
    assert "sum to 1" in caught.value.message
