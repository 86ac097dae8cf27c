"""Generate molecules on the product path with the core mixed sampler (`sample_mixed`).

One network call per step feeds a once-per-step continuous solver for the positions (`euler`,
`ddim`, `dpm_solver_pp`, `euler_maruyama`, `reverse_sde`) and a discrete solver for the atom
types and charges (`ancestral`, `tau_leaping`, `ctmc_euler`); the last step unmasks every atom.
The network reads only the zero-centroid part of the positions and its output has none, and every
one-evaluation solver step is linear in the state, the prediction and the injected noise, so the
zero-centroid part of the state evolves exactly as if it were projected after every step:
projecting the result once is the same solve (for SDE solvers too).

Classifier-free guidance (`cfg`) wraps the network (`GuidedProduct`): one conditional and one
unconditional call per step; the positions get core `CFG`'s update (interval, rescale), the
types and charges core `DiscreteCFG`'s on their clean-token log-probabilities.

A self-conditioned model (`model.self_conditioning`) is sampled through
`SelfConditionedProduct`: each step's calls (both, under guidance) read the estimate of the step
before's output (the guided one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from flowforge.discrete import DiscreteCFG, clean_log_probs, sample_mixed
from flowforge.field import Prediction
from flowforge.guidance.cfg import CFG
from flowforge.solvers.base import Solver
from flowforge.training.self_conditioning import takes_self_condition
from flowforge_molecules.atom_counts import AtomCounts
from flowforge_molecules.com import remove_com
from flowforge_molecules.product import DISCRETE_KEYS, ProductEncoding
from flowforge_molecules.product_self_conditioning import SelfConditionedProduct
from flowforge_molecules.state import MoleculeState


class _Shared:
    """What the core CFG hooks read: the solve's condition, the prediction kind, and the
    unconditional output (already computed once for every key)."""

    def __init__(self, cond: Mapping[str, Any], prediction: str, unconditional: Tensor):
        self.cond, self.prediction, self.unconditional = cond, prediction, unconditional

    def network(self, x_t: Tensor, t: Tensor, cond: Mapping[str, Any] | None = None) -> Tensor:
        return self.unconditional


class GuidedProduct:
    """`model` under classifier-free guidance `cfg`: scale 1 is the conditional model, 0 the
    unconditional one (`cfg.null_cond`, default every condition None)."""

    def __init__(self, model: nn.Module, cfg: CFG, encoding: ProductEncoding, prediction: str):
        self.model, self.cfg, self.encoding, self.prediction = model, cfg, encoding, prediction
        self.discrete = DiscreteCFG(scale=cfg.scale, null_cond=cfg.null_cond)

    def __call__(
        self, state: dict[str, Tensor], t: Tensor, self_cond: Tensor | None = None, **cond: Any
    ) -> dict[str, Tensor]:
        extra = {} if self_cond is None else {"self_cond": self_cond}
        out = self.model(state, t, **extra, **cond)
        if self.cfg.scale == 1.0:
            return out
        null = self.cfg.null_cond if self.cfg.null_cond is not None else dict.fromkeys(cond)
        uncond = self.model(state, t, **extra, **null)
        pos_path = self.encoding.pos_path
        pred = Prediction(out["pos"], self.prediction, state["pos"], t, pos_path)
        shared = _Shared(cond, self.prediction, uncond["pos"])
        guided = {"pos": self.cfg.on_prediction(pred, shared).value}  # type: ignore[arg-type]
        for k in DISCRETE_KEYS:
            path = self.encoding.path.paths[k]
            log_c = clean_log_probs(out[k], state[k], path)
            log_u = clean_log_probs(uncond[k], state[k], path)
            hook = _Shared(cond, "logits", log_u)
            guided[k] = self.discrete.on_log_probs(log_c, state[k], t, cond, hook)
        return guided


def sample_product(
    model: nn.Module,
    encoding: ProductEncoding,
    prediction: str,
    n_atoms: Tensor,
    *,
    solver: str | Solver,
    discrete_solver: str | Solver,
    nfe: int,
    max_atoms: int,
    generator: torch.Generator,
    device: torch.device,
    properties: Tensor | None = None,
    cfg: CFG | None = None,
    t_span: tuple[float, float] | None = None,
    time_grid: str | Tensor = "uniform",
) -> MoleculeState:
    """One batch of molecules with `n_atoms (B,)` atoms each, `nfe` network calls (twice that
    with `cfg` at a scale other than 1). `properties (B, P)`: standardised targets of a
    property-conditioned model. `time_grid`: `sample_mixed`'s (a named grid spaced by the
    positions' path, or explicit times). Returns the decoded molecules (positions in Angstrom)."""
    mask = AtomCounts.mask(n_atoms.to(device), max_atoms)
    path = encoding.path
    t0 = (path.t_span if t_span is None else t_span)[0]
    x_init = encoding.source(mask, generator, t0)
    field: Any = model if cfg is None else GuidedProduct(model, cfg, encoding, prediction)
    if takes_self_condition(model):
        field = SelfConditionedProduct(field, encoding, prediction)
    x = sample_mixed(
        field,
        x_init,
        path=path,
        predictions={"pos": prediction},
        solvers={"pos": solver, **dict.fromkeys(DISCRETE_KEYS, discrete_solver)},
        nfe=nfe,
        t_span=t_span,
        generator=generator,
        cond=None if properties is None else {"properties": properties.to(device)},
        time_grid=time_grid,
    )
    x["pos"] = remove_com(x["pos"], mask)
    return encoding.decode(x).with_properties(properties)
