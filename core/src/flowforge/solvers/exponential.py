"""Exponential integrators on affine paths: the shared math and the engine of the family.

`ddim`, `dpm_solver`, `dpm_solver_pp`, `unipc`, `deis`, `ipndm` and the momentum solvers all
integrate the probability-flow ODE of `x_t = alpha x_1 + sigma x_0` in its semi-linear form.
With `kappa = alpha / sigma` and `rho = sigma / alpha` (lambda = log kappa is half the log-SNR),
the velocity of any affine path is `v = (sigma'/sigma) x + alpha lambda' D`, so, exactly
(Lu et al. 2022, "DPM-Solver"; Zhang & Chen 2023, "DEIS"),

    x_t / sigma_t = x_s / sigma_s + int_{kappa_s}^{kappa_t} D dkappa       (data form)
    x_t / alpha_t = x_s / alpha_s + int_{rho_s}^{rho_t} N drho             (noise form)

with D, N the data and noise predictions; the first-order step of both is DDIM,
`x_t = alpha_t D_s + sigma_t N_s`. Higher orders replace D (or N) by the polynomial through
recent predictions and integrate it exactly.

The polynomial variable. The papers interpolate in lambda. At a pure-noise start (alpha = 0)
and at the data end (sigma = 0) lambda is infinite, and on any grid that is smooth in t the
lambda-steps next to those ends stay O(1) however small h is, so lambda-polynomials lose order
there (measured: DPM-Solver++(3M) observes order 2.1 on cond_ot with a uniform grid). This
family interpolates instead in `nu = alpha / (alpha + sigma) = sigmoid(lambda)`, the signal
fraction (nu = t on cond_ot): affine in lambda in the middle of the path, and regular at both
ends, where D and N are smooth in kappa resp. rho. The integrals against dkappa = dnu/(1-nu)^2
and drho = -dnu/nu^2 are done in closed form (`inverse_square_integrals`), so the weights are
exact for any grid.

Every solver of the family is then a linear combination of the current state and recent model
outputs, so one engine runs them all (`ExponentialSolver`): `init` precomputes, for every grid
step, the weights of its result on a window of the last `W` evaluations `(x_j, output_j)`
(prediction-kind conversions folded in), and a step is one model call and one weighted sum, with
no host sync. On the CPU the weights are Python numbers baked into a few tensor ops per step
(module `host_program`: about four whatever the order).

End points, with full-order rules shared by the multistep solvers:
- start (`start`): the first `K - 1` steps of a `K`-th order method (and step `K - 1` too after
  a pure-noise start) integrate the data form from t0 with the polynomial through *all*
  predictions so far. Each restarts from the exact `x_0`, so the warm-up loses no order.
- end (`extrapolate_to_data`): a step into sigma = 0 returns `alpha_1 D(nu = 1)`, the data
  prediction extrapolated to the data end through the last `K` predictions: the exact solution
  there is D at sigma = 0 (`y = x / alpha` solves `dy/drho = (y - D)/rho`), so the last step has
  full order instead of a silent first-order jump.

Reference-faithful variants (`variable="lambda"` of `dpm_solver_pp`, `unipc` and `deis`,
`variable="rho"` of `ipndm`) put diffusers' and k-diffusion's arithmetic into the same weights:
their formulas in lambda (or rho), their lower-order first and last steps (`reference_orders`)
instead of the rules above, and where the references cannot go, a pure-noise start,
`restart_at_pure_noise`. On the references' own grids they equal them to float rounding.
"""

from __future__ import annotations

import abc
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import Tensor

from flowforge.field import Dynamics
from flowforge.graph.state import identity
from flowforge.paths.base import AffinePath
from flowforge.solvers.base import ODE, Solver, StepInfo, steps_from_nfe
from flowforge.solvers.host_program import HostProgram, host_program, weighted_sum

F64 = torch.float64
# alpha/sigma (or sigma/alpha) below this counts as an end point: vp_cosine's sigma(1) is
# cos(pi/2) = 6e-17, not 0.
END = 1e-10


