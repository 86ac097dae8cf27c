"""The stability and validity evaluator on real QM9 molecules (guards bond tables, perception)."""

from __future__ import annotations

import numpy as np
from flowforge_molecules.metrics.chemistry import to_rdkit, valid_smiles
from flowforge_molecules.metrics.stability import stability


def test_fixture_molecules_are_stable(fixture_molecules):
    mols = [fixture_molecules.atoms(i) for i in range(len(fixture_molecules))]
    result = stability(mols)
    assert result["atom_stability"] >= 0.99
    assert result["mol_stability"] >= 0.95


def test_fixture_molecules_are_valid(fixture_molecules):
    mols = [fixture_molecules.atoms(i) for i in range(len(fixture_molecules))]
    smiles = [valid_smiles(to_rdkit(*m)) for m in mols]
    assert np.mean([s is not None for s in smiles]) >= 0.95


def test_scrambled_geometry_is_unstable(fixture_molecules):
    numbers, pos, charge = fixture_molecules.atoms(0)
    squeezed = pos * 0.5  # every bond too short: orders and valences go wrong
    assert stability([(numbers, squeezed, charge)])["mol_stability"] == 0.0
