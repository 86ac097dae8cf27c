"""Atom vocabularies: the elements and formal charges a dataset's one-hot features index.

QM9 holds H, C, N, O, F; formal charges from bond perception lie in {-1, 0, +1}. Both tuples are
part of a trained model's meaning, so datasets name them and checkpoints record them.
"""

from __future__ import annotations

from rdkit.Chem import GetPeriodicTable

QM9_ELEMENTS: tuple[str, ...] = ("H", "C", "N", "O", "F")
CHARGES: tuple[int, ...] = (-1, 0, 1)

_TABLE = GetPeriodicTable()


def atomic_number(symbol: str) -> int:
    """The atomic number of an element symbol (`C` -> 6)."""
    return int(_TABLE.GetAtomicNumber(symbol))


def symbol(number: int) -> str:
    """The element symbol of an atomic number (6 -> `C`)."""
    return str(_TABLE.GetElementSymbol(int(number)))


def mass(symbol_: str) -> float:
    """The standard atomic weight of an element (Da)."""
    return float(_TABLE.GetAtomicWeight(symbol_))
