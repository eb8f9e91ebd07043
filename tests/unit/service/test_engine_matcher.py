"""The online matcher answers exactly like the batch kernel, however few records it is given.

The online path standardises a probe and its candidates cell by cell from a
cache and codes them without pandas; these tests hold it to the batch recipe
(``standardise`` -> ``Engine.encode`` -> ``Engine.scorer``, without term
frequencies) and its blocking keys to the ones the bulk load computes in batch.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mpi.domain.records import DEMOGRAPHIC_FIELDS, Demographics
from mpi.matching.engine import Engine
from mpi.matching.scoring import probability_to_weight
from mpi.matching.standardise import standardise
from mpi.matching.stored_form import FORM_COLUMNS, form_stamp, from_forms, refused_birth_dates, to_forms
from mpi.rules.loader import default_parameters_path, load_parameters, load_rules
from mpi.service.engine_matcher import FEW_RECORDS, EngineMatcher

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "synthetic" / "records.csv"


@pytest.fixture(scope="module")
def matcher() -> EngineMatcher:
    rules = load_rules()
    return EngineMatcher(rules, load_parameters(default_parameters_path(), rules))


@pytest.fixture(scope="module")
def sample() -> list[Demographics]:
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False, nrows=1500)
    return [Demographics.from_mapping(row) for row in frame.to_dict("records")]


def batch_scores(
    matcher: EngineMatcher, probe: Demographics, candidates: list[Demographics]
) -> dict[str, object]:
    """The batch recipe on the same records: what the online answer must equal."""
    records = [probe, *candidates]
    frame = pd.DataFrame({f: [getattr(r, f) for r in records] for f in DEMOGRAPHIC_FIELDS}, dtype=object)
    encoded = Engine.encode(standardise(frame.astype(pd.StringDtype())).frame)
    scorer = matcher.engine.scorer(encoded, matcher.params, term_frequencies=False)
    right = np.arange(1, len(records), dtype=np.int64)
    scored = scorer.score(np.zeros_like(right), right)
    labels = [(*c.comparator.labels, "missing") for c in scorer.compiled]
    return {
        "probability": scored.match_probability.astype(np.float64).tolist(),
        "weight": scored.match_weight.astype(np.float64).tolist(),
        "levels": [[labels[k][level] for k, level in enumerate(row)] for row in scored.levels.tolist()],
        "linkable": scored.linkable.tolist(),
    }


def test_online_scores_equal_the_batch_kernel(matcher: EngineMatcher, sample: list[Demographics]) -> None:
    thresholds = matcher.rules.thresholds
    for start in range(0, 1200, 97):
        probe, candidates = sample[start], sample[start + 1 : start + 1 + (start % 60) + 1]
        # A probe scored against its own copy with a typo is among the candidates: a link.
        candidates.append(replace(probe, family_name=(probe.family_name or "") + "e"))
        online = matcher.score(probe, candidates)
        expected = batch_scores(matcher, probe, candidates)
        assert [s.match_probability for s in online] == expected["probability"]
        assert [s.match_weight for s in online] == expected["weight"]
        assert [[c.level for c in s.comparisons] for s in online] == expected["levels"]
        linkables: list[bool] = expected["linkable"]  # type: ignore[assignment]
        for score, linkable in zip(online, linkables, strict=True):
            link = score.match_probability >= thresholds.link and linkable
            review = score.match_probability >= thresholds.review
            assert score.decision == ("link" if link else "review" if review else "none")
            # The weights shown to a reviewer add up to the pair's match weight.
            total = probability_to_weight(matcher.params.prior) + sum(c.weight for c in score.comparisons)
            assert total == pytest.approx(score.match_weight, abs=1e-3)
        assert online[-1].decision in ("link", "review")


def test_blocking_keys_are_the_same_few_at_a_time_or_in_a_batch(
    matcher: EngineMatcher, sample: list[Demographics]
) -> None:
    many = sample[: FEW_RECORDS + 300]
    in_batch = matcher.blocking_keys(many)
    few_at_a_time = [
        keys for start in range(0, len(many), 40) for keys in matcher.blocking_keys(many[start : start + 40])
    ]
    assert in_batch == few_at_a_time
    assert sum(map(len, in_batch)) > 5 * len(many)


def test_blocking_keys_name_their_rule_and_ignore_name_order(matcher: EngineMatcher) -> None:
    jean = Demographics(
        family_name="Weber", given_names="Jean", birth_date="1980-01-02", sex="M", postcode="L-1234"
    )
    swapped = replace(jean, family_name="Jean", given_names="Weber")
    keys, swapped_keys = matcher.blocking_keys([jean, swapped])
    assert "birth_date:1980-01-02" in keys
    assert "postcode+family_phonetic:1234|APR" in keys
    name_pairs = [k for k in keys if k.startswith("names_either_order+")]
    assert name_pairs and set(name_pairs) <= set(swapped_keys)
    assert not any(k.startswith(("phone:", "email:", "matricule:")) for k in keys)  # missing parts: no key
    assert matcher.blocking_keys([]) == [] and matcher.score(jean, []) == []


def test_scores_from_stored_forms_equal_scores_from_the_records(
    matcher: EngineMatcher, sample: list[Demographics]
) -> None:
    for start in range(0, 1200, 131):
        probe, candidates = sample[start], sample[start + 1 : start + 1 + (start % 50) + 2]
        forms = matcher.forms(candidates)
        assert all(form is not None and matcher.form_is_current(form) for form in forms)
        fresh = matcher.score(probe, candidates)
        assert matcher.score(probe, [f or c for f, c in zip(forms, candidates, strict=True)]) == fresh
        # Some candidates without a form (written before forms existed): standardised afresh
        # and scored alongside the others.
        mixed = [c if k % 3 == 0 else f or c for k, (f, c) in enumerate(zip(forms, candidates, strict=True))]
        assert matcher.score(probe, mixed) == fresh
        # The probe too, by its form (a registration standardises its record once).
        (probe_form,) = matcher.forms([probe])
        assert probe_form is not None
        assert matcher.score(probe_form, mixed) == fresh
        assert matcher.score(probe_form, candidates) == fresh
        assert matcher.keys_and_forms([probe, *candidates]) == (
            matcher.blocking_keys([probe, *candidates]),
            matcher.forms([probe, *candidates]),
        )


def test_a_form_of_other_rules_is_not_current_and_never_read(matcher: EngineMatcher) -> None:
    jean = Demographics(family_name="Weber", given_names="Jean", birth_date="1980-01-02", sex="M")
    (form,) = matcher.forms([jean])
    assert form is not None
    stale = "f0:other" + form[form.index("\x1f") :]
    assert not matcher.form_is_current(stale)
    with pytest.raises(ValueError, match="not current"):
        matcher.score(jean, [stale])


def test_a_record_whose_birth_date_was_refused_gets_no_form(matcher: EngineMatcher) -> None:
    # The refusal may not last (a date in the future becomes possible): such a record is
    # standardised afresh whenever it is scored.
    ok, future, impossible, none = matcher.forms(
        [
            Demographics(family_name="Weber", birth_date="1980-01-02"),
            Demographics(family_name="Weber", birth_date="2999-01-02"),
            Demographics(family_name="Weber", birth_date="1980-13-45"),
            Demographics(family_name="Weber"),
        ]
    )
    assert ok is not None and none is not None
    assert future is None and impossible is None


def test_forms_from_the_batch_columns_are_the_online_matchers(
    matcher: EngineMatcher, sample: list[Demographics]
) -> None:
    frame = pd.DataFrame({f: [getattr(r, f) for r in sample] for f in DEMOGRAPHIC_FIELDS}, dtype=object)
    columns = standardise(frame.astype(pd.StringDtype())).frame
    withheld = refused_birth_dates([r.birth_date for r in sample], columns["birth_date"].to_numpy())
    batch = to_forms({c: columns[c].to_numpy() for c in FORM_COLUMNS}, len(sample), withheld=withheld)
    assert batch == matcher.forms(sample)  # more than FEW_RECORDS: the batch standardiser
    assert batch[:40] == matcher.forms(sample[:40])  # the cell-by-cell path
    decoded = from_forms([f for f in batch if f is not None])
    assert decoded is not None and set(decoded) == set(FORM_COLUMNS)


# The forms of the sample's first 2,000 rows, without their stamp.
RECORDED_DIGEST = "5492ab81dfe166d2"


def test_stored_forms_change_only_with_their_stamp(matcher: EngineMatcher) -> None:
    """A registry keeps forms for years: what the standardiser computes may change only together
    with LAYOUT_VERSION, or stored forms would be read as if they had been computed today."""
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False, nrows=2000)
    forms = matcher.forms([Demographics.from_mapping(row) for row in frame.to_dict("records")])
    unstamped = [f.split("\x1f", 1)[1] if f is not None else "-" for f in forms]
    digest = hashlib.sha256("\n".join(unstamped).encode()).hexdigest()[:16]
    assert all(f is not None and f.startswith(form_stamp()) for f in forms)
    assert digest == RECORDED_DIGEST, (
        f"the standardised forms changed (digest {digest}): bump LAYOUT_VERSION in "
        "mpi/matching/stored_form.py, then record the new digest here"
    )


@pytest.mark.parametrize(
    "probe",
    [Demographics(), Demographics(birth_date="1980-01-02"), Demographics(sex="F", postcode="1234")],
    ids=["nothing", "a birth date", "sex and postcode"],
)
def test_records_without_any_name_are_scored(matcher: EngineMatcher, probe: Demographics) -> None:
    """A PDQ by birth date alone scores its probe against itself: no record has a name then."""
    (alone,) = matcher.score(probe, [probe])
    (against,) = matcher.score(probe, [Demographics(family_name="Schmit", birth_date="1980-01-02")])
    assert np.isfinite(alone.match_weight) and np.isfinite(against.match_weight)
