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
    previous,
    reference_orders,
    restart_at_pure_noise,
    rows_by_order,
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

    `variable` "nu" (default) is the above. "lambda" is the reference implementation's
    arithmetic: diffusers 0.42.1 `UniPCMultistepScheduler` (predict_x0, bh1/bh2,
    lower_order_final, final_sigmas_type "zero"; `solver_order = order - 1`, and with
    `corrector=False` every step in `disable_corrector`), i.e. the paper's UniP-p/UniC-p in the
    data form throughout, with the polynomials in lambda through the ratios r_i of the
    lambda-steps and the coefficients from the paper's linear system (`_reference`). Its step
    orders are the reference's: UniP-1 at step 0, UniP-2 at step 1, ... (lower-order warm-up;
    UniC-k follows the order of the step it corrects), and the last p - 1 steps drop to orders
    p - 1, ..., 1 (`lower_order_final`), so the step into sigma = 0 is first order
    (`x = alpha_1 D`). Equal to diffusers on its grids to float rounding (tested; diffusers'
    bh1 itself gives NaN at a last step into sigma = 0, where B(h) = -h is infinite and
    multiplies a zero; here that step is the finite first-order one). Outside the reference's
    range, from pure noise (h infinite): with the corrector, B(h) = e^{-h} - 1 = -1 for bh1 too
    (which makes UniC-1 the trapezoid rule in kappa = alpha/sigma) and differences through the
    pure-noise node get weight 0; without it, `exponential.restart_at_pure_noise`. Observed
    orders on `logsnr` and `edm` grids (tested): `order`, between finite noise levels and from
    pure noise to the data, the first steps lying where the data prediction hardly moves; the
    first-order step into sigma = 0 is exact to O((sigma/alpha)^2) (the data prediction is even
    in sigma/alpha along a trajectory), but these grids keep the last noise level at 0.002 for
    every step count, which leaves an error of about 1e-5 on the test mixture (reached near
    256 steps). On grids uniform in t from pure noise order 3 observes 1.7-2.1.

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
    variable: Annotated[
        Literal["lambda", "nu"],
        Field(
            description="interpolation variable: nu (full order on any grid), or the "
            "reference's log-SNR with its lower-order first and last steps"
        ),
    ] = "nu"
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
        if self.variable == "lambda":
            return self._reference(schedule)
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

    def _reference(self, s: Schedule) -> Weights:
        """diffusers' UniPC as engine weights (class doc, `variable="lambda"`).

        Step m (node m to m + 1) predicts DDIM plus `scale_m sum_i g_i (D_{m-i} - D_m)`; the
        corrector, applied when node m + 1 has been evaluated, redoes step m from the same
        corrected state with `D_{m+1}` included, so row m + 1 adds the difference of the two
        sums (times its own sigma ratio, which carries node m + 1's correction forward).
        """
        p, w = self.predictor, Weights(s, self.width)
        orders = reference_orders(s.steps, p, lower_final=p)
        c = _Coefficients(s, self.variant)
        w.add("x", 0, s.sigma[1:] / s.sigma[:-1])
        w.add("data", 0, -s.alpha[1:] * torch.expm1(-s.h))
        for k, rows in rows_by_order(orders).items():
            for i, g in enumerate(c.predictor(k), start=1):
                _difference(w, i, 0, c.scale * g, rows)
        if not self.corrector:
            restart_at_pure_noise(w, p)
            return w
        scale = previous(c.scale, 1) * s.sigma[1:] / s.sigma[:-1]
        for k, steps in rows_by_order(orders[:-1]).items():
            rows = [m + 1 for m in steps]
            gains, new = c.corrector(k)
            for i, (gc, gp) in enumerate(zip(gains, c.predictor(k), strict=True), start=1):
                _difference(w, i + 1, 1, scale * previous(gc - gp, 1), rows)
            _difference(w, 0, 1, scale * previous(new, 1), rows)
        return w


def _difference(w: Weights, entry: int, base: int, coef: Tensor, rows: list[int]) -> None:
    """Add `coef (S, B)` times `D_entry - D_base` (data predictions) to `rows`."""
    w.add("data", entry, coef[rows], rows)
    w.add("data", base, -coef[rows], rows)


class _Coefficients:
    """UniP-k / UniC-k coefficients per step `(S, B)` as diffusers computes them (predict_x0).

    With h the lambda-step, `hh = -h`, `B = hh` (bh1) or `e^hh - 1` (bh2), the paper's vector
    `b_i = i! phi_i(hh) / B` and the ratios `r_i = (lambda_{m-i} - lambda_m) / h`, the weights
    `rho` solve `sum_i rho_i r_i^(j-1) = b_j` (UniP-2 and UniC-1 fix rho = 1/2). They are
    returned as `g_i = rho_i / r_i`, the weight of `D_{m-i} - D_m`, written in `u_i = 1 / r_i`
    so that a node at pure noise (r infinite, u = 0) drops out without inf / inf.
    """

    def __init__(self, s: Schedule, variant: str):
        hh = -s.h
        b = torch.where(torch.isinf(hh), -1.0, hh if variant == "bh1" else torch.expm1(hh))
        phi1 = torch.expm1(hh) / hh - 1
        phi2 = phi1 / hh - 0.5
        self.b1, self.b2 = phi1 / b, 2 * phi2 / b
        self.scale = -s.alpha[1:] * b
        lam = s.lam[:-1]
        self.u1, self.u2 = (s.h / (previous(lam, i) - lam) for i in (1, 2))

    def predictor(self, k: int) -> list[Tensor]:
        """`[g_1, ..., g_{k-1}]` of UniP-k."""
        b1, b2, u1, u2 = self.b1, self.b2, self.u1, self.u2
        if k == 1:
            return []
        if k == 2:
            return [u1 / 2]
        return [u1**2 * (b1 - b2 * u2) / (u1 - u2), u2**2 * (b2 * u1 - b1) / (u1 - u2)]

    def corrector(self, k: int) -> tuple[list[Tensor], Tensor]:
        """`([g_1, ..., g_{k-1}], rho_t)` of UniC-k: `rho_t` weighs `D_{m+1} - D_m`."""
        b1, b2, u1 = self.b1, self.b2, self.u1
        if k == 1:
            return [], torch.full_like(b1, 0.5)
        return [u1**2 * (b1 - b2) / (u1 - 1)], (b2 * u1 - b1) / (u1 - 1)
