"""Molecule datasets: QM9 (full, EDM split), the committed QM9 fixture, and the user's files.

Each gives `molecules()` (per split, with bonds and properties) and `states()` (padded tensors
over its element vocabulary). `splits()`, the core dataset interface, returns the padded
positions `(M, N, 3)`; molecule tasks use the structured states.
"""

from __future__ import annotations

import abc
import glob
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Annotated

import numpy as np
from pydantic import Field
from torch import Tensor

from flowforge.data.base import SPLITS, Dataset
from flowforge.errors import InvalidArgumentError
from flowforge_molecules.elements import CHARGES, QM9_ELEMENTS, symbol
from flowforge_molecules.io import read_molecules
from flowforge_molecules.molecules import Molecules
from flowforge_molecules.qm9 import edm_split, load_qm9
from flowforge_molecules.state import MoleculeState

FIXTURE = "qm9_fixture.npz"


class MoleculeDataset(Dataset):
    """Abstract: molecules in fixed train/val/test splits over an element vocabulary."""

    @abc.abstractmethod
    def molecules(self) -> dict[str, Molecules]:
        """The splits, keyed `train`, `val`, `test`."""

    @property
    @abc.abstractmethod
    def elements(self) -> tuple[str, ...]:
        """The element vocabulary of the one-hot atom types."""

    @property
    def property_names(self) -> tuple[str, ...]:
        return self.molecules()["train"].property_names

    @property
    def charges(self) -> tuple[int, ...]:
        """The formal-charge vocabulary: -1, 0, +1 and any other charge in the data (QM9 holds
        120 atoms of charge -2 among 2.36 M)."""
        found = {int(c) for m in self.molecules().values() for c in np.unique(m.charge)}
        return tuple(sorted(found | set(CHARGES)))

    @property
    def max_atoms(self) -> int:
        return max(int(m.n_atoms.max()) for m in self.molecules().values() if len(m))

    def states(self) -> dict[str, MoleculeState]:
        """Each split padded to `max_atoms` over `elements`."""
        n = self.max_atoms
        return {
            k: MoleculeState.from_molecules(m, self.elements, n)
            for k, m in self.molecules().items()
        }

    def splits(self) -> dict[str, Tensor]:
        return {k: s.pos for k, s in self.states().items()}


def _split(mols: Molecules, seed: int, limit: int | None) -> dict[str, Molecules]:
    parts = edm_split(len(mols), seed, limit=limit)
    return {k: mols.subset(v) for k, v in parts.items()}


@dataclass(frozen=True)
class QM9(MoleculeDataset):
    """QM9 with hydrogens (130,831 molecules) from qm9pack: EDM's split sizes 100,000 / 17,748 /
    13,083 by `seed`; properties alpha, gap, homo, lumo, mu, Cv in EDM units.

    The first use builds the cache (parse and bond perception, about a minute on 16 cores).

    >>> qm9 = QM9()
    >>> qm9.molecules()["train"]      # Molecules, 100,000
    """

    seed: Annotated[int, Field(ge=0, description="seed of the split permutation")] = 0
    limit: Annotated[
        int | None,
        Field(
            ge=1,
            description="keep this many molecules of each split, drawn at random (quick runs)",
        ),
    ] = None

    @cached_property
    def _molecules(self) -> dict[str, Molecules]:
        return _split(load_qm9(), self.seed, self.limit)

    def molecules(self) -> dict[str, Molecules]:
        return self._molecules

    @property
    def elements(self) -> tuple[str, ...]:
        return QM9_ELEMENTS


def load_fixture() -> Molecules:
    """The committed QM9 fixture: molecules with at most 6 heavy atoms (see data/README.md)."""
    with resources.as_file(resources.files("flowforge_molecules") / "data" / FIXTURE) as p:
        return Molecules.load(p)


