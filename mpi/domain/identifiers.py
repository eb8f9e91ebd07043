"""The Luxembourg national identification number (matricule).

13 digits ``YYYY MM DD SSS L V`` (Règlement grand-ducal of 28 Nov 2013): birth year,
month, day, a 3-digit sequence, then a Luhn and a Verhoeff check digit, *both
computed over the first 11 digits*. Month and day may be ``00``. The legacy
11-digit form (``YYYYMMDD NN C``, mod-11 check digit) is upgraded by appending
the two check digits; the raw value is kept by callers.

Scalar functions serve the online paths; :func:`classify_matricules` checks a
whole column at once with numpy for batch work.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

_VERHOEFF_D = np.array(
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ],
    dtype=np.int8,
)
_VERHOEFF_P = np.array(
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 7, 6, 8, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ],
    dtype=np.int8,
)
_VERHOEFF_INV = np.array([0, 4, 3, 2, 1, 5, 6, 7, 8, 9], dtype=np.int8)
_LUHN_DOUBLE = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.int8)
_LEGACY_WEIGHTS = np.array([5, 4, 3, 2, 7, 6, 5, 4, 3, 2], dtype=np.int64)

PAYLOAD_LENGTH = 11


class MatriculeStatus(enum.IntEnum):
    """Outcome of checking one raw national number."""

    MISSING = 0
    VALID = 1  # a valid 13-digit number
    UPGRADED = 2  # a valid legacy 11-digit number, upgraded to 13 digits
    INVALID = 3  # present but failing a check: a typing error, never matched on


def _digits(values: Iterable[str], width: int) -> npt.NDArray[np.int8]:
    joined = "".join(values).encode("ascii")
    return (np.frombuffer(joined, dtype=np.uint8).astype(np.int8) - 48).reshape(-1, width)


def luhn_digits(payload: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    """Luhn check digit of each row of an (n, k) digit matrix."""
    k = payload.shape[1]
    # The rightmost payload digit is doubled, then every second one leftwards.
    doubled = np.zeros(k, dtype=bool)
    doubled[k - 1 :: -2] = True
    contrib = np.where(doubled, _LUHN_DOUBLE[payload], payload).astype(np.int64)
    return np.asarray((10 - contrib.sum(axis=1) % 10) % 10, dtype=np.int8)


def verhoeff_digits(payload: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    """Verhoeff check digit of each row of an (n, k) digit matrix."""
    k = payload.shape[1]
    c = np.zeros(payload.shape[0], dtype=np.int8)
    for i in range(k):
        digit = payload[:, k - 1 - i]
        c = _VERHOEFF_D[c, _VERHOEFF_P[(i + 1) % 8, digit]]
    return np.asarray(_VERHOEFF_INV[c], dtype=np.int8)


def legacy_check_digits(payload: npt.NDArray[np.int8]) -> npt.NDArray[np.int64]:
    """Mod-11 check digit of legacy numbers (first 10 digits); 10 means no valid digit exists."""
    remainder = (payload[:, :10].astype(np.int64) * _LEGACY_WEIGHTS).sum(axis=1) % 11
    return np.asarray((11 - remainder) % 11, dtype=np.int64)


def _plausible_date(d: npt.NDArray[np.int8]) -> npt.NDArray[np.bool_]:
    month = d[:, 4] * 10 + d[:, 5]
    day = d[:, 6] * 10 + d[:, 7]
    return (month <= 12) & (day <= 31)


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and np.isnan(value)


def classify_matricules(raw: npt.NDArray[np.object_]) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.int8]]:
    """Check a column of raw national numbers.

    Returns the normalised 13-digit numbers (``None`` where missing or invalid)
    and a :class:`MatriculeStatus` code per row. Spaces, dots and dashes are
    ignored, as people type them in groups.
    """
    n = len(raw)
    normalised = np.full(n, None, dtype=object)
    status = np.zeros(n, dtype=np.int8)
    if n == 0:
        return normalised, status
    # Python strings, not numpy's fixed-width ones, which drop trailing NUL characters.
    cleaned = ["" if v is None or _is_nan(v) else str(v) for v in raw]
    text = np.array([v.replace(" ", "").replace(".", "").replace("-", "") for v in cleaned], dtype=object)
    lengths = np.array([len(v) for v in text.tolist()], dtype=np.int64)
    # ASCII only: str.isdigit() also accepts other scripts' digits and superscripts.
    is_digits = np.array([t.isascii() and t.isdigit() for t in text.tolist()], dtype=bool)
    status[(lengths > 0)] = MatriculeStatus.INVALID

    thirteen = np.flatnonzero((lengths == 13) & is_digits)
    if thirteen.size:
        d = _digits(text[thirteen].tolist(), 13)
        ok = (
            (luhn_digits(d[:, :PAYLOAD_LENGTH]) == d[:, 11])
            & (verhoeff_digits(d[:, :PAYLOAD_LENGTH]) == d[:, 12])
            & _plausible_date(d)
        )
        good = thirteen[ok]
        status[good] = MatriculeStatus.VALID
        normalised[good] = text[good]

    eleven = np.flatnonzero((lengths == 11) & is_digits)
    if eleven.size:
        d = _digits(text[eleven].tolist(), 11)
        ok = (legacy_check_digits(d) == d[:, 10]) & _plausible_date(d)
        good = eleven[ok]
        if good.size:
            payload = d[ok]
            luhn = luhn_digits(payload).astype(np.int64)
            verhoeff = verhoeff_digits(payload).astype(np.int64)
            upgraded = [f"{t}{lu}{ve}" for t, lu, ve in zip(text[good].tolist(), luhn, verhoeff, strict=True)]
            normalised[good] = upgraded
            status[good] = MatriculeStatus.UPGRADED
    return normalised, status


def check_matricule(raw: str | None) -> tuple[str | None, MatriculeStatus]:
    """Check one raw national number, exactly as :func:`classify_matricules` checks a column.

    Plain Python: for one value, numpy's per-call overhead costs a hundred times the check.
    """
    if raw is None or _is_nan(raw):
        return None, MatriculeStatus.MISSING
    text = str(raw).replace(" ", "").replace(".", "").replace("-", "")
    if not text:
        return None, MatriculeStatus.MISSING
    if not (text.isascii() and text.isdigit()) or len(text) not in (11, 13):
        return None, MatriculeStatus.INVALID
    digits = [ord(ch) - 48 for ch in text]
    if not (digits[4] * 10 + digits[5] <= 12 and digits[6] * 10 + digits[7] <= 31):
        return None, MatriculeStatus.INVALID
    payload = digits[:PAYLOAD_LENGTH]
    if len(digits) == 13:
        if digits[11] == _luhn_digit(payload) and digits[12] == _verhoeff_digit(payload):
            return text, MatriculeStatus.VALID
        return None, MatriculeStatus.INVALID
    if (11 - sum(d * w for d, w in zip(digits, _LEGACY_WEIGHTS_LIST, strict=False)) % 11) % 11 != digits[10]:
        return None, MatriculeStatus.INVALID
    return f"{text}{_luhn_digit(payload)}{_verhoeff_digit(payload)}", MatriculeStatus.UPGRADED


_VERHOEFF_D_LIST: list[list[int]] = _VERHOEFF_D.tolist()
_VERHOEFF_P_LIST: list[list[int]] = _VERHOEFF_P.tolist()
_VERHOEFF_INV_LIST: list[int] = _VERHOEFF_INV.tolist()
_LUHN_DOUBLE_LIST: list[int] = _LUHN_DOUBLE.tolist()
_LEGACY_WEIGHTS_LIST: list[int] = _LEGACY_WEIGHTS.tolist()


def _luhn_digit(payload: list[int]) -> int:
    total = sum(_LUHN_DOUBLE_LIST[d] if (len(payload) - 1 - i) % 2 == 0 else d for i, d in enumerate(payload))
    return (10 - total % 10) % 10


def _verhoeff_digit(payload: list[int]) -> int:
    c = 0
    for i, digit in enumerate(reversed(payload)):
        c = _VERHOEFF_D_LIST[c][_VERHOEFF_P_LIST[(i + 1) % 8][digit]]
    return _VERHOEFF_INV_LIST[c]


def is_valid_matricule(raw: str | None) -> bool:
    """True for a valid 13-digit number or a valid legacy 11-digit one."""
    return check_matricule(raw)[1] in (MatriculeStatus.VALID, MatriculeStatus.UPGRADED)


def complete_matricule(payload11: str) -> str:
    """Append the Luhn and Verhoeff digits to an 11-digit payload."""
    if len(payload11) != PAYLOAD_LENGTH or not payload11.isdigit():
        raise ValueError("a matricule payload is 11 digits")
    d = _digits([payload11], PAYLOAD_LENGTH)
    return f"{payload11}{int(luhn_digits(d)[0])}{int(verhoeff_digits(d)[0])}"


def complete_matricules(payloads: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    """(n, 11) digit matrix -> (n, 13) matrix with both check digits appended."""
    return np.concatenate(
        [payloads, luhn_digits(payloads)[:, None], verhoeff_digits(payloads)[:, None]], axis=1
    ).astype(np.int8)


def suggest_corrections(raw: str) -> list[str]:
    """Valid 13-digit numbers one substitution or adjacent transposition away from ``raw``.

    A hint for identity-vigilance reviewers, never used to match automatically.
    """
    text = "".join(ch for ch in raw if ch.isdigit())
    if len(text) != 13:
        return []
    candidates: set[str] = set()
    for i in range(13):
        for digit in "0123456789":
            if digit != text[i]:
                candidates.add(text[:i] + digit + text[i + 1 :])
        if i < 12 and text[i] != text[i + 1]:
            candidates.add(text[:i] + text[i + 1] + text[i] + text[i + 2 :])
    ordered = sorted(candidates)
    _, status = classify_matricules(np.array(ordered, dtype=object))
    return [c for c, s in zip(ordered, status.tolist(), strict=True) if s == MatriculeStatus.VALID]


def legacy_sex(raw11: str) -> str | None:
    """Sex implied by a legacy 11-digit number: odd order number for men, even for women."""
    if len(raw11) != 11 or not raw11.isdigit():
        return None
    return "M" if int(raw11[8:10]) % 2 == 1 else "F"
