"""Bonds and formal charges from 3-D coordinates with RDKit's `rdDetermineBonds` (xyz2mol).

Connectivity comes from covalent radii, bond orders and formal charges from a neutral total
charge. About 2% of QM9 (strained rings, zwitterions) defeat the default valence search; those
are retried with the extended-Hueckel connectivity, which perceives all of QM9 (its SMILES then
matches the database's). YAeHMOP, under the Hueckel step, prints to the C-level stdout; that is
silenced here so data preparation stays quiet.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import rdDetermineBonds

from flowforge_molecules.elements import symbol


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    """Send the process's file descriptors 1 and 2 to /dev/null for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def xyz_block(numbers: Sequence[int], pos: np.ndarray) -> str:
    """An XYZ file's text for atomic `numbers (n,)` at `pos (n, 3)` in Angstrom."""
    rows = zip(numbers, pos, strict=True)
    lines = [f"{symbol(z)} {x:.10f} {y:.10f} {w:.10f}" for z, (x, y, w) in rows]
    return f"{len(lines)}\n\n" + "\n".join(lines) + "\n"


def perceive(numbers: Sequence[int], pos: np.ndarray, charge: int = 0) -> Chem.Mol | None:
    """An RDKit molecule with bonds, bond orders and formal charges perceived from `pos (n, 3)`.

    Kekulised (orders 1, 2, 3), hydrogens explicit, conformer set. None when neither the default
    nor the Hueckel connectivity yields a valid bond ordering for the total `charge`.
    """
    RDLogger.DisableLog("rdApp.*")
    for hueckel in (False, True):
        mol = Chem.MolFromXYZBlock(xyz_block(numbers, np.asarray(pos, dtype=np.float64)))
        if mol is None:
            return None
        try:
            if hueckel:
                with _quiet_fds():
                    rdDetermineBonds.DetermineBonds(
                        mol, charge=charge, useHueckel=True, embedChiral=False
                    )
            else:
                rdDetermineBonds.DetermineBonds(mol, charge=charge, embedChiral=False)
        except (ValueError, RuntimeError):
            continue
        Chem.Kekulize(mol, clearAromaticFlags=True)
        return mol
    return None


def bond_table(mol: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
    """`(index (n_bonds, 2) int16, order (n_bonds,) int8)` of a kekulised molecule."""
    bonds = mol.GetBonds()
    index = np.array(
        [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in bonds], dtype=np.int16
    ).reshape(-1, 2)
    order = np.array([int(b.GetBondTypeAsDouble()) for b in bonds], dtype=np.int8)
    return index, order


def formal_charges(mol: Chem.Mol) -> np.ndarray:
    """Each atom's formal charge `(n,)` int8."""
    return np.array([a.GetFormalCharge() for a in mol.GetAtoms()], dtype=np.int8)