@dataclass(frozen=True)
class QM9Fixture(MoleculeDataset):
    """A committed sample of QM9: 400 molecules with at most 6 heavy atoms, with bonds and
    properties, split 320 / 40 / 40 by `seed`. For tests and CPU smoke runs; no qm9pack needed.
    """

    seed: Annotated[int, Field(ge=0, description="seed of the split permutation")] = 0

    @cached_property
    def _molecules(self) -> dict[str, Molecules]:
        mols = load_fixture()
        perm = np.random.default_rng(self.seed).permutation(len(mols))
        a, b = int(0.8 * len(mols)), int(0.9 * len(mols))
        cut = {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}
        return {k: mols.subset(np.sort(v)) for k, v in cut.items()}

    def molecules(self) -> dict[str, Molecules]:
        return self._molecules

    @property
    def elements(self) -> tuple[str, ...]:
        return QM9_ELEMENTS


def _read_all(pattern: str, properties: tuple[str, ...], where: str) -> Molecules:
    files = sorted(glob.glob(pattern))
    if not files:
        raise InvalidArgumentError(f"data.params.{where}: no file matches {pattern!r}")
    parts = [read_molecules(f, properties) for f in files]
    return _concat(parts)


def _concat(parts: list[Molecules]) -> Molecules:
    first = parts[0]
    cat = np.concatenate
    return Molecules(
        n_atoms=cat([p.n_atoms for p in parts]),
        numbers=cat([p.numbers for p in parts]),
        pos=cat([p.pos for p in parts]),
        charge=cat([p.charge for p in parts]),
        n_bonds=cat([p.n_bonds for p in parts]),
        bond_index=cat([p.bond_index for p in parts]),
        bond_order=cat([p.bond_order for p in parts]),
        properties=cat([p.properties for p in parts]),
        property_names=first.property_names,
        smiles=cat([p.smiles for p in parts]),
    )


@dataclass(frozen=True)
class MoleculeFiles(MoleculeDataset):
    """The user's molecules: SDF or XYZ files (globs). `val`/`test` files, or a seeded cut of
    `train` by `val_fraction` and `test_fraction`; SD tags `properties` become properties.

    >>> MoleculeFiles(train="data/*.sdf", properties=("gap",)).molecules()["train"]
    """

    train: Annotated[str, Field(description="file or glob of .sdf/.xyz training molecules")]
    val: Annotated[str | None, Field(description="file or glob; null: cut from train")] = None
    test: Annotated[str | None, Field(description="file or glob; null: cut from train")] = None
    val_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1
    test_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1
    properties: Annotated[
        tuple[str, ...], Field(description="SD property tags to read as molecular properties")
    ] = ()
    element_vocabulary: Annotated[
        tuple[str, ...] | None,
        Field(description="element symbols of the one-hot types; null: those in the files"),
    ] = None
    seed: Annotated[int, Field(ge=0)] = 0

    @cached_property
    def _molecules(self) -> dict[str, Molecules]:
        train = _read_all(self.train, self.properties, "train")
        given = {k: getattr(self, k) for k in ("val", "test")}
        out = {k: _read_all(v, self.properties, k) for k, v in given.items() if v}
        missing = [k for k in ("val", "test") if k not in out]
        if missing:
            perm = np.random.default_rng(self.seed).permutation(len(train))
            fractions = {"val": self.val_fraction, "test": self.test_fraction}
            start = 0
            for k in missing:
                n = max(1, round(fractions[k] * len(train)))
                out[k] = train.subset(np.sort(perm[start : start + n]))
                start += n
            train = train.subset(np.sort(perm[start:]))
        return {"train": train, **{k: out[k] for k in SPLITS[1:]}}

    def molecules(self) -> dict[str, Molecules]:
        return self._molecules

    @property
    def elements(self) -> tuple[str, ...]:
        if self.element_vocabulary is not None:
            return tuple(self.element_vocabulary)
        found = np.unique(np.concatenate([m.numbers for m in self.molecules().values()]))
        return tuple(symbol(int(z)) for z in found)
