"""Data: QM9 parsing and split sizes, the fixture, padding round trips, SDF/XYZ loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flowforge_molecules.datasets import MoleculeFiles
from flowforge_molecules.encoding import OneHotEncoding
from flowforge_molecules.io import read_sdf, read_xyz, to_rdkit_molecules, write_sdf, write_xyz
from flowforge_molecules.qm9 import EDM_SPLIT, QM9_SIZE, edm_split, parse_row, qm9pack_dir
from flowforge_molecules.state import MoleculeState

from flowforge.errors import InvalidArgumentError


def test_edm_split_sizes_and_disjoint():
    parts = edm_split(QM9_SIZE, seed=0)
    assert tuple(len(parts[k]) for k in ("train", "val", "test")) == EDM_SPLIT
    assert len(np.unique(np.concatenate(list(parts.values())))) == QM9_SIZE
    again = edm_split(QM9_SIZE, seed=0)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)


def test_limited_split_is_a_random_subset_of_the_full_one():
    full, small = edm_split(QM9_SIZE, seed=0), edm_split(QM9_SIZE, seed=0, limit=2000)
    for k in full:
        assert len(small[k]) == 2000 and np.isin(small[k], full[k]).all()
        # QM9 is ordered by size: a subset spread over the whole index range, not its start
        assert small[k].min() < QM9_SIZE // 20 and small[k].max() > QM9_SIZE * 19 // 20


def test_qm9pack_rows_parse_to_geometries():
    import csv

    with open(qm9pack_dir() / "qm9_part1.csv", newline="") as f:
        row = next(csv.DictReader(f))
    numbers, pos, props, index = parse_row(row)
    assert index == 1 and numbers == [6, 1, 1, 1, 1]  # methane
    d = np.linalg.norm(pos[1:] - pos[0], axis=1)
    assert np.allclose(d, 1.09, atol=0.01)  # C-H bond length in Angstrom
    assert props[1] == pytest.approx(0.5048 * 27211.386, rel=1e-6)  # gap in meV


def test_fixture_molecules_are_small_and_complete(fixture_molecules):
    mols = fixture_molecules
    assert len(mols) == 400
    assert mols.heavy_atoms().max() <= 6
    assert mols.property_names == ("alpha", "gap", "homo", "lumo", "mu", "Cv")
    assert all(mols.smiles) and (mols.n_bonds > 0).all()


def test_state_encoding_round_trip(fixture_dataset):
    state = fixture_dataset.states()["train"]
    enc = OneHotEncoding(fixture_dataset.elements)
    x = enc.encode(state)
    back = enc.decode(x, state.mask)
    assert torch.equal(back.atom_type, state.atom_type * state.mask)
    assert torch.equal(back.charge, state.charge * state.mask)
    com = (x[..., :3] * state.mask[..., None]).sum(1)
    assert com.abs().max() < 1e-4
    assert (x[~state.mask] == 0).all()


def test_unknown_element_names_the_vocabulary(fixture_molecules):
    with pytest.raises(InvalidArgumentError, match="vocabulary"):
        MoleculeState.from_molecules(fixture_molecules, ("C", "N", "O"))


def test_sdf_and_xyz_round_trip(tmp_path, fixture_molecules):
    mols = fixture_molecules.subset(np.arange(10))
    rd = to_rdkit_molecules(mols)
    for mol, gap in zip(rd, mols.properties[:, 1], strict=True):
        mol.SetProp("gap", str(gap))
    write_sdf(tmp_path / "a.sdf", rd)
    back = read_sdf(tmp_path / "a.sdf", properties=("gap",))
    assert np.array_equal(back.numbers, mols.numbers)
    assert np.allclose(back.pos, mols.pos, atol=1e-4)
    assert np.allclose(back.properties[:, 0], mols.properties[:, 1])
    assert list(back.smiles) == list(mols.smiles)
    write_xyz(tmp_path / "a.xyz", [mols.atoms(i)[:2] for i in range(len(mols))])
    xyz = read_xyz(tmp_path / "a.xyz")
    assert list(xyz.smiles) == list(mols.smiles)  # bonds perceived again from coordinates


def test_molecule_files_dataset_cuts_splits(tmp_path, fixture_molecules):
    write_sdf(tmp_path / "m.sdf", to_rdkit_molecules(fixture_molecules.subset(np.arange(40))))
    data = MoleculeFiles(train=str(tmp_path / "*.sdf"), val_fraction=0.1, test_fraction=0.1)
    sizes = {k: len(v) for k, v in data.molecules().items()}
    assert sizes == {"train": 32, "val": 4, "test": 4}
    assert set(data.elements) <= {"H", "C", "N", "O", "F"}
    with pytest.raises(InvalidArgumentError, match="no file matches"):
        MoleculeFiles(train=str(tmp_path / "none*.sdf")).molecules()
