"""Phonetic keys: Kölner Phonetik against its published rules, Double Metaphone on LU/DE/FR/PT names."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpi.matching.phonetics import _cologne_chunk, _cologne_one, cologne, double_metaphone, to_ascii

# --- a plain, letter-by-letter reading of the published Kölner table, to check the matrix code ---

_VOWELS = set("aeijouy")


def _reference_cologne_word(word: str) -> str:
    digits: list[str] = []
    for i, ch in enumerate(word):
        prev = word[i - 1] if i > 0 else ""
        nxt = word[i + 1] if i + 1 < len(word) else ""
        if ch in _VOWELS:
            digits.append("0")
        elif ch == "h":
            continue
        elif ch == "b":
            digits.append("1")
        elif ch == "p":
            digits.append("3" if nxt == "h" else "1")
        elif ch in "dt":
            digits.append("8" if nxt and nxt in "csz" else "2")
        elif ch in "fvw":
            digits.append("3")
        elif ch in "gkq":
            digits.append("4")
        elif ch == "c":
            if i == 0:
                hard = bool(nxt) and nxt in "ahkloqrux"
            else:
                hard = bool(nxt) and nxt in "ahkoqux" and prev not in ("s", "z")
            digits.append("4" if hard else "8")
        elif ch == "x":
            digits.extend(["8"] if prev and prev in "ckq" else ["4", "8"])
        elif ch == "l":
            digits.append("5")
        elif ch in "mn":
            digits.append("6")
        elif ch == "r":
            digits.append("7")
        elif ch in "sz":
            digits.append("8")
    collapsed = [d for i, d in enumerate(digits) if i == 0 or d != digits[i - 1]]
    if not collapsed:
        return ""
    return collapsed[0] + "".join(d for d in collapsed[1:] if d != "0")


def _reference_cologne(text: str) -> str:
    return " ".join(code for code in (_reference_cologne_word(w) for w in text.split()) if code)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        # The worked examples of the published description.
        ("Müller-Lüdenscheidt", "65752682"),
        ("Breschnew", "17863"),
        ("Wikipedia", "3412"),
        # Common German surnames.
        ("Müller", "657"),
        ("Schmidt", "862"),
        ("Schneider", "8627"),
        ("Fischer", "387"),
        ("Weber", "317"),
        ("Meyer", "67"),
        ("Wagner", "3467"),
        ("Schulz", "858"),
        ("Becker", "147"),
        ("Hoffmann", "0366"),
        # C at the start of a word, X as 48, P before H, D/T before C S Z.
        ("Cäsar", "487"),
        ("Claudia", "452"),
        ("Celina", "856"),
        ("Xaver", "4837"),
        ("Axel", "0485"),
        ("Philipp", "351"),
        ("Matz", "68"),
    ],
)
def test_cologne_matches_published_codes(name: str, code: str) -> None:
    assert cologne([name]) == [code]


def test_cologne_keeps_schmitz_apart_from_the_schmit_variants() -> None:
    schmit, schmitt, schmidt, schmitz = cologne(["Schmit", "Schmitt", "Schmidt", "Schmitz"])
    assert schmit == schmitt == schmidt == "862"
    assert schmitz == "868"


def test_cologne_spelling_variants_share_a_code() -> None:
    assert len(set(cologne(["Meyer", "Maier", "Mayr", "Meier"]))) == 1
    assert cologne(["Müller"]) == cologne(["Mueller"]) == cologne(["MULLER"])


def test_cologne_encodes_each_token_of_a_multi_token_name() -> None:
    assert cologne(["weber schmit", "muller ludenscheidt"]) == ["317 862", "657 52682"]


def test_cologne_of_values_without_codable_letters_is_empty() -> None:
    assert cologne(["", "h", "---", "123"]) == ["", "", "", ""]
    assert cologne(["h weber"]) == ["317"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz  ", max_size=14), max_size=40))
def test_cologne_matrix_code_agrees_with_the_letter_by_letter_rules(values: list[str]) -> None:
    assert cologne(values) == [_reference_cologne(v) for v in values]


def test_cologne_handles_long_and_short_values_together() -> None:
    values = ["a" * 300 + "b", "weber", "", "x"]
    assert cologne(values) == [_reference_cologne(v) for v in values]


def test_double_metaphone_merges_schmit_variants_but_not_schmitz() -> None:
    schmit, schmitt, schmidt, schmitz = double_metaphone(["Schmit", "Schmitt", "Schmidt", "Schmitz"])
    assert schmit == schmitt == schmidt == "XMT"
    assert schmitz != schmit


@pytest.mark.parametrize(
    ("left", "right"),
    [("Müller", "Mueller"), ("Lefebvre", "Lefèbvre"), ("Conceição", "Conceicao"), ("Thomas", "Tomas")],
)
def test_double_metaphone_variants_share_a_code(left: str, right: str) -> None:
    assert double_metaphone([left]) == double_metaphone([right])


def test_double_metaphone_gives_the_primary_code_per_token() -> None:
    assert double_metaphone(["Weber Schmit", "Jean-Pierre", "jean pierre"]) == ["APR XMT", "JNPR", "JN PR"]


def test_double_metaphone_of_values_without_codable_letters_is_empty() -> None:
    assert double_metaphone(["", "h", "123"]) == ["", "", ""]


def test_to_ascii_transliterates_letters_nfkd_leaves_behind() -> None:
    assert to_ascii("Straße Øster Łódź Æsir Œuvre") == "Strasse Oster Lodz AEsir OEuvre"
    assert to_ascii("Conceição Müller") == "Conceicao Muller"
    assert to_ascii("plain") == "plain"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=20))
def test_encoding_a_batch_equals_encoding_each_value_alone(values: list[str]) -> None:
    assert cologne(values) == [cologne([v])[0] for v in values]
    assert double_metaphone(values) == [double_metaphone([v])[0] for v in values]


def test_a_value_holding_the_internal_batch_separator_is_still_encoded_alone() -> None:
    assert cologne(["we\x1fber", "x"]) == ["317", "48"]
    assert double_metaphone(["we\x1fber", "x"]) == double_metaphone(["weber", "x"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=14), min_size=1, max_size=10
    )
)
def test_few_values_coded_letter_by_letter_equal_the_matrix_code(values: list[str]) -> None:
    texts = [" ".join(v.split()) for v in values]
    assert [_cologne_one(t) for t in texts] == _cologne_chunk(texts)
