"""Full QM9 (130,831 molecules, DFT geometries and properties) from the CSV files of `qm9pack`.

`qm9pack` (PyPI, MIT; data: Ramakrishnan et al., Sci. Data 1, 140022 (2014), CC0) ships the
database as CSV: element lists, coordinates in Angstrom and the computed properties. The first
`load_qm9()` parses it, perceives bonds and formal charges (`flowforge_molecules.bonds`) and
writes `qm9_v1.npz` to the cache directory (about a minute with several processes); later calls
read the cache in a second or two.

Properties are kept in the units of EDM (Hoogeboom et al. 2022) and its property-conditioning
protocol: alpha in Bohr^3, gap/HOMO/LUMO in meV, mu in Debye, Cv in cal/(mol K).
"""

from __future__ import annotations

import csv
import importlib.util
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from flowforge.errors import MissingDependencyError
from flowforge_molecules.bonds import bond_table, formal_charges, perceive
from flowforge_molecules.cache import cache_dir
from flowforge_molecules.elements import atomic_number
from flowforge_molecules.molecules import Molecules, canonical_smiles

HARTREE_MEV = 27211.386
# name -> (CSV column, factor to the EDM unit)
PROPERTIES: dict[str, tuple[str, float]] = {
    "alpha": ("Polarizability_bohr3", 1.0),
    "gap": ("HOMO_LUMO_gap_au", HARTREE_MEV),
    "homo": ("HOMO_au", HARTREE_MEV),
    "lumo": ("LUMO_au", HARTREE_MEV),
    "mu": ("Dipole_debye", 1.0),
    "Cv": ("Heatcapacity_Cv_cal_mol_K", 1.0),
}
PARTS = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
CACHE_NAME = "qm9_v1.npz"
QM9_SIZE = 130_831
EDM_SPLIT = (100_000, 17_748, 13_083)


def qm9pack_dir() -> Path:
    """The directory of qm9pack's CSV files (the package is located, not imported)."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or spec.origin is None:
        raise MissingDependencyError("qm9pack", "the QM9 dataset", "pip install qm9pack")
    return Path(spec.origin).parent / "data"


def _numbers(text: str) -> list[float]:
    return [float(s) for s in text.replace("[", " ").replace("]", " ").split(",")]


def parse_row(row: dict[str, str]) -> tuple[list[int], np.ndarray, list[float], int]:
    """One CSV row: atomic numbers, positions `(n, 3)`, the six properties, the QM9 index."""
    symbols = [s.strip(" '\"") for s in row["Elements"].strip("[]").split(",")]
    numbers = [atomic_number(s) for s in symbols]
    pos = np.array(_numbers(row["XYZ_Ang"]), dtype=np.float64).reshape(-1, 3)
    props = [float(row[col]) * factor for col, factor in PROPERTIES.values()]
    return numbers, pos, props, int(row["Index"])


def _prepare_part(name: str) -> dict[str, list]:
    """Parse one CSV part and perceive its bonds (runs in a worker process)."""
    out: dict[str, list] = {k: [] for k in ("index", "numbers", "pos", "props", "mol")}
    with open(qm9pack_dir() / name, newline="") as f:
        for row in csv.DictReader(f):
            numbers, pos, props, index = parse_row(row)
            mol = perceive(numbers, pos)
            out["index"].append(index)
            out["numbers"].append(numbers)
            out["pos"].append(pos)
            out["props"].append(props)
            if mol is None:
                out["mol"].append(None)
            else:
                index_, order = bond_table(mol)
                out["mol"].append((formal_charges(mol), index_, order, canonical_smiles(mol)))
    return out


def prepare_qm9(workers: int | None = None) -> Molecules:
    """Parse all of QM9 from qm9pack and perceive bonds (no cache)."""
    workers = workers or min(len(PARTS), os.cpu_count() or 1)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_prepare_part, PARTS))
    else:
        parts = [_prepare_part(p) for p in PARTS]
    rows = [
        (i, z, p, pr, m)
        for part in parts
        for i, z, p, pr, m in zip(
            part["index"], part["numbers"], part["pos"], part["props"], part["mol"], strict=True
        )
    ]
    rows.sort(key=lambda r: r[0])
    n_atoms, numbers, pos, charge, n_bonds, bidx, bord, props, smiles = ([] for _ in range(9))
    for _, z, p, pr, m in rows:
        n_atoms.append(len(z))
        numbers.extend(z)
        pos.append(p)
        props.append(pr)
        if m is None:
            charge.extend([0] * len(z))
            n_bonds.append(0)
            smiles.append("")
            continue
        q, idx, order, smi = m
        charge.extend(q.tolist())
        n_bonds.append(len(order))
        bidx.append(idx)
        bord.append(order)
        smiles.append(smi)
    return Molecules(
        n_atoms=np.array(n_atoms, dtype=np.int64),
        numbers=np.array(numbers, dtype=np.int16),
        pos=np.concatenate(pos).astype(np.float32),
        charge=np.array(charge, dtype=np.int8),
        n_bonds=np.array(n_bonds, dtype=np.int64),
        bond_index=np.concatenate(bidx).astype(np.int16),
        bond_order=np.concatenate(bord).astype(np.int8),
        properties=np.array(props, dtype=np.float64),
        property_names=tuple(PROPERTIES),
        smiles=np.array(smiles, dtype=object),
    )


def load_qm9(workers: int | None = None) -> Molecules:
    """All of QM9, from the cache (built on first use)."""
    path = cache_dir() / CACHE_NAME
    if path.is_file():
        return Molecules.load(path)
    mols = prepare_qm9(workers)
    tmp = path.with_suffix(".tmp.npz")
    mols.save(tmp)
    os.replace(tmp, path)
    return mols


def edm_split(
    size: int, seed: int, sizes: tuple[int, int, int] = EDM_SPLIT, limit: int | None = None
) -> dict:
    """Train/val/test indices: a permutation of `range(size)` by `seed`, cut at `sizes`.

    For all of QM9 the sizes are EDM's (100,000 / 17,748 / 13,083); a smaller set is cut in
    the same proportions. `limit` keeps that many of each split, drawn at random with the
    permutation (QM9's own order runs from small to large molecules, so its first indices
    would be the smallest ones).
    """
    perm = np.random.default_rng(seed).permutation(size)
    if size != sum(sizes):
        n_train = round(size * sizes[0] / sum(sizes))
        n_val = round(size * sizes[1] / sum(sizes))
        sizes = (n_train, n_val, size - n_train - n_val)
    a, b = sizes[0], sizes[0] + sizes[1]
    parts = {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}
    return {k: np.sort(v[:limit]) for k, v in parts.items()}
