"""The molecule metrics as registered components: stability, validity, FCD, property MAE."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field

from flowforge.metrics.base import Metric, MetricContext
from flowforge.metrics.chemnet import chemnet, fcd
from flowforge_molecules.metrics.chemistry import canonical
from flowforge_molecules.metrics.context import molecule_context
from flowforge_molecules.metrics.stability import stability


@dataclass(frozen=True)
class Stability(Metric):
    """EDM atom and molecule stability (bond-length tables, valences); `use_charges` accepts
    the valences of formally charged atoms (EDM's reported numbers ignore charges)."""

    use_charges: Annotated[bool, Field(description="charge-aware valences (MiDi)")] = False

    def compute(self, ctx: MetricContext) -> dict[str, float]:
        mctx = molecule_context(ctx, "molecule_stability")
        return stability(mctx.molecules, self.use_charges)


@dataclass(frozen=True)
class Validity(Metric):
    """RDKit validity (sanitised largest fragment), uniqueness, V x U, novelty vs training."""

    def compute(self, ctx: MetricContext) -> dict[str, float]:
        mctx = molecule_context(ctx, "molecule_validity")
        valid = [s for s in mctx.smiles if s]
        unique = set(valid)
        n = max(len(mctx.molecules), 1)
        out = {
            "validity": len(valid) / n,
            "uniqueness": len(unique) / max(len(valid), 1),
            "valid_and_unique": len(unique) / n,
        }
        if mctx.train_smiles:
            known = {canonical(s) for s in mctx.train_smiles if s}
            out["novelty"] = len(unique - known) / max(len(unique), 1)
        return out


@dataclass(frozen=True)
class FCDMetric(Metric):
    """Frechet ChemNet Distance of the valid generated SMILES to the reference split's."""

    max_reference: Annotated[
        int, Field(ge=2, description="at most this many reference SMILES (seeded subset)")
    ] = 10000

    def compute(self, ctx: MetricContext) -> dict[str, float]:
        mctx = molecule_context(ctx, "fcd")
        ref = [s for s in mctx.reference_smiles if s]
        if len(ref) > self.max_reference:
            pick = torch.randperm(len(ref), generator=mctx.generator)[: self.max_reference]
            ref = [ref[i] for i in pick.tolist()]
        gen = [s for s in mctx.smiles if s]
        device = "cuda" if mctx.device.type == "cuda" else "cpu"
        return {"fcd": fcd(gen, ref, chemnet(), device)}


@dataclass(frozen=True)
class PropertyMAE(Metric):
    """Mean absolute error between the requested properties and the regressor's predictions on
    the generated molecules (EDM's protocol), per property, beside the task's baselines."""

    def compute(self, ctx: MetricContext) -> dict[str, float]:
        mctx = molecule_context(ctx, "property_mae")
        if mctx.predict is None or mctx.targets is None:
            return {f"property_mae_{p}": math.nan for p in mctx.property_names}
        pred = mctx.predict(mctx.states).cpu()
        err = (pred - mctx.targets.cpu()).abs().mean(0)
        out = {f"property_mae_{p}": float(e) for p, e in zip(mctx.property_names, err, strict=True)}
        out.update(mctx.baselines)
        return out