def safe_mul(weight: Tensor, coef: Tensor) -> Tensor:
    """`weight * coef`, exactly 0 where the weight is 0 (an unused infinite coef gives no NaN)."""
    return torch.where(weight == 0, torch.zeros_like(coef), weight * coef)


def lagrange(u: Tensor, nodes: Tensor) -> Tensor:
    """Lagrange basis values `l_j(u)` for `nodes (k, *batch)` at `u (*batch)` -> `(k, *batch)`.

    A node at infinity (sigma/alpha at pure noise) has basis 0 and drops out of the others.
    """
    k = nodes.shape[0]
    out = []
    for j in range(k):
        basis = torch.ones_like(u * nodes[0])
        for m in range(k):
            if m != j:
                factor = (u - nodes[m]) / (nodes[j] - nodes[m])
                factor = torch.where(torch.isinf(nodes[m]), 1.0, factor)
                basis = basis * torch.where(torch.isinf(nodes[j]), 0.0, factor)
        out.append(basis)
    return torch.stack(out)


def monomials(nodes: Tensor, j: int) -> list[Tensor]:
    """Coefficients `c_p (*batch)` of the Lagrange basis `l_j(u) = sum_p c_p u^p`.

    As in `lagrange`, a node at infinity (log sigma/alpha at pure noise) has basis 0 and drops
    out of the others.
    """
    coefs = [torch.ones_like(nodes[0])]
    for m in range(nodes.shape[0]):
        if m == j:
            continue
        scale = 1 / (nodes[j] - nodes[m])
        shifted = [torch.zeros_like(coefs[0]), *coefs]
        kept = [*coefs, torch.zeros_like(coefs[0])]
        far = torch.isinf(nodes[m])
        coefs = [
            torch.where(far, same, (hi - nodes[m] * lo) * scale)
            for hi, lo, same in zip(shifted, kept, kept, strict=True)
        ]
    far = torch.isinf(nodes[j])
    return [torch.where(far, 0.0, c) for c in coefs]


