"""The stability and validity evaluator on real QM9 molecules (guards bond tables, perception)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from flowforge_molecules.elements import symbol
from flowforge_molecules.metrics.bond_tables import BONDS1, bond_matrix, bond_order
from flowforge_molecules.metrics.chemistry import to_rdkit, valid_smiles
from flowforge_molecules.metrics.stability import stability
from flowforge_molecules.qm9 import PARTS, QM9_SIZE, parse_row, qm9pack_dir


def test_fixture_molecules_are_stable(fixture_molecules):
    mols = [fixture_molecules.atoms(i) for i in range(len(fixture_molecules))]
    result = stability(mols)
    assert result["atom_stability"] >= 0.99
    assert result["mol_stability"] >= 0.95


@pytest.mark.slow
def test_all_of_qm9_is_as_stable_as_edm_reports():
    """EDM reports 99.0% atom / 95.2% molecule stability for QM9's own geometries; the tables,
    margins and valences here give 99.4% / 95.28% over qm9pack's 130,831 molecules (16 s)."""
    mols = []
    for part in PARTS:
        with open(qm9pack_dir() / part, newline="") as f:
            for row in csv.DictReader(f):
                numbers, pos, _, _ = parse_row(row)
                mols.append((numbers, pos, None))
    assert len(mols) == QM9_SIZE
    result = stability(mols)
    assert abs(result["mol_stability"] - 0.952) < 0.002
    assert 0.99 <= result["atom_stability"] < 0.995


def test_fixture_molecules_are_valid(fixture_molecules):
    mols = [fixture_molecules.atoms(i) for i in range(len(fixture_molecules))]
    smiles = [valid_smiles(to_rdkit(*m)) for m in mols]
    assert np.mean([s is not None for s in smiles]) >= 0.95


def test_scrambled_geometry_is_unstable(fixture_molecules):
    numbers, pos, charge = fixture_molecules.atoms(0)
    squeezed = pos * 0.5  # every bond too short: orders and valences go wrong
    assert stability([(numbers, squeezed, charge)])["mol_stability"] == 0.0


def _loop_bonds(symbols, pos):
    """EDM's pairwise loop, the reference `bond_matrix` must reproduce."""
    n = len(symbols)
    out = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        for j in range(i + 1, n):
            d = float(np.sqrt(((pos[i] - pos[j]) ** 2).sum()))
            out[i, j] = out[j, i] = bond_order(symbols[i], symbols[j], d)
    return out


def test_bond_matrix_equals_the_pairwise_loop(fixture_molecules):
    rng = np.random.default_rng(0)
    cases = []
    for i in range(len(fixture_molecules)):
        numbers, pos, _ = fixture_molecules.atoms(i)
        symbols = [symbol(int(z)) for z in numbers]
        cases.append((symbols, pos.astype(np.float64)))
        # squeezed and stretched copies reach every order and no bond at all
        cases.append((symbols, pos * rng.uniform(0.7, 1.3)))
    # every element of the tables, in both orders of each pair (the tables are not all
    # symmetric: C=S has a double-bond length, S=C none), at bond-length distances
    elements = [*sorted(BONDS1), "Xe"]
    for _ in range(200):
        symbols = list(rng.choice(elements, size=rng.integers(1, 12)))
        cases.append((symbols, rng.normal(scale=1.2, size=(len(symbols), 3))))
    orders = set()
    for symbols, pos in cases:
        got = bond_matrix(symbols, pos)
        assert np.array_equal(got, _loop_bonds(symbols, pos))
        orders.update(np.unique(got).tolist())
    assert orders == {0, 1, 2, 3}
    assert bond_matrix([], np.zeros((0, 3))).shape == (0, 0)
