"""Read and write molecule files: SDF (with bonds and SD properties) and XYZ (bonds perceived).

SDF is read with RDKit keeping hydrogens; XYZ files may hold several molecules one after the
other (each block: atom count, comment line, atoms), and get bonds and formal charges from
`flowforge_molecules.bonds.perceive`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rdkit import Chem

from flowforge.errors import InvalidArgumentError
from flowforge_molecules.bonds import perceive, xyz_block
from flowforge_molecules.elements import atomic_number
from flowforge_molecules.molecules import Molecules, build_rdkit


def read_sdf(path: str | Path, properties: Sequence[str] = ()) -> Molecules:
    """The molecules of an SDF file (hydrogens kept), with the SD tags `properties` as floats."""
    supplier = Chem.SDMolSupplier(str(path), removeHs=False, sanitize=False)
    mols, values = [], []
    for i, mol in enumerate(supplier):
        if mol is None:
            raise InvalidArgumentError(f"{path}: record {i + 1} could not be parsed as a molecule")
        row = []
        for name in properties:
            if not mol.HasProp(name):
                raise InvalidArgumentError(
                    f"{path}: record {i + 1} has no SD property {name!r}; every molecule must "
                    "carry the properties listed in `properties`"
                )
            row.append(float(mol.GetProp(name)))
        mols.append(mol)
        values.append(row)
    props = np.array(values, dtype=np.float64).reshape(len(mols), len(properties))
    return Molecules.from_rdkit(mols, props, tuple(properties))


def read_xyz(path: str | Path, charge: int = 0) -> Molecules:
    """The molecules of a (multi-)XYZ file; bonds and formal charges perceived (total `charge`)."""
    lines = Path(path).read_text().splitlines()
    mols, i = [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i].split()[0])
        except ValueError:
            raise InvalidArgumentError(
                f"{path}:{i + 1}: expected an atom count, got {lines[i]!r}"
            ) from None
        block = lines[i + 2 : i + 2 + n]
        if len(block) < n:
            raise InvalidArgumentError(f"{path}:{i + 1}: the file ends inside a molecule")
        numbers = [atomic_number(row.split()[0]) for row in block]
        pos = np.array([[float(v) for v in row.split()[1:4]] for row in block])
        mol = perceive(numbers, pos, charge)
        if mol is None:
            raise InvalidArgumentError(
                f"{path}:{i + 1}: no valid bond ordering for this geometry at total charge "
                f"{charge}; check the coordinates (Angstrom) or pass its charge"
            )
        mols.append(mol)
        i += 2 + n
    return Molecules.from_rdkit(mols)


def read_molecules(path: str | Path, properties: Sequence[str] = ()) -> Molecules:
    """An `.sdf` or `.xyz` file by its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in (".sdf", ".mol"):
        return read_sdf(path, properties)
    if suffix == ".xyz":
        if properties:
            raise InvalidArgumentError(f"{path}: XYZ files carry no properties; use SDF")
        return read_xyz(path)
    raise InvalidArgumentError(f"{path}: unknown molecule file type {suffix!r}; use .sdf or .xyz")


def write_sdf(path: str | Path, mols: Sequence[Chem.Mol]) -> Path:
    """Write RDKit molecules (with conformers) to one SDF file."""
    writer = Chem.SDWriter(str(path))
    writer.SetKekulize(False)
    for mol in mols:
        writer.write(mol)
    writer.close()
    return Path(path)


def write_xyz(path: str | Path, molecules: Sequence[tuple[list[int], np.ndarray]]) -> Path:
    """Write `(atomic numbers, pos (n, 3))` molecules to one multi-XYZ file."""
    Path(path).write_text("".join(xyz_block(z, p) for z, p in molecules))
    return Path(path)


def to_rdkit_molecules(molecules: Molecules) -> list[Chem.Mol]:
    """Every molecule of a set as an RDKit molecule."""
    return [build_rdkit(*molecules.atoms(i), *molecules.bonds(i)) for i in range(len(molecules))]
