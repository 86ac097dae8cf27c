"""Generate molecules with any core solver: atom counts, subspace noise, the bound field.

The atom mask of a batch is fixed before the solve, so the field given to `flowforge.sample`
is the model with that mask bound (`BoundField`); the solve's `cond` carries only the property
condition, which classifier-free guidance replaces by the null condition. Every fixed-step
solver gets `SubspaceProjection` as its last after-step hook: the injected noise of SDE solvers
is projected onto the zero-centroid, unpadded subspace (for ODE solvers it changes nothing, the
model's output already lies there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

import flowforge
from flowforge.guidance.base import Guidance
from flowforge.likelihood import scale_to_prior
from flowforge.paths.base import AffinePath
from flowforge.solvers.base import Adaptive, Solver
from flowforge.training.self_conditioning import SelfConditioned, takes_self_condition
from flowforge_molecules.atom_counts import AtomCounts
from flowforge_molecules.encoding import OneHotEncoding
from flowforge_molecules.state import MoleculeState


class BoundField:
    """`model` with a batch's atom `mask` bound: `(x_t, t, **cond) -> model(x_t, t, mask, ...)`.

    Adaptive solvers (dopri5) evaluate only the samples still running, a subset of the rows;
    for such a call the mask is read off the state, exact there because an ODE solve keeps
    padding atoms at exactly zero (zero noise, zero velocity) while real atoms are non-zero.
    """

    def __init__(self, model: nn.Module, mask: Tensor):
        self.model = model
        self.mask = mask
        self.self_conditioning = takes_self_condition(model)

    def __call__(self, x_t: Tensor, t: Tensor, **cond: Any) -> Tensor:
        mask = self.mask if x_t.shape[0] == self.mask.shape[0] else (x_t != 0).any(-1)
        return self.model(x_t, t, mask=mask, **cond)


class SubspaceProjection(Guidance):
    """After each step: the state projected to zero-centroid positions and zero padding."""

    def __init__(self, encoding: OneHotEncoding, mask: Tensor):
        self.encoding = encoding
        self.mask = mask

    def after_step(self, x: Tensor, t: Tensor, dynamics: Any) -> Tensor:
        return self.encoding.project(x, self.mask)


def sample_molecules(
    model: nn.Module,
    path: AffinePath,
    prediction: str,
    encoding: OneHotEncoding,
    n_atoms: Tensor,
    *,
    solver: str | Solver,
    nfe: int | None,
    max_atoms: int,
    generator: torch.Generator,
    device: torch.device,
    properties: Tensor | None = None,
    guidance: Sequence[Guidance] = (),
    bind: Callable[[Guidance, Tensor], Guidance] | None = None,
    time_grid: str | Tensor = "auto",
    t_span: tuple[float, float] | None = None,
) -> MoleculeState:
    """One batch of molecules with `n_atoms (B,)` atoms each, by `flowforge.sample`.

    `properties (B, P)`: standardised targets of a property-conditioned model (passed as the
    solve's `cond`); `bind(g, mask)` may give each guidance the batch's mask (property
    regressors need it). Returns the decoded molecules (positions in Angstrom).
    """
    solver = flowforge.registry.resolve("solver", solver)
    mask = AtomCounts.mask(n_atoms.to(device), max_atoms)
    t0 = (path.t_span if t_span is None else t_span)[0]
    noise = encoding.noise(mask, generator)
    x_init = scale_to_prior(path, t0, noise)
    field: Any = BoundField(model, mask)
    if field.self_conditioning:
        field = SelfConditioned(field, path, prediction)
    hooks = [bind(g, mask) if bind is not None else g for g in guidance]
    if not isinstance(solver, Adaptive):
        hooks.append(SubspaceProjection(encoding, mask))
    cond = None if properties is None else {"properties": properties.to(device)}
    x = flowforge.sample(
        field,
        x_init,
        path=path,
        prediction=prediction,
        solver=solver,
        nfe=nfe,
        t_span=t_span,
        time_grid=time_grid,
        guidance=hooks or None,
        generator=generator,
        cond=cond,
    )
    return encoding.decode(x, mask).with_properties(properties)
