"""A molecule run's files: samples as SDF and XYZ, and a grid of 2-D depictions."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from rdkit import Chem
from rdkit.Chem import AllChem

from flowforge_molecules.io import write_sdf, write_xyz
from flowforge_molecules.metrics.chemistry import to_rdkit, valid_smiles
from flowforge_molecules.metrics.stability import Molecule


def write_molecules(molecules: Sequence[Molecule], directory: Path) -> list[Path]:
    """`samples.sdf` (EDM bonds, formal charges) and `samples.xyz` in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    mols = [to_rdkit(*m) for m in molecules]
    for i, mol in enumerate(mols):
        mol.SetProp("_Name", f"sample_{i}")
    sdf = write_sdf(directory / "samples.sdf", mols)
    xyz = write_xyz(directory / "samples.xyz", [(z, p) for z, p, _ in molecules])
    return [sdf, xyz]


def depiction_grid(molecules: Sequence[Molecule], out: Path, count: int = 24) -> Path | None:
    """A PNG grid of 2-D depictions of the first `count` valid molecules (None if none, or when
    RDKit's drawing code cannot load: it needs the system's X rendering libraries, which headless
    machines may lack; a warning says so and the run's other outputs are unaffected)."""
    try:
        from rdkit.Chem import Draw
    except ImportError as err:
        warnings.warn(
            f"no depiction grid: RDKit's drawing module does not load ({err})", stacklevel=2
        )
        return None
    drawn, legends = [], []
    for m in molecules:
        smiles = valid_smiles(to_rdkit(*m))
        mol = Chem.MolFromSmiles(smiles) if smiles else None
        if mol is None:
            continue
        AllChem.Compute2DCoords(mol)
        drawn.append(mol)
        legends.append(smiles)
        if len(drawn) == count:
            break
    if not drawn:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    image = Draw.MolsToGridImage(drawn, molsPerRow=6, subImgSize=(220, 180), legends=legends)
    image.save(str(out))
    return out
