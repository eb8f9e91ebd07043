"""Phonetic keys for names: Double Metaphone and Kölner Phonetik (Cologne).

Both encoders take a sequence of *distinct* strings (callers factorise a column
first, so the cost follows the vocabulary, not the row count) and return one key
per value. Letters outside A–Z are transliterated the way the encoders'
published tables intend (``ü`` -> ``u``, ``ß`` -> ``ss``), whitespace separates
tokens, and every other character is ignored. A multi-token name is encoded
token by token and the keys are joined with one space, so ``"weber schmit"``
keeps one key per surname for token-level comparison.

Double Metaphone comes from the ``doublemetaphone`` package (Forest Gregg's
wrapper of Lawrence Philips' C++ reference code); only the primary code is kept.
Kölner Phonetik is implemented here, vectorised over a character matrix.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from doublemetaphone import doublemetaphone as _double_metaphone_pair  # type: ignore[import-untyped]

# Letters that NFKD does not decompose into an ASCII base letter.
_SPECIAL_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "SS",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "TH",
        "ı": "i",
        "ħ": "h",
        "Ħ": "H",
        "ŧ": "t",
        "Ŧ": "T",
    }
)
_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c"
_LOWERCASE = bytes.maketrans(string.ascii_uppercase.encode(), string.ascii_lowercase.encode())
_LOWERCASE_WHITESPACE_AS_SPACE = bytes.maketrans(
    string.ascii_uppercase.encode() + _ASCII_WHITESPACE,
    string.ascii_lowercase.encode() + b" " * len(_ASCII_WHITESPACE),
)
_NOT_LETTER_OR_SPACE = bytes(set(range(256)) - set(string.ascii_letters.encode()) - set(_ASCII_WHITESPACE))
_NOT_LETTER_SPACE_OR_SEPARATOR = bytes(set(_NOT_LETTER_OR_SPACE) - {0x1F})


def to_ascii(text: str) -> str:
    """Transliterate Unicode letters to ASCII: accents dropped, ``ß`` -> ``ss``, ``æ`` -> ``ae``, ...

    Characters with no ASCII spelling (symbols, other scripts) are dropped.
    """
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_SPECIAL_LETTERS))
    return decomposed.encode("ascii", "ignore").decode("ascii")


_UNIT_SEPARATOR = "\x1f"
_SPACE_RUNS = re.compile(" {2,}")
_SPACE_BESIDE_SEPARATOR = re.compile(f" ?{_UNIT_SEPARATOR} ?")


def _encoder_input(value: str) -> str:
    """Lowercase ASCII letters and single spaces: the alphabet both encoders work on."""
    letters = to_ascii(value).encode("ascii").translate(_LOWERCASE, _NOT_LETTER_OR_SPACE)
    return b" ".join(letters.split()).decode("ascii")


def _encoder_inputs(values: Sequence[str]) -> list[str]:
    """:func:`_encoder_input` of every value, cleaned in a few C-level passes over one joined string."""
    if not values:
        return []
    joined = _UNIT_SEPARATOR.join(v if v.isascii() else to_ascii(v) for v in values)
    text = joined.encode("ascii").translate(_LOWERCASE_WHITESPACE_AS_SPACE, _NOT_LETTER_SPACE_OR_SEPARATOR)
    cleaned = _SPACE_BESIDE_SEPARATOR.sub(_UNIT_SEPARATOR, _SPACE_RUNS.sub(" ", text.decode("ascii")))
    parts = cleaned.strip(" ").split(_UNIT_SEPARATOR)
    if len(parts) != len(values):  # a value held the separator itself: clean one by one
        return [_encoder_input(value) for value in values]
    return parts


def double_metaphone(values: Sequence[str]) -> list[str]:
    """Primary Double Metaphone code of each value (``""`` when a value has no codable letter)."""
    keys: list[str] = []
    for text in _encoder_inputs(values):
        if " " not in text:
            keys.append(_double_metaphone_pair(text)[0])
            continue
        codes = [_double_metaphone_pair(token)[0] for token in text.split(" ")]
        keys.append(" ".join(code for code in codes if code))
    return keys


# --- Kölner Phonetik ---------------------------------------------------------
#
# Codes per the published table (Postel 1969, as tabulated on de.wikipedia.org):
#   A E I J O U Y -> 0;  H -> (none);  B -> 1;  P -> 1, but 3 before H;
#   D T -> 2, but 8 before C S Z;  F V W -> 3;  G K Q -> 4;
#   C -> 4 at the start of a word before A H K L O Q R U X, else 8 there;
#        elsewhere 4 before A H K O Q U X unless after S Z, else 8;
#   X -> 48, but 8 after C K Q;  L -> 5;  M N -> 6;  R -> 7;  S Z -> 8.
# Then runs of one digit collapse to one (H emits nothing, so it does not break
# a run), and every 0 except one at the start of the word is removed.

_NONE = -1
_SEPARATOR = 10  # a space between tokens: breaks runs, restarts "start of word"


def _byte_set(letters: str) -> npt.NDArray[np.bool_]:
    member = np.zeros(256, dtype=bool)
    member[np.frombuffer(letters.encode("ascii"), dtype=np.uint8)] = True
    return member


def _base_codes() -> npt.NDArray[np.int8]:
    table = np.full(256, _NONE, dtype=np.int8)
    for letters, code in (
        ("aeijouy", 0),
        ("bp", 1),
        ("dt", 2),
        ("fvw", 3),
        ("gkq", 4),
        ("l", 5),
        ("mn", 6),
        ("r", 7),
        ("sz", 8),
        ("cx", 8),  # refined by context below
    ):
        table[np.frombuffer(letters.encode("ascii"), dtype=np.uint8)] = code
    table[ord(" ")] = _SEPARATOR
    return table


_BASE = _base_codes()
_IS_LETTER = _byte_set("abcdefghijklmnopqrstuvwxyz")
_CSZ = _byte_set("csz")
_SZ = _byte_set("sz")
_CKQ = _byte_set("ckq")
_C_HARD_AT_START = _byte_set("ahkloqrux")
_C_HARD = _byte_set("ahkoqux")
_DIGIT_CHARS = np.array([ord("0") + d for d in range(10)] + [ord(" ")], dtype=np.uint8)
_CHUNK = 65536  # values per matrix; sorted by length so one long value widens few rows


def _cologne_chunk(texts: list[str]) -> list[str]:
    width = max(len(t) for t in texts)
    if width == 0:
        return ["" for _ in texts]
    chars = np.array(texts, dtype=f"S{width}").view(np.uint8).reshape(len(texts), width)
    before = np.zeros_like(chars)
    before[:, 1:] = chars[:, :-1]
    after = np.zeros_like(chars)
    after[:, :-1] = chars[:, 1:]
    word_start = _IS_LETTER[chars] & ~_IS_LETTER[before]

    code = _BASE[chars].copy()
    code[(chars == ord("p")) & (after == ord("h"))] = 3
    code[((chars == ord("d")) | (chars == ord("t"))) & _CSZ[after]] = 8
    is_c = chars == ord("c")
    hard_c = np.where(word_start, _C_HARD_AT_START[after], _C_HARD[after] & ~_SZ[before])
    code[is_c & hard_c] = 4
    # X is "48" unless after C K Q: give it a leading 4 in a second slot so the
    # 4 can merge with a preceding 4 and the 8 with a following 8.
    x_two_digits = (chars == ord("x")) & ~_CKQ[before]
    lead = np.where(x_two_digits, np.int8(4), np.int8(_NONE))

    n, w = chars.shape
    sequence = np.empty((n, 2 * w), dtype=np.int8)
    sequence[:, 0::2] = lead
    sequence[:, 1::2] = code
    emitted = sequence != _NONE
    position = np.where(emitted, np.arange(2 * w), -1)
    last_emitted = np.maximum.accumulate(position, axis=1)
    previous_index = np.empty_like(last_emitted)
    previous_index[:, 0] = -1
    previous_index[:, 1:] = last_emitted[:, :-1]
    previous = np.where(
        previous_index >= 0, np.take_along_axis(sequence, np.maximum(previous_index, 0), axis=1), _NONE
    )
    keep = emitted & (sequence != previous)
    first_in_word = (previous == _NONE) | (previous == _SEPARATOR)
    keep &= (sequence != 0) | first_in_word

    order = np.argsort(~keep, axis=1, kind="stable")
    packed = _DIGIT_CHARS[np.take_along_axis(np.where(keep, sequence, 0), order, axis=1)]
    packed[~np.take_along_axis(keep, order, axis=1)] = 0
    keys = np.ascontiguousarray(packed).view(f"S{2 * w}").ravel()
    decoded = [key.decode("ascii") for key in keys.tolist()]
    # A token with no codable letter ("h") leaves a stray space behind.
    return [" ".join(key.split()) if " " in key else key for key in decoded]


_BASE_OF: dict[str, int] = {chr(byte): code for byte, code in enumerate(_BASE.tolist()) if code != _NONE}
# Up to this many values, coding one character at a time beats building the arrays.
_FEW = 16


def _cologne_one(text: str) -> str:
    """:func:`_cologne_chunk` for one cleaned value, without arrays (the same rules, in the same order)."""
    digits: list[str] = []
    previous = _NONE  # the last code emitted, kept or not: runs collapse before zeros are dropped
    last = len(text) - 1
    for i, char in enumerate(text):
        before = text[i - 1] if i else ""
        after = text[i + 1] if i < last else ""
        code = _BASE_OF.get(char, _NONE)
        if char == "p" and after == "h":
            code = 3
        elif char in "dt" and after and after in "csz":
            code = 8
        elif char == "c":
            word_start = not before or before == " "
            hard = (
                (after and after in "ahkloqrux")
                if word_start
                else (after and after in "ahkoqux" and before not in "sz")
            )
            if hard:
                code = 4
        emitted = (4, code) if char == "x" and not (before and before in "ckq") else (code,)
        for value in emitted:
            if value == _NONE:
                continue
            if value != previous and (value != 0 or previous in (_NONE, _SEPARATOR)):
                digits.append(" " if value == _SEPARATOR else str(value))
            previous = value
    return " ".join("".join(digits).split())


def cologne(values: Sequence[str]) -> list[str]:
    """Kölner Phonetik code of each value (``""`` when a value has no codable letter)."""
    texts = _encoder_inputs(values)
    if len(texts) <= _FEW:
        return [_cologne_one(text) for text in texts]
    keys = [""] * len(texts)
    order = np.argsort(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable").tolist()
    for start in range(0, len(order), _CHUNK):
        chunk = order[start : start + _CHUNK]
        for index, key in zip(chunk, _cologne_chunk([texts[i] for i in chunk]), strict=True):
            keys[index] = key
    return keys
