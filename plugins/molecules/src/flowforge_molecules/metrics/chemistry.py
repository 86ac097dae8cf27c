"""RDKit conversion and validity of generated molecules (EDM's protocol).

A generated molecule becomes an RDKit molecule with EDM's distance-based bonds and its formal
charges; it is valid if `SanitizeMol` accepts it, and its SMILES is that of its largest
fragment. Uniqueness: distinct valid SMILES over valid; novelty: distinct valid SMILES absent
from the training set over distinct valid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rdkit import Chem, RDLogger

from flowforge_molecules.elements import symbol
from flowforge_molecules.metrics.bond_tables import bond_matrix
from flowforge_molecules.molecules import build_rdkit


def to_rdkit(numbers: Sequence[int], pos: np.ndarray, charges: Sequence[int]) -> Chem.Mol:
    """An RDKit molecule (not sanitised) with EDM's bonds and the given formal charges."""
    orders = bond_matrix([symbol(z) for z in numbers], np.asarray(pos, dtype=np.float64))
    i, j = np.nonzero(np.triu(orders))
    index = np.stack([i, j], 1) if len(i) else np.zeros((0, 2), dtype=np.int64)
    return build_rdkit(numbers, pos, charges, index, orders[i, j])


def valid_smiles(mol: Chem.Mol) -> str | None:
    """SMILES of the sanitised largest fragment, or None if the molecule does not sanitise."""
    RDLogger.DisableLog("rdApp.*")
    mol = Chem.Mol(mol)
    try:
        Chem.SanitizeMol(mol)
    except (ValueError, RuntimeError):
        return None
    frags = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    largest = max(frags, key=lambda m: m.GetNumAtoms())
    try:
        return Chem.MolToSmiles(Chem.RemoveHs(largest))
    except (ValueError, RuntimeError):
        return None


def canonical(smiles: str) -> str:
    """RDKit's canonical form of a SMILES (itself if it does not parse)."""
    mol = Chem.MolFromSmiles(smiles)
    return Chem.MolToSmiles(mol) if mol is not None else smiles
