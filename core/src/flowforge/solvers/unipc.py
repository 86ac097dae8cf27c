"""UniPC (Zhao et al. 2023): a multistep predictor plus a corrector that costs no evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.solvers.base import Multistep
from flowforge.solvers.exponential import (
    ExponentialSolver,
    Schedule,
    Weights,
    adams,
    extrapolate_to_data,
    halves,
    noisy,
    start,
)


@dataclass(frozen=True)
class UniPC(ExponentialSolver, Multistep):
    """UniPC, bh1 or bh2 (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework
    for Fast Sampling of Diffusion Models"), on any affine path and prediction kind.

    Step n: the model is evaluated at the predicted state x~_n; the corrector UniC-p then
    re-integrates the previous interval with that new prediction included (order p+1), and the
    predictor UniP-p carries the corrected state to the next node with the predictions of the
    last p nodes (order p). The corrector reuses the evaluation the next step needs anyway, so
    nfe = steps. `order` is the order of accuracy, as for every flowforge solver: with the
    corrector it is UniP-p + UniC-p with p = order - 1 (diffusers' `solver_order`; the default
    order 3 is their default UniPC-2), without it UniP-order alone (order 1: DDIM).

    Weights (module `exponential`: polynomials in nu = alpha/(alpha+sigma), exact integrals):
    UniP-p is the Adams-Bashforth step through p nodes and UniC-p the Adams-Moulton step through
    p+1 nodes, except where the paper fixes a coefficient through B(h) (B = h for bh1,
    B = e^h - 1 for bh2, as in the reference code): the UniP-2 correction
    `B(h) (F_n - F_{n-1}) / (2 r)` and the UniC-1 correction `B(h) (F_new - F_n) / 2` (r: the
    ratio of the last two steps in nu). F is the data prediction in the noisy half of the path
    (nu < 1/2) and the noise prediction in the clean half: the corrector uses a prediction made
    at the uncorrected state, which near sigma = 0 is harmless for N (insensitive to x there) but
    not for D (which follows x one to one), so a data-form corrector loses an order next to the
    data end on grids uniform in t. Full-order end points: the first p steps integrate from t0
    through all predictions so far; the last step needs no special rule (noise form, as in the
    paper no corrector after the last evaluation).

    >>> flowforge.sample(model, noise, path="cond_ot", prediction="velocity",
    ...                  solver=UniPC(order=3, variant="bh2"), nfe=8)
    """

    order: Annotated[
        int, Field(ge=1, le=3, description="order of accuracy; the predictor's is order - 1")
    ] = 3
    variant: Annotated[
        Literal["bh1", "bh2"], Field(description="B(h) = h (bh1) or e^h - 1 (bh2)")
    ] = "bh2"
    corrector: Annotated[bool, Field(description="apply UniC (order p+1, no extra nfe)")] = True
    name = "unipc"

    def __post_init__(self):
        if self.corrector and self.order == 1:
            raise InvalidArgumentError(
                "unipc order=1 has no corrector (UniC-p raises UniP-p's order by one, so "
                "order 1 is UniP-1 = DDIM alone): pass corrector=false, or order >= 2"
            )

    @property
    def predictor(self) -> int:
        """p: the predictor's order (diffusers' `solver_order`)."""
        return self.order - 1 if self.corrector else self.order

    @property
    def width(self) -> int:
        return self.predictor + 1

    def weights(self, schedule: Schedule) -> Weights:
        s = schedule
        pred = halves(s, self.width, self._predictor)
        if self.corrector:
            # Row n corrects step n-1, in that step's form.
            fix = halves(s, self.width, lambda w, form: self._corrector(w, form, pred), lag=1)
            ratio = torch.where(noisy(s), s.sigma[1:] / s.sigma[:-1], s.alpha[1:] / s.alpha[:-1])
            pred.w = pred.w + ratio[:, None] * fix.w
        start(pred, self.order)
        extrapolate_to_data(pred, self.order, where=noisy(s)[-1])
        return pred

    def _b(self, s: Schedule, form: str) -> Tensor:
        """B(h) times the step's first-order scale, per step `(S, B)`: the weight `c` in
        `x_t = ratio x_s + c F_s` is `alpha_t (1 - e^-h)` (data) or `-sigma_t (e^h - 1)` (noise)."""
        a, sig = s.alpha, s.sigma
        if form == "data":
            return a[1:] * (s.h if self.variant == "bh1" else 1 - s.decay)
        if self.variant == "bh1":
            return -torch.where(sig[1:] == 0, 0.0, sig[1:] * s.h)
        return -(a[1:] * sig[:-1] / a[:-1] - sig[1:])

    def _predictor(self, w: Weights, form: str) -> None:
        s, p = w.s, self.predictor
        if p != 2:
            adams(w, form, p, rows=slice(p - 1, None))
            return
        adams(w, form, 1, rows=slice(1, None))
        half = self._b(s, form)[1:] / 2
        r = (s.nu[1:-1] - s.nu[:-2]) / (s.nu[2:] - s.nu[1:-1])
        w.add(form, 0, half / r, rows=slice(1, None))
        w.add(form, 1, -half / r, rows=slice(1, None))
        # B(h) is meaningless for the infinite lambda-step into sigma = 0: take the exact step.
        exact = w.blank()
        adams(exact, form, 2, rows=[s.steps - 1])
        w.replace(s.steps - 1, exact, where=s.data_end)

    def _corrector(self, fix: Weights, form: str, pred: Weights) -> None:
        """`fix` row n: corrected minus predicted state at node n (correcting interval n-1 -> n)."""
        s, p = fix.s, self.predictor
        later = slice(p + 1, None)
        if p == 1:
            half = self._b(s, form)[p:-1] / 2
            fix.add(form, 0, half, rows=later)
            fix.add(form, 1, -half, rows=later)
        else:
            fix.integrate(form, list(range(p + 1)), rows=later, start=1, end=0)
            shifted = torch.zeros_like(pred.w)
            shifted[1:, 2:] = pred.w[:-1, :-2]
            fix.w[later] -= shifted[later]
        # Step p corrects the warm-up's last step: re-integrate from t0 through nodes 0..p.
        if p < s.steps:
            fix.integrate("data", list(range(p + 1)), rows=[p], start=p, end=0)
            fix.add("x", 0, -1.0, rows=[p])
