"""A set of molecules stored column-wise (atoms, bonds, properties), saved as one `.npz`.

Atoms of all molecules are concatenated (`numbers`, `pos`, `charge`), as are bonds
(`bond_index` local to each molecule, `bond_order`); `n_atoms` and `n_bonds` cut them apart.
Compact on disk and quick to load for all of QM9, and the single format of the QM9 cache, the
committed fixture and the user's converted files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Geometry import Point3D

from flowforge.errors import InvalidArgumentError

FORMAT = 1


@dataclass(frozen=True)
class Molecules:
    """Molecules with 3-D coordinates (Angstrom), perceived bonds, formal charges and properties.

    `properties (M, P)` with `property_names` (e.g. QM9's alpha, gap, homo, lumo, mu, Cv);
    `smiles (M,)` canonical heavy-atom SMILES of the perceived molecules (novelty, FCD).

    >>> mols = Molecules.load("qm9.npz")
    >>> mol = mols.to_rdkit(0)                       # RDKit molecule with conformer
    >>> small = mols.subset(np.flatnonzero(mols.heavy_atoms() <= 6))
    """

    n_atoms: np.ndarray
    numbers: np.ndarray
    pos: np.ndarray
    charge: np.ndarray
    n_bonds: np.ndarray
    bond_index: np.ndarray
    bond_order: np.ndarray
    properties: np.ndarray
    property_names: tuple[str, ...] = ()
    smiles: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __post_init__(self) -> None:
        m = len(self.n_atoms)
        if int(self.n_atoms.sum()) != len(self.numbers) or len(self.pos) != len(self.numbers):
            raise InvalidArgumentError("Molecules: n_atoms does not add up to the atom arrays")
        if int(self.n_bonds.sum()) != len(self.bond_order) or self.properties.shape[0] != m:
            raise InvalidArgumentError("Molecules: n_bonds or properties do not match n_atoms")

    def __len__(self) -> int:
        return len(self.n_atoms)

    @property
    def atom_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_atoms)])

    @property
    def bond_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_bonds)])

    def atoms(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`(numbers (n,), pos (n, 3), charge (n,))` of molecule `i`."""
        a, b = self.atom_offsets[i : i + 2]
        return self.numbers[a:b], self.pos[a:b], self.charge[a:b]

    def bonds(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """`(index (k, 2), order (k,))` of molecule `i`."""
        a, b = self.bond_offsets[i : i + 2]
        return self.bond_index[a:b], self.bond_order[a:b]

    def heavy_atoms(self) -> np.ndarray:
        """Heavy-atom count of each molecule `(M,)`."""
        heavy = (self.numbers > 1).astype(np.int64)
        return np.add.reduceat(heavy, self.atom_offsets[:-1]) if len(self) else heavy[:0]

    def subset(self, index: np.ndarray) -> Molecules:
        """The molecules at `index`, in that order."""
        index = np.asarray(index, dtype=np.int64)
        ao, bo = self.atom_offsets, self.bond_offsets
        atoms = np.concatenate([np.arange(ao[i], ao[i + 1]) for i in index] or [[]]).astype(int)
        bonds = np.concatenate([np.arange(bo[i], bo[i + 1]) for i in index] or [[]]).astype(int)
        return Molecules(
            n_atoms=self.n_atoms[index],
            numbers=self.numbers[atoms],
            pos=self.pos[atoms],
            charge=self.charge[atoms],
            n_bonds=self.n_bonds[index],
            bond_index=self.bond_index[bonds].reshape(-1, 2),
            bond_order=self.bond_order[bonds],
            properties=self.properties[index],
            property_names=self.property_names,
            smiles=self.smiles[index] if len(self.smiles) else self.smiles,
        )

    def to_rdkit(self, i: int) -> Chem.Mol:
        """Molecule `i` as an RDKit molecule: atoms, formal charges, bonds and a conformer."""
        numbers, pos, charge = self.atoms(i)
        index, order = self.bonds(i)
        return build_rdkit(numbers, pos, charge, index, order)

    def save(self, path: str | Path) -> None:
        """Write to `path` (.npz, compressed); `load` reads it back."""
        np.savez_compressed(
            path,
            format=np.array(FORMAT),
            n_atoms=self.n_atoms,
            numbers=self.numbers,
            pos=self.pos,
            charge=self.charge,
            n_bonds=self.n_bonds,
            bond_index=self.bond_index,
            bond_order=self.bond_order,
            properties=self.properties,
            property_names=np.array(self.property_names, dtype=str),
            smiles=np.array(self.smiles, dtype=str),
        )

    @classmethod
    def load(cls, path: str | Path) -> Molecules:
        """Read a file written by `save`."""
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != FORMAT:
                raise InvalidArgumentError(
                    f"{path}: molecule file format {int(z['format'])}, expected {FORMAT}; "
                    "delete it to have it rebuilt"
                )
            return cls(
                n_atoms=z["n_atoms"].astype(np.int64),
                numbers=z["numbers"],
                pos=z["pos"],
                charge=z["charge"],
                n_bonds=z["n_bonds"].astype(np.int64),
                bond_index=z["bond_index"],
                bond_order=z["bond_order"],
                properties=z["properties"],
                property_names=tuple(str(s) for s in z["property_names"]),
                smiles=z["smiles"].astype(object),
            )

    @classmethod
    def from_rdkit(
        cls,
        mols: list[Chem.Mol],
        properties: np.ndarray | None = None,
        property_names: tuple[str, ...] = (),
    ) -> Molecules:
        """Molecules from RDKit molecules with one conformer each and explicit hydrogens."""
        n_atoms, numbers, pos, charge, n_bonds, index, order, smiles = ([] for _ in range(8))
        for mol in mols:
            if mol.GetNumConformers() == 0:
                raise InvalidArgumentError("a molecule has no 3-D conformer; give 3-D structures")
            mol = Chem.Mol(mol)
            Chem.Kekulize(mol, clearAromaticFlags=True)
            n_atoms.append(mol.GetNumAtoms())
            numbers.extend(a.GetAtomicNum() for a in mol.GetAtoms())
            charge.extend(a.GetFormalCharge() for a in mol.GetAtoms())
            pos.append(mol.GetConformer().GetPositions())
            bonds = mol.GetBonds()
            n_bonds.append(len(bonds))
            index.extend((b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in bonds)
            order.extend(int(b.GetBondTypeAsDouble()) for b in bonds)
            smiles.append(canonical_smiles(mol))
        m = len(mols)
        props = np.zeros((m, 0)) if properties is None else np.asarray(properties, np.float64)
        return cls(
            n_atoms=np.array(n_atoms, dtype=np.int64),
            numbers=np.array(numbers, dtype=np.int16),
            pos=np.concatenate(pos).astype(np.float32) if pos else np.zeros((0, 3), np.float32),
            charge=np.array(charge, dtype=np.int8),
            n_bonds=np.array(n_bonds, dtype=np.int64),
            bond_index=np.array(index, dtype=np.int16).reshape(-1, 2),
            bond_order=np.array(order, dtype=np.int8),
            properties=props,
            property_names=tuple(property_names),
            smiles=np.array(smiles, dtype=object),
        )


def build_rdkit(numbers, pos, charge, index, order) -> Chem.Mol:
    """An RDKit molecule from atom and bond arrays, with one conformer (not sanitised)."""
    kinds = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
    rw = Chem.RWMol()
    for z, q in zip(numbers, charge, strict=True):
        atom = Chem.Atom(int(z))
        atom.SetFormalCharge(int(q))
        atom.SetNoImplicit(True)
        rw.AddAtom(atom)
    for (a, b), k in zip(index, order, strict=True):
        rw.AddBond(int(a), int(b), kinds.get(int(k), Chem.BondType.SINGLE))
    conf = Chem.Conformer(len(numbers))
    for j, (x, y, w) in enumerate(np.asarray(pos, dtype=np.float64)):
        conf.SetAtomPosition(j, Point3D(x, y, w))
    mol = rw.GetMol()
    mol.AddConformer(conf, assignId=True)
    return mol


def canonical_smiles(mol: Chem.Mol) -> str:
    """Canonical heavy-atom SMILES of a sanitisable molecule; '' if it cannot be sanitised."""
    try:
        copy = Chem.Mol(mol)
        Chem.SanitizeMol(copy)
        return Chem.MolToSmiles(Chem.RemoveHs(copy))
    except (ValueError, RuntimeError, Chem.rdchem.KekulizeException):
        return ""
