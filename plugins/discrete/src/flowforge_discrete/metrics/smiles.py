"""SMILES sample quality: validity, uniqueness, novelty (RDKit) and FCD (fcd_torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from flowforge.errors import MissingDependencyError
from flowforge.metrics.base import Metric
from flowforge.metrics.chemnet import chemnet, fcd
from flowforge_discrete.metrics.context import SequenceContext

HINT = "pip install 'flowforge-discrete[molecules]'"


def canonical(smiles: list[str]) -> list[str | None]:
    """RDKit canonical SMILES of each string, None where it does not parse to a molecule."""
    try:
        from rdkit import Chem, RDLogger
    except ImportError:
        raise MissingDependencyError("rdkit", "the SMILES metrics", HINT) from None
    RDLogger.DisableLog("rdApp.*")
    out = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s) if s else None
        out.append(Chem.MolToSmiles(mol) if mol is not None and mol.GetNumAtoms() else None)
    return out


@dataclass(frozen=True)
class SmilesQuality(Metric):
    """`smiles_validity` (parses to a molecule), `smiles_uniqueness` (distinct canonical among
    valid), `smiles_novelty` (distinct valid ones absent from the training split)."""

    def compute(self, ctx: SequenceContext) -> dict[str, float]:
        gen = canonical(ctx.dataset.decode(ctx.samples))
        valid = [s for s in gen if s is not None]
        unique = set(valid)
        train = set(canonical(ctx.dataset.decode(ctx.train)))
        return {
            "smiles_validity": len(valid) / max(len(gen), 1),
            "smiles_uniqueness": len(unique) / max(len(valid), 1),
            "smiles_novelty": len(unique - train) / max(len(unique), 1),
        }


@dataclass(frozen=True)
class FCD(Metric):
    """`fcd`: Frechet ChemNet Distance (Preuer et al. 2018) between the valid samples and the
    test split, with the ChemNet weights that ship in `fcd_torch`; lower is better."""

    max_molecules: Annotated[int, Field(ge=2, description="molecules per side at most")] = 10000

    def compute(self, ctx: SequenceContext) -> dict[str, float]:
        features = chemnet(HINT)
        gen = [s for s in canonical(ctx.dataset.decode(ctx.samples)) if s][: self.max_molecules]
        ref = [s for s in canonical(ctx.dataset.decode(ctx.test)) if s][: self.max_molecules]
        device = "cuda" if ctx.device.type == "cuda" else "cpu"
        return {"fcd": fcd(gen, ref, features, device)}