def inverse_square_integrals(nodes: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """`int_a^b l_j(u) u^-2 du` exactly, for the Lagrange basis of `nodes (k, *batch)`; a, b > 0."""
    powers = [1 / a - 1 / b, torch.log(b / a)]
    out = []
    for j in range(nodes.shape[0]):
        total = torch.zeros_like(a * nodes[0])
        for p, c in enumerate(monomials(nodes, j)):
            if p >= len(powers):
                powers.append((b ** (p - 1) - a ** (p - 1)) / (p - 1))
            total = total + c * powers[p]
        out.append(total)
    return torch.stack(out)


def previous(values: Tensor, back: int) -> Tensor:
    """Row n of `values (S, B)` moved to row n + back (NaN in the first `back` rows): the
    quantity of the step `back` steps earlier, e.g. `previous(h, 1)` or, of the nodes' lambda
    `lam[:-1]`, lambda at node n - back."""
    pad = torch.full_like(values[:back], float("nan"))
    return torch.cat((pad, values[:-back]))[: values.shape[0]]


def reference_orders(steps: int, order: int, lower_final: int = 0) -> list[int]:
    """The order of each step in the reference multistep codes (diffusers, k-diffusion).

    Step n has order `min(order, n + 1)` (a lower-order warm-up: only n + 1 predictions exist),
    and with `lower_final = k` the last k steps drop to orders 1, 2, ..., k counted from the end
    (diffusers' `lower_order_final`). Each lower-order step costs the method an order in
    general, but little on log-SNR and Karras grids, whose first steps lie where the data
    prediction hardly changes and whose last steps are short in sigma/alpha.
    """
    out = [min(order, n + 1) for n in range(steps)]
    for back in range(min(lower_final, steps)):
        out[steps - 1 - back] = min(out[steps - 1 - back], back + 1)
    return out


def rows_by_order(orders: list[int]) -> dict[int, list[int]]:
    """`{order: [steps]}` for per-step `orders`: the weights of one order are built for all its
    steps at once."""
    out: dict[int, list[int]] = {}
    for n, k in enumerate(orders):
        out.setdefault(k, []).append(n)
    return out


class Schedule:
    """alpha, sigma and their derived quantities on a grid `(S+1, B)`, in float64.

    `conversion(form)` gives `(p, q) (S+1, B)` with `form = p x + q * output` for the model's
    prediction kind, so a weight on "the data prediction at node j" folds into weights on the
    window entries `x_j` and `output_j`.
    """

    def __init__(self, path: AffinePath, kind: str, grid: Tensor):
        self.path = path
        self.kind = kind
        self.t = grid.to(F64)
        self.alpha = path.alpha(self.t).to(F64)
        self.sigma = path.sigma(self.t).to(F64)
        self.steps = grid.shape[0] - 1

    @cached_property
    def nu(self) -> Tensor:
        """nu = alpha / (alpha + sigma): 0 at pure noise, 1 at the data, sigmoid(lambda)."""
        return self.alpha / (self.alpha + self.sigma)

    @cached_property
    def mu(self) -> Tensor:
        """1 - nu = sigma / (alpha + sigma), without cancellation near the data end."""
        return self.sigma / (self.alpha + self.sigma)

    @cached_property
    def lam(self) -> Tensor:
        """lambda = log(alpha / sigma): -inf where alpha = 0, +inf where sigma = 0."""
        return torch.log(self.alpha) - torch.log(self.sigma)

    @cached_property
    def h(self) -> Tensor:
        """Step sizes in lambda `(S, B)` (inf where a step touches alpha = 0 or sigma = 0)."""
        return self.lam[1:] - self.lam[:-1]

    @cached_property
    def decay(self) -> Tensor:
        """`e^{-h} = sigma_t alpha_s / (alpha_t sigma_s)` per step `(S, B)`; 0 at the ends."""
        return (self.sigma[1:] * self.alpha[:-1]) / (self.alpha[1:] * self.sigma[:-1])

    @cached_property
    def noise_start(self) -> Tensor:
        """`(B,)`: the solve starts at pure noise (alpha(t0) = 0, lambda = -inf)."""
        return self.alpha[0].abs() <= END * self.sigma[0].abs()

    @cached_property
    def data_end(self) -> Tensor:
        """`(B,)`: the solve ends at the data (sigma(t1) = 0, lambda = +inf)."""
        return self.sigma[-1].abs() <= END * self.alpha[-1].abs()

    @cached_property
    def _conversions(self) -> dict[str, tuple[Tensor, Tensor]]:
        a, s = self.alpha, self.sigma
        one, zero = torch.ones_like(a), torch.zeros_like(a)
        if self.kind == "data":
            return {"data": (zero, one), "noise": (1 / s, -a / s)}
        if self.kind == "noise":
            return {"data": (1 / a, -s / a), "noise": (zero, one)}
        if self.kind == "score":
            return {"data": (1 / a, s * s / a), "noise": (zero, -s)}
        da, ds = self.path.d_alpha(self.t).to(F64), self.path.d_sigma(self.t).to(F64)
        det = a * ds - s * da
        return {"data": (ds / det, -s / det), "noise": (-da / det, a / det)}

    def conversion(self, form: str) -> tuple[Tensor, Tensor]:
        return self._conversions[form]


class Weights:
    """The per-step weights `(S, 2W, B)` of the engine, and the builders every solver uses.

    Row n is the result of step n; entry e of the window holds node `n - e` (the current node is
    entry 0): `x` at index 2e, the model output at 2e + 1. `add` puts a weight on a quantity at
    an entry (`form`: the state "x", or the "data" or "noise" prediction) for a set of rows;
    weights on entries before the first node are dropped.
    """

    def __init__(self, schedule: Schedule, width: int):
        self.s = schedule
        self.width = width
        steps, batch = schedule.steps, schedule.t.shape[1]
        self.w = torch.zeros(steps, 2 * width, batch, dtype=F64, device=schedule.t.device)

    def rows(self, rows: Any = None) -> Tensor:
        full = torch.arange(self.s.steps, device=self.w.device)
        return full if rows is None else full[rows].reshape(-1)

    def add(self, form: str, entry: int, weight: Tensor | float, rows: Any = None) -> None:
        idx = self.rows(rows)
        nodes = idx - entry
        valid = (nodes >= 0)[:, None]
        weight = torch.as_tensor(weight, dtype=F64, device=self.w.device)
        weight = torch.where(valid, weight.expand(idx.shape[0], self.w.shape[2]), 0.0)
        if form == "x":
            self.w[idx, 2 * entry] += weight
            return
        p, q = self.s.conversion(form)
        nodes = nodes.clamp(min=0)
        self.w[idx, 2 * entry] += safe_mul(weight, p[nodes])
        self.w[idx, 2 * entry + 1] += safe_mul(weight, q[nodes])

    def integrate(
        self,
        form: str,
        entries: list[int],
        rows: Any = None,
        start: int = 0,
        end: int = 1,
        scale: Tensor | None = None,
    ) -> None:
        """Add `scale *` the exact integral from node `row - start` to node `row + end`.

        Data form: `x_b = sigma_b (x_a / sigma_a + int P_D dkappa)`; noise form: `x_b = alpha_b
        (x_a / alpha_a + int P_N drho)`, with P the polynomial in nu through the predictions at
        `entries` (nodes `row - e`). Rows whose nodes precede node 0 must not be given.
        """
        s = self.s
        idx = self.rows(rows)
        a, b = idx - start, idx + end
        nodes = torch.stack([idx - e for e in entries])
        if form == "data":
            ints = -inverse_square_integrals(s.mu[nodes], s.mu[a], s.mu[b])
            base, ratio = s.sigma[b], s.sigma[b] / s.sigma[a]
        else:
            ints = -inverse_square_integrals(s.nu[nodes], s.nu[a], s.nu[b])
            base, ratio = s.alpha[b], s.alpha[b] / s.alpha[a]
        scale = torch.ones_like(base) if scale is None else scale
        self.add("x", start, scale * ratio, rows)
        for e, integral in zip(entries, ints, strict=True):
            self.add(form, e, scale * base * integral, rows)

    def integrate_natural(self, form: str, entries: list[int], rows: Any = None) -> None:
        """As `integrate` from node `row` to `row + 1`, with the polynomial in the form's own
        variable: D in kappa (data form), N in rho = sigma/alpha (noise form), as on the DDIM ODE.
        """
        s = self.s
        idx = self.rows(rows)
        var = s.alpha / s.sigma if form == "data" else s.sigma / s.alpha
        nodes = torch.stack([var[idx - e] for e in entries])
        a, b = var[idx], var[idx + 1]
        xi, wq = np.polynomial.legendre.leggauss(len(entries))
        xi = torch.as_tensor((xi + 1) / 2, dtype=F64, device=a.device)
        u = a + xi[:, None, None] * (b - a)
        basis = torch.stack([lagrange(u[q], nodes) for q in range(len(entries))], dim=1)
        wq = torch.as_tensor(wq / 2, dtype=F64, device=a.device)[:, None, None]
        ints = (b - a) * (wq * basis).sum(1)
        ends = s.sigma if form == "data" else s.alpha
        self.add("x", 0, ends[idx + 1] / ends[idx], rows)
        for e, integral in zip(entries, ints, strict=True):
            self.add(form, e, ends[idx + 1] * integral, rows)

    def integrate_in_time(
        self, form: str, entries: list[int], rows: Any = None, points: int = 16
    ) -> None:
        """As `integrate` from node `row` to `row + 1`, with the polynomial in t (DEIS' tAB).

        The kernels dkappa/dt and drho/dt are not polynomial, so the weights come from
        `points`-point Gauss-Legendre quadrature on each step.
        """
        s = self.s
        idx = self.rows(rows)
        nodes = torch.stack([s.t[idx - e] for e in entries])
        a, b = s.t[idx], s.t[idx + 1]
        xi, wq = np.polynomial.legendre.leggauss(points)
        xi = torch.as_tensor((xi + 1) / 2, dtype=F64, device=a.device)[:, None, None]
        wq = torch.as_tensor(wq / 2, dtype=F64, device=a.device)[:, None, None]
        tau = a + xi * (b - a)
        al, sg = s.path.alpha(tau).to(F64), s.path.sigma(tau).to(F64)
        dal, dsg = s.path.d_alpha(tau).to(F64), s.path.d_sigma(tau).to(F64)
        if form == "data":
            kernel = (dal * sg - al * dsg) / sg**2
            base, ratio = s.sigma[idx + 1], s.sigma[idx + 1] / s.sigma[idx]
        else:
            kernel = (dsg * al - sg * dal) / al**2
            base, ratio = s.alpha[idx + 1], s.alpha[idx + 1] / s.alpha[idx]
        basis = torch.stack([lagrange(tau[q], nodes) for q in range(points)], dim=1)
        ints = (b - a) * (wq * kernel * basis).sum(1)
        self.add("x", 0, ratio, rows)
        for e, integral in zip(entries, ints, strict=True):
            self.add(form, e, base * integral, rows)

    def blank(self) -> Weights:
        return Weights(self.s, self.width)

    def replace(self, row: int, other: Weights, where: Tensor | None = None) -> None:
        """Row `row` from `other`, for the samples in `where (B,)` (default all)."""
        if where is None:
            self.w[row] = other.w[row]
        else:
            self.w[row] = torch.where(where, other.w[row], self.w[row])


def noisy(schedule: Schedule) -> Tensor:
    """`(S, B)`: steps that start in the noisy half of the path (nu < 1/2, alpha < sigma)."""
    return schedule.nu[:-1] < 0.5


def halves(
    schedule: Schedule,
    width: int,
    build: Callable[[Weights, str], None],
    lag: int = 0,
    data: Tensor | None = None,
) -> Weights:
    """Weights built in the data form for steps in the noisy half, the noise form after.

    `build(w, form)` fills `w` for all rows in one form; row n takes the form of step n - lag
    (a corrector in row n works on step n - 1), or of `data (S, B)` if given. Each form is
    exact; what differs is which prediction the polynomial approximates, and the two ends want
    different ones: near alpha = 0 the noise prediction follows x one to one (N ~ x / sigma)
    while D hardly depends on x, and near sigma = 0 the reverse. A multistep formula whose
    interpolated prediction is the x-sensitive one loses an order there on grids uniform in t
    (measured: noise-form Adams-Bashforth of order 3 observes 2.0 from pure noise on cond_ot).
    """
    parts = {}
    for form in ("data", "noise"):
        parts[form] = Weights(schedule, width)
        build(parts[form], form)
    if data is None:
        data = noisy(schedule)
        data = torch.cat((data[:lag], data[: data.shape[0] - lag]))
    out = parts["data"]
    out.w = torch.where(data[:, None], out.w, parts["noise"].w)
    return out


def adams(w: Weights, form: str, order: int, rows: Any = None) -> None:
    """Adams-Bashforth steps: node n to n+1 with the polynomial through nodes n..n-order+1."""
    w.integrate(form, list(range(order)), rows)


def split_multistep(schedule: Schedule, order: int, integrate: str) -> Weights:
    """A multistep method of `order` with `halves`' forms, full-order warm-up and data end.

    `integrate` names the `Weights` method that builds one step from its last `order` nodes
    (`integrate`, `integrate_natural` or `integrate_in_time`).
    """
    nodes, rows = list(range(order)), slice(order - 1, None)
    w = halves(schedule, order, lambda w, form: getattr(w, integrate)(form, nodes, rows))
    start(w, order)
    extrapolate_to_data(w, order, where=noisy(schedule)[-1])
    return w


def start(w: Weights, order: int) -> None:
    """Full-order warm-up: steps n < order-1 integrate the data form from t0 through nodes 0..n.

    Step 0 does so as well where the solve starts at pure noise (the noise form, x / alpha, is
    singular there), so every method may use either form from step 1 on. A warm-up step that
    ends the solve at sigma = 0 returns the extrapolated data prediction instead.
    """
    steps = w.s.steps
    warm = min(max(order - 1, 1), steps)
    for n in range(warm):
        fresh = w.blank()
        fresh.integrate("data", list(range(n + 1)), rows=[n], start=n)
        w.replace(n, fresh, where=None if n < order - 1 else w.s.noise_start)
    if steps <= warm:
        extrapolate_to_data(w, order)


def restart_at_pure_noise(w: Weights, order: int) -> None:
    """`start`'s rule for a method with a lower-order warm-up, where the solve starts at pure
    noise: steps n < `order` (never the last) integrate the data form from t0 through nodes
    0..n.

    The reference codes a `variable="lambda"` variant reproduces cannot start at alpha = 0. Their
    first step is then DDIM, and `logsnr` and `edm` grids keep that step (pure noise to the first
    spaced noise level) the same size for every step count, so its first-order error would stay
    as a floor; restarting from the exact x_0 until the method has `order` finite nodes removes
    it. Elsewhere the variant's rows are untouched.
    """
    start(w, 1)
    for n in range(1, min(order, w.s.steps - 1)):
        fresh = w.blank()
        fresh.integrate("data", list(range(n + 1)), rows=[n], start=n)
        w.replace(n, fresh, where=w.s.noise_start)


def extrapolate_to_data(w: Weights, order: int, where: Tensor | None = None) -> None:
    """Where sigma(t1) = 0 (and `where (B,)`): the last step returns alpha_1 D(nu = 1).

    The polynomial in nu through the data predictions of the last `order` nodes (fewer if the
    solve has fewer steps) evaluated at the data end; error O(h^order).
    """
    s = w.s
    last = s.steps - 1
    k = min(order, s.steps)
    nodes = torch.stack([s.nu[last - j] for j in range(k)])
    at_end = lagrange(s.nu[-1], nodes)
    fresh = w.blank()
    for j in range(k):
        fresh.add("data", j, s.alpha[-1] * at_end[j], rows=[last])
    w.replace(last, fresh, where=s.data_end if where is None else s.data_end & where)


def shared_columns(grid: Tensor) -> Tensor:
    """`grid (S+1, B)`, or its first column `(S+1, 1)` when every sample has the same times.

    Weights computed on one column broadcast over the batch, so `init` costs the same for any
    batch size (one host read, before the sampling loop).
    """
    return grid[:, :1] if bool((grid == grid[:, :1]).all()) else grid


def empty_window(width: int, x: Tensor) -> tuple[Tensor, ...]:
    """The window before the first step: `2 * width` zero states (their weights are 0)."""
    zero = torch.zeros_like(x)
    return (zero,) * (2 * width)


def combine(
    weights: Tensor | list[tuple[int, float]],
    window: tuple[Tensor, ...],
    base: Tensor | None = None,
) -> Tensor:
    """`base + sum_e weights[e] * window[e]` (`base` None: 0): one multiply, or a multiply-add
    onto `base` (a stochastic step's noise, not modified), and a fused multiply-add per further
    entry, reading each window entry once (no stacked copy of the window per step).

    `weights` is a step's row `(2W, B or 1, 1, ...)` on the device, or, from `host_table`, its
    nonzero `(entry, weight)` pairs as Python numbers (no weight tensor to index per term).
    """
    if isinstance(weights, list):
        return weighted_sum(weights, window, base)
    if base is None:
        out = window[0] * weights[0]
    else:
        out = torch.addcmul(base, window[0], weights[0])
    for entry in range(1, len(window)):
        out = out.addcmul_(window[entry], weights[entry])
    return out


def host_schedule(f: Dynamics, grid: Tensor) -> Schedule:
    """The schedule of `grid` on the host: `init`'s many small float64 ops run on the CPU, not as
    hundreds of tiny device kernels; `on_device` then copies the result once."""
    return Schedule(f.path, f.prediction, shared_columns(grid).to("cpu", F64))


_WEIGHTS: OrderedDict[Hashable, Tensor] = OrderedDict()
_HOST: OrderedDict[Hashable, tuple[Tensor, Any]] = OrderedDict()
WEIGHTS_CACHED = 32


def _remember(cache: OrderedDict, key: Hashable, value: Any) -> Any:
    cache[key] = value
    if len(cache) > WEIGHTS_CACHED:
        cache.popitem(last=False)
    return value


def cached_weights(
    solver: Solver, f: Dynamics, grid: Tensor, build: Callable[[Schedule], Any] | None = None
) -> Any:
    """`solver.weights` (or `build(schedule)`, e.g. the RK methods' CPU programs) of this grid
    on the host, computed once per (solver, path, prediction kind, grid values): repeated
    solves (batches of a large sample set, a sampling loop) skip the per-call weight
    computation (milliseconds for UniPC). Only value-like solvers and paths (frozen
    dataclasses) are cached, and never a grid that carries a gradient (tuning)."""
    schedule = host_schedule(f, grid)
    table = None if build is None else build.__qualname__
    build = build or (lambda s: solver.weights(s).w)
    keys = (identity(solver), identity(f.path))
    value_like = keys[0][1] is solver and keys[1][1] is f.path
    if schedule.t.requires_grad or not value_like:
        return build(schedule)
    key = (*keys, table, f.prediction, tuple(schedule.t.shape), schedule.t.numpy().tobytes())
    if key in _WEIGHTS:
        _WEIGHTS.move_to_end(key)
        return _WEIGHTS[key]
    return _remember(_WEIGHTS, key, build(schedule))


def cached_host(weights: Tensor, x: Tensor, make: Callable[[Tensor, Tensor], Any]) -> Any:
    """`make(weights, x)` (`host_program`, `host_table`), kept with cached `weights`: a
    repeated solve skips turning them into Python numbers again."""
    key = (id(weights), make, x.device.type, x.dtype)
    hit = _HOST.get(key)
    if hit is not None and hit[0] is weights:
        _HOST.move_to_end(key)
        return hit[1]
    return _remember(_HOST, key, (weights, make(weights, x)))[1]


def on_device(weights: Tensor, x: Tensor) -> Tensor:
    """`weights (S, ..., B)` in x's dtype on x's device, shaped to broadcast against x."""
    weights = weights.to(dtype=x.dtype).to(x.device, non_blocking=True)
    return weights.reshape(weights.shape + (1,) * (x.ndim - 1))


class ExponentialSolver(Solver, ODE):
    """Abstract: a solver given by per-step weights on a window of recent evaluations.

    Subclasses set `width` (window length W) and `weights(schedule) -> Weights`. One model
    evaluation per grid step (nfe = steps); `step` is: evaluate at the current node, push
    `(x, output)` into the window, return the weighted sum for the next node.
    """

    default_grid = "logsnr"

    @property
    @abc.abstractmethod
    def width(self) -> int:
        """Window length: how many recent evaluations a step may combine."""

    @abc.abstractmethod
    def weights(self, schedule: Schedule) -> Weights:
        """The weights of every step on the window, for this grid, path and prediction kind."""

    def steps_for_nfe(self, nfe: int) -> int:
        return steps_from_nfe(self, nfe, 1)

    def init(
        self, f: Dynamics, x: Tensor, grid: Tensor, generator: torch.Generator | None = None
    ) -> Any:
        weights = cached_weights(self, f, grid)
        program = cached_host(weights, x, host_program)
        if program is not None:
            return program, program.start(x), f.prediction
        return on_device(weights, x), empty_window(self.width, x), f.prediction

    def step(
        self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor, state: Any, info: StepInfo
    ) -> tuple[Tensor, Any]:
        return self.advance(f, x, t0, state, info.index)

    def advance(
        self,
        f: Dynamics,
        x: Tensor,
        t0: Tensor,
        state: Any,
        index: int,
        noise: Tensor | None = None,
    ) -> tuple[Tensor, Any]:
        """Step `index` from `(x, t0)`, plus `noise` (a stochastic step's scaled draw, `(B, ...)`,
        or None): the weighted sum starts from the noise instead of a multiply, so adding it
        costs no tensor op."""
        w, window, kind = state
        pred = f(x, t0)
        out = pred.value if pred.kind == kind else pred.as_(kind)
        if isinstance(w, HostProgram):
            x, window = w.run(index, x, out, window, noise)
            return x, (w, window, kind)
        window = (x, out, *window[:-2])
        return combine(w[index], window, noise), (w, window, kind)
