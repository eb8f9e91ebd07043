"""MPI ids: stable, opaque person identifiers with a check character.

An MPI id is 12 random Crockford base32 characters (60 bits, never derived from
demographics, so it need not change when a name is corrected) followed by one
ISO 7064 MOD 37-2 check character. Because 37 is prime, that check catches every
single-character substitution and every adjacent transposition when an id is
typed by hand (the hybrid MOD 37,36 system misses some transpositions). MOD 37-2
needs a 37th check symbol, ``*``; ids that would need it are simply never
issued, since bodies are drawn at random anyway.
"""

from __future__ import annotations

import secrets

# Crockford's alphabet leaves out I, L, O and U, which people misread as 1, 1, 0 and V.
BODY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
BODY_LENGTH = 12
ID_LENGTH = BODY_LENGTH + 1
_MODULUS = 37
_VALUE = {ch: i for i, ch in enumerate(CHECK_ALPHABET)}


def _check_value(body: str) -> int:
    product = 0
    for ch in body:
        product = ((product + _VALUE[ch]) * 2) % _MODULUS
    return (_MODULUS + 1 - product) % _MODULUS


def check_character(body: str) -> str | None:
    """ISO 7064 MOD 37-2 check character of ``body``; ``None`` when it would be ``*``."""
    value = _check_value(body)
    return CHECK_ALPHABET[value] if value < len(CHECK_ALPHABET) else None


def new_mpi_id() -> str:
    """A fresh random MPI id."""
    while True:
        bits = int.from_bytes(secrets.token_bytes(8), "big")  # 64 random bits; 60 are used
        body = "".join(BODY_ALPHABET[(bits >> (5 * i)) & 31] for i in range(BODY_LENGTH))
        check = check_character(body)
        if check is not None:
            return body + check


def normalise_mpi_id(text: str) -> str:
    """Upper-case and drop the separators people type (spaces, hyphens)."""
    return text.strip().upper().replace("-", "").replace(" ", "")


def is_valid_mpi_id(text: str) -> bool:
    """True when ``text`` (normalised) has the right shape and check character."""
    candidate = normalise_mpi_id(text)
    if len(candidate) != ID_LENGTH:
        return False
    body, check = candidate[:BODY_LENGTH], candidate[BODY_LENGTH]
    if any(ch not in BODY_ALPHABET for ch in body):
        return False
    return check_character(body) == check
