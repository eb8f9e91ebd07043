"""The nickname table: short and familiar given names mapped to one canonical form.

No public dictionary covers Luxembourgish, French, German, Portuguese, Italian,
Spanish, Dutch and English short forms together, so mpi ships its own as data
(``data/nicknames.csv``: ``variant,canonical,language``). Both columns are
folded the way :mod:`mpi.matching.standardise` folds given names (lowercase
ASCII, hyphens as spaces), so a folded first given name is looked up directly.

A variant is listed only when it points to one name: sex- or language-ambiguous
short forms (Alex, Chris, Dani, Toni, Fred) are left out on purpose, since a
wrong canonical form would make two different people's names look equal.
Canonical forms stay in their own language (Joseph, Josef and José are not
merged): the comparators' string similarity handles cross-language spellings.
"""

from __future__ import annotations

import csv
import functools
import io
from importlib import resources

import numpy as np
import numpy.typing as npt
import pandas as pd

_DATA_PACKAGE = "mpi.matching.data"
_TABLE = "nicknames.csv"


@functools.cache
def _table() -> dict[str, str]:
    text = resources.files(_DATA_PACKAGE).joinpath(_TABLE).read_text(encoding="utf-8")
    return {row["variant"]: row["canonical"] for row in csv.DictReader(io.StringIO(text))}


def load_nicknames() -> dict[str, str]:
    """Variant -> canonical given name, both folded (``"jempi"`` -> ``"jean pierre"``)."""
    return dict(_table())


def canonical_given_names(values: npt.NDArray[np.object_]) -> npt.NDArray[np.object_]:
    """Canonical form of each folded given name; names not in the table map to themselves.

    ``None`` (missing) stays ``None``. The lookup runs once per distinct value.
    """
    table = _table()
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [table.get(name, name) for name in uniques.tolist()]
    mapped[-1] = None  # the factorize sentinel -1 picks this slot
    result: npt.NDArray[np.object_] = mapped[codes]
    return result
