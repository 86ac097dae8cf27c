"""EDM's bond-length tables and valences (Hoogeboom et al. 2022, after Open Babel's data).

Typical single, double and triple bond lengths in picometres; two atoms are bonded with the
highest order whose length plus its margin (10, 5, 3 pm) exceeds their distance. The allowed
valences decide atom stability. `CHARGED_VALENCES` adds the valences of charged atoms for the
charge-aware variant (MiDi, Vignac et al. 2023); EDM's own numbers ignore charges.
"""

from __future__ import annotations

import numpy as np

BONDS1: dict[str, dict[str, int]] = {
    "H": {
        "H": 74,
        "C": 109,
        "N": 101,
        "O": 96,
        "F": 92,
        "B": 119,
        "Si": 148,
        "P": 144,
        "As": 152,
        "S": 134,
        "Cl": 127,
        "Br": 141,
        "I": 161,
    },
    "C": {
        "H": 109,
        "C": 154,
        "N": 147,
        "O": 143,
        "F": 135,
        "Si": 185,
        "P": 184,
        "S": 182,
        "Cl": 177,
        "Br": 194,
        "I": 214,
    },
    "N": {
        "H": 101,
        "C": 147,
        "N": 145,
        "O": 140,
        "F": 136,
        "Cl": 175,
        "Br": 214,
        "S": 168,
        "I": 222,
        "P": 177,
    },
    "O": {
        "H": 96,
        "C": 143,
        "N": 140,
        "O": 148,
        "F": 142,
        "Br": 172,
        "S": 151,
        "P": 163,
        "Si": 163,
        "Cl": 164,
        "I": 194,
    },
    "F": {
        "H": 92,
        "C": 135,
        "N": 136,
        "O": 142,
        "F": 142,
        "S": 158,
        "Si": 160,
        "Cl": 166,
        "Br": 178,
        "P": 156,
        "I": 187,
    },
    "B": {"H": 119, "Cl": 175},
    "Si": {
        "Si": 233,
        "H": 148,
        "C": 185,
        "O": 163,
        "S": 200,
        "F": 160,
        "Cl": 202,
        "Br": 215,
        "I": 243,
    },
    "Cl": {
        "Cl": 199,
        "H": 127,
        "C": 177,
        "I": 232,
        "N": 175,
        "O": 164,
        "F": 166,
        "Si": 202,
        "B": 175,
        "P": 203,
        "S": 207,
        "Br": 214,
    },
    "S": {
        "H": 134,
        "C": 182,
        "N": 168,
        "O": 151,
        "S": 204,
        "F": 158,
        "Cl": 207,
        "Br": 225,
        "Si": 200,
        "P": 210,
        "I": 234,
    },
    "Br": {
        "Br": 228,
        "H": 141,
        "C": 194,
        "O": 172,
        "N": 214,
        "Si": 215,
        "S": 225,
        "F": 178,
        "Cl": 214,
        "P": 222,
    },
    "P": {
        "P": 221,
        "H": 144,
        "C": 184,
        "O": 163,
        "Cl": 203,
        "S": 210,
        "F": 156,
        "N": 177,
        "Br": 222,
    },
    "I": {
        "H": 161,
        "C": 214,
        "Si": 243,
        "N": 222,
        "O": 194,
        "S": 234,
        "F": 187,
        "I": 266,
        "Cl": 232,
    },
    "As": {"H": 152},
}
BONDS2: dict[str, dict[str, int]] = {
    "C": {"C": 134, "N": 129, "O": 120, "S": 160},
    "N": {"C": 129, "N": 125, "O": 121},
    "O": {"C": 120, "N": 121, "O": 121, "P": 150},
    "P": {"O": 150, "S": 186},
    "S": {"P": 186},
}
BONDS3: dict[str, dict[str, int]] = {
    "C": {"C": 120, "N": 116, "O": 113},
    "N": {"C": 116, "N": 110},
    "O": {"C": 113},
}
MARGINS = (10, 5, 3)

VALENCES: dict[str, tuple[int, ...]] = {
    "H": (1,),
    "C": (4,),
    "N": (3,),
    "O": (2,),
    "F": (1,),
    "B": (3,),
    "Al": (3,),
    "Si": (4,),
    "P": (3, 5),
    "S": (4,),
    "Cl": (1,),
    "As": (3,),
    "Br": (1,),
    "I": (1,),
    "Hg": (1, 2),
    "Bi": (3, 5),
}
CHARGED_VALENCES: dict[tuple[str, int], tuple[int, ...]] = {
    ("C", 1): (3,),
    ("C", -1): (3,),
    ("N", 1): (4,),
    ("N", -1): (2,),
    ("O", 1): (3,),
    ("O", -1): (1,),
    ("S", 1): (3,),
    ("S", -1): (1,),
    ("P", 1): (4,),
    ("P", -1): (2,),
}


def bond_order(a: str, b: str, distance: float) -> int:
    """EDM's bond order (0-3) of elements `a`, `b` at `distance` Angstrom."""
    d = 100.0 * distance
    single = BONDS1.get(a, {}).get(b)
    if single is None or d >= single + MARGINS[0]:
        return 0
    double = BONDS2.get(a, {}).get(b)
    if double is None or d >= double + MARGINS[1]:
        return 1
    triple = BONDS3.get(a, {}).get(b)
    if triple is None or d >= triple + MARGINS[2]:
        return 2
    return 3


def _thresholds() -> tuple[dict[str, int], np.ndarray]:
    """Row of each tabled element and `(3, E + 1, E + 1)` distances in pm below which the
    elements of rows `a`, `b` (in that order) bond with order at least 1, 2, 3 (table length
    plus margin; -inf: no such bond; row E: any element not in the tables)."""
    names = sorted(set(BONDS1) | {b for a in BONDS1.values() for b in a})
    out = np.full((3, len(names) + 1, len(names) + 1), -np.inf)
    for level, (table, margin) in enumerate(zip((BONDS1, BONDS2, BONDS3), MARGINS, strict=True)):
        for a, sa in enumerate(names):
            for b, sb in enumerate(names):
                length = table.get(sa, {}).get(sb)
                if length is not None:
                    out[level, a, b] = length + margin
    return {s: i for i, s in enumerate(names)}, out


_ROWS, _LIMITS = _thresholds()


def bond_matrix(symbols: list[str], pos: np.ndarray) -> np.ndarray:
    """Bond orders `(n, n)` int of one molecule: `bond_order` of every pair `i < j` (table
    lookups by the pair in that order, as EDM's loop), in a few array operations."""
    unknown = len(_ROWS)
    index = np.array([_ROWS.get(s, unknown) for s in symbols], dtype=np.int64)
    limits = _LIMITS[:, index[:, None], index[None, :]]
    d = 100.0 * np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1))
    # order 1 below the single-bond limit, +1 below the double's and +1 below the triple's
    # (each limit is only reached through the previous one, as in `bond_order`)
    below = d[None] < limits
    order = below[0] * (1 + below[1] * (1 + below[2].astype(np.int64)))
    upper = np.triu(order, 1)
    return upper + upper.T


def allowed_valences(element: str, charge: int = 0) -> tuple[int, ...]:
    """The valences that make an atom stable (charged atoms: `CHARGED_VALENCES`)."""
    if charge:
        return CHARGED_VALENCES.get((element, charge), ())
    return VALENCES.get(element, ())
