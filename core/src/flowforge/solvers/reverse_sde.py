"""The marginal-preserving reverse SDE of an affine path, and its exponential-integrator sampler.

For any `g(t) >= 0`, the SDE run forward in our time (0 = noise -> 1 = data)

    dX = [v(X, t) + g(t)^2 / 2 * score(X, t)] dt + g(t) dW

has the same marginals `p_t` as the probability-flow ODE `dX = v dt` (the extra drift and the
diffusion cancel in the Fokker-Planck equation; Song et al. 2021, "Score-based generative
modeling through SDEs", eq. 6 and App. D.1). flowforge parametrises `g` by a noise level
`eta >= 0` and a reference diffusion written in the half log-SNR `l = log(alpha / sigma)`:

    g(t)^2 = 2 eta sigma(t)^2 w(l) dl/dt,     diffusion="ddpm":   w = 1,
                                               diffusion="damped": w = SNR / (1 + SNR).

With `w = 1` and eta = 1 this is the reverse-time SDE of the forward diffusion that has `p_t`
as marginals (for VP paths g^2 = beta(t): DDPM ancestral sampling in the limit of small steps;
for VE/EDM g^2 = d sigma^2 / d(-t)), and it equals k-diffusion's `eta` in its SDE samplers.
It is infinite where alpha = 0 (pure noise, cond_ot and vp_cosine at t = 0): there the state
forgets its start and an exponential integrator is exact, but plain Euler-Maruyama cannot
start. `"damped"` multiplies it by SNR / (1 + SNR) = sigmoid(2 l): the same near the data,
vanishing at pure noise, finite on every path, so Euler-Maruyama can start at t = 0.

Exponential integrators of this SDE (`reverse_sde`, `dpm_solver_pp_sde`): written with the
data prediction `D`, the drift is `(sigma'/sigma - eta w l') x + (1 + eta w) alpha l' D`. With
`W(l) = int w dl` (`l` for ddpm, `softplus(2 l) / 2` for damped), `h = l_b - l_a` and
`kappa = eta |W(l_b) - W(l_a)|`, variation of constants solves the linear part exactly over a
step from `t_a` to `t_b` (forward in t; for any w):

    x_b = (sigma_b / sigma_a) e^{-kappa} x_a
          + alpha_b int_{l_a}^{l_b} e^{-(l_b - l) - eta (W(l_b) - W(l))} (1 + eta w(l)) D dl
          + sigma_b sqrt(1 - e^{-2 kappa}) xi,

where the noise integral has exactly the variance of the last term and is driven by the
increment of the Brownian tree, `xi = (W(t_b) - W(t_a)) / sqrt(|t_b - t_a|)`. Holding D fixed
makes the integral `alpha_b (1 - e^{-h - kappa}) D`: SDE-DPM-Solver-1, i.e. DDIM with eta (Lu et
al. 2022b, "DPM-Solver++", sec. 5; Song et al. 2021, "DDIM"); a linear D gives the 2M solver.
The same formulas hold for t_b < t_a (they then run the forward, noising SDE). eta = 0 is the
ODE solver exactly: the deterministic part runs through the engine of
`flowforge.solvers.exponential`, and at eta = 0 with the counterpart's own weights (`ddim`,
`dpm_solver_pp`), so the numbers are the same.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics
from flowforge.noise import BrownianTree, SeededNormals, counter_words, scaled_factor, seed_from
from flowforge.paths.base import AffinePath
from flowforge.solvers.base import SDE, Solver, StepInfo, steps_from_nfe
from flowforge.solvers.ddim import DDIM
from flowforge.solvers.exponential import (
    ExponentialSolver,
    Schedule,
    Weights,
    extrapolate_to_data,
    host_schedule,
    on_device,
    shared_columns,
)
from flowforge.solvers.host_program import on_host

Diffusion = Literal["ddpm", "damped"]
NoiseKind = Literal["brownian_tree", "iid"]
# Smallest |t_b - t_a| a Brownian increment is normalised by (a zero-length step has dW = 0).
MIN_DT = 1e-30
# Elements of i.i.d. noise made at once (`IIDState`): several steps of a small state, one of a
# large one.
IID_BLOCK_ELEMENTS = 2**16
# A one-step solve from pure noise to the data carries no noise (it enters scaled by sigma = 0
# at the end, and by g = 0 at the start for "damped"), so stochastic solvers take two or more.
MIN_STEPS = 2


def diffusion_rate(path: AffinePath, t: Tensor, diffusion: Diffusion) -> Tensor:
    """`w(l) dl/dt` at `t (B,)`, so that `g(t)^2 = 2 eta sigma(t)^2 * diffusion_rate`.

    `dl/dt = (alpha' sigma - alpha sigma') / (alpha sigma)`; with w = SNR / (1 + SNR) the
    `1 / alpha` cancels, so "damped" is finite where alpha = 0 (it is infinite where sigma = 0).
    """
    a, s = path.alpha(t), path.sigma(t)
    cross = path.d_alpha(t) * s - a * path.d_sigma(t)
    if diffusion == "ddpm":
        return cross / (a * s)
    return a * cross / (s * (a * a + s * s))


def noise_exponent(lam_a: Tensor, lam_b: Tensor, diffusion: Diffusion) -> Tensor:
    """`|W(l_b) - W(l_a)|` for half log-SNRs `l_a, l_b`: a step's memory decay per unit eta."""
    if diffusion == "ddpm":
        return (lam_b - lam_a).abs()
    soft = torch.nn.functional.softplus
    return 0.5 * (soft(2.0 * lam_b) - soft(2.0 * lam_a)).abs()


def step_factors(values: Tensor, x: Tensor) -> list[float] | Tensor:
    """Per-step numbers `values (S, B or 1)` of a solve of `x (B, ...)`: Python floats on the
    CPU when every sample shares the grid (a step then scales with `add_(alpha=...)`), else a
    `(S, B, 1, ...)` tensor in x's dtype on x's device."""
    if on_host(values[:, :1], x):
        shared = shared_columns(values)
        if shared.shape[1] == 1:
            return shared[:, 0].tolist()
    return on_device(values, x)


@dataclass(frozen=True)
class BrownianState:
    """Noise from the seeded Brownian path of a solve: its value `w (B, ...)` at the grid time
    of step `at`; per step the factor `unit` (`step_factors`) of the increment: the step's
    noise scale (`scaled`, 1 before) over `sqrt(|t_{n+1} - t_n|)` (`increment_rates`).

    On the CPU with a grid every sample shares (`walk` not None: `BrownianTree.walk` of the
    grid, its levels per grid time and first changed level per step), consecutive queries share
    the tree's coarse levels: `z` holds the erfinv values of the last query's nodes, so a step
    makes only the changed levels' normals and none of the per-level numbers (the same bits as
    a query from scratch)."""

    tree: BrownianTree
    w: Tensor
    unit: list[float] | Tensor
    z: Tensor | None = None
    walk: tuple[list, list[int]] | None = None
    at: int = 0

    def draw(self, index: int, t: Tensor) -> tuple[Tensor, BrownianState]:
        """Step `index`'s increment `W(t) - W(now)` scaled to unit variance times the step's
        noise scale, and the state at `t (B,)`, the grid time `index + 1` (one tree query)."""
        if self.walk is None:
            w, z = self.tree(t), None
        elif index == self.at:  # the state is at grid time `index`
            levels, first = self.walk
            w, z = self.tree.query(t, self.z, first[index], levels[index + 1])
        else:
            w, z = self.tree.query(t, levels=self.walk[0][index + 1])
        dw = (w - self.w).mul_(self.unit[index])
        return dw, BrownianState(self.tree, w, self.unit, z, self.walk, index + 1)

    def scaled(self, scale: Tensor, x: Tensor, grid: Tensor) -> BrownianState:
        """This noise with each step's draw multiplied by `scale (S, B or 1)` (host values) on
        `grid`, the solve's: the step adds it as it is."""
        return replace(self, unit=step_factors(increment_rates(grid) * scale, x))

    def normals(self, *counter: int) -> Tensor:
        """Unit normals `(B, ...)` independent of the path, numbered by `counter` (Python ints)."""
        return self.tree.normals.normals(*counter).to(self.w.dtype)


@dataclass(frozen=True)
class IIDState:
    """Noise drawn afresh for every step: counter-based normals numbered by the step index
    (`SeededNormals.normals(step)`), reproducible and batch-independent, but another path for
    another step count (unlike the Brownian tree).

    Made `per_block` steps at a time (`block`, from step `start`, unbound into its rows once:
    a tuple lookup per step, not a tensor index): a small state pays the tensor ops of a draw
    once per block instead of once per step. `words (S,)`: the steps' counter words on the
    device (`counter_words`). `factor`: None (unit normals in the source's dtype), or per step
    `(S, B or 1, 1, ...)` the `scaled_factor` of its noise scale (`scaled`), in the state's
    dtype: the block's normals come out scaled from the multiply that makes them normals.
    `work`: the blocks' intermediates and result (`SeededNormals.workspace`), made with the
    first block and reused by the next, so a block overwrites the one before it: a step's
    noise is read within the step. `owner`: a one-item list shared along the solve, the block
    that `work` holds now; a state whose block was overwritten makes it again (same numbers).
    """

    source: SeededNormals
    words: Tensor
    per_block: int
    factor: Tensor | None = None
    block: tuple[Tensor, ...] = ()
    start: int = 0
    work: tuple[Tensor, Tensor, Tensor] | None = None
    owner: list | None = None

    def draw(self, index: int, t: Tensor) -> tuple[Tensor, IIDState]:
        """Step `index`'s noise `(B, ...)`: unit normals times the step's scale, valid until
        the next block is made (a draw `per_block` steps on)."""
        state, block = self, self.block
        if not self.start <= index < self.start + len(block) or self.owner[0] is not block:
            state = self.made(index)
        return state.block[index - state.start], state

    def made(self, index: int) -> IIDState:
        """The state holding the block of steps `index, index + 1, ...`, made in `work`."""
        stop = index + self.per_block
        rows = None if self.factor is None else self.factor[index:stop]
        work, owner = self.work, self.owner
        if work is None:
            dtype = self.source.dtype if rows is None else rows.dtype
            work, owner = self.source.workspace(self.per_block, dtype), [None]
        block = self.source.keyed(self.words[index:stop, None], rows, work).unbind(0)
        owner[0] = block
        return replace(self, block=block, start=index, work=work, owner=owner)

    def scaled(self, scale: Tensor, x: Tensor, grid: Tensor) -> IIDState:
        """This noise with each step's draw multiplied by `scale (S, B or 1)` (host values),
        made in x's dtype on x's device: the step adds it as it is (`grid` unused: the
        signature of `BrownianState.scaled`)."""
        factor = on_device(scaled_factor(shared_columns(scale)), x)
        return replace(self, factor=factor, block=(), start=0, work=None, owner=None)

    def normals(self, *counter: int) -> Tensor:
        """Unit normals `(B, ...)` numbered by `counter` (Python ints, two or more: a
        one-number counter is a step's noise)."""
        return self.source.normals(*counter)


NoiseState = BrownianState | IIDState


def noise_state(
    kind: NoiseKind, x: Tensor, grid: Tensor, generator: torch.Generator | None, depth: int
) -> NoiseState:
    """The noise of a solve of `x (B, ...)` on `grid (S+1, B)`, from one int64 seed drawn from
    `generator`.

    "brownian_tree": the tree spans `[min(0, t), max(1, t)]` of each sample's grid, i.e. [0, 1]
    for every span inside the paths' time range, so one seed gives one Brownian path whatever
    the grid, the step count or the span. "iid": `SeededNormals` numbered by step.
    A draw is unit noise; the solver's `start` folds its steps' noise scales in (`scaled`).
    """
    seed = seed_from(generator, x.device)
    if kind == "iid":
        source = SeededNormals(seed, tuple(x.shape), x.dtype, x.device)
        words = counter_words(grid.shape[0] - 1).to(x.device)
        return IIDState(source, words, max(1, IID_BLOCK_ELEMENTS // x.numel()))
    lo, hi = grid.amin(0).clamp(max=0.0), grid.amax(0).clamp(min=1.0)
    tree = BrownianTree(seed, tuple(x.shape), lo, hi, depth, x.dtype, x.device)
    unit = step_factors(increment_rates(grid), x)
    walk = None
    if x.device.type == "cpu" and tree.parts == 1 and not grid.requires_grad:
        # a CPU walk reuses the coarse levels (no gradient to the grid)
        walk = tree.walk(shared_columns(grid).to(torch.float64))
    if walk is None:
        return BrownianState(tree, tree(grid[0]), unit)
    w, z = tree.query(grid[0], levels=walk[0][0])
    return BrownianState(tree, w, unit, z, walk)


def increment_rates(grid: Tensor) -> Tensor:
    """Per step `1 / sqrt(|t_{n+1} - t_n|)` `(S, B or 1)` of `grid (S+1, B)`, on the host in
    float64 (`shared_columns`): the factor that gives a Brownian increment unit variance. Not
    kept in a state: a captured CUDA graph takes every tensor of its state on the GPU."""
    times = shared_columns(grid).to("cpu", torch.float64)
    return (times[1:] - times[:-1]).abs().clamp_min(MIN_DT).rsqrt()


class SDEState(NamedTuple):
    """A stochastic solver's state: the exponential engine and its state, per-step numbers
    `scale` (`step_factors`: Euler-Maruyama's coefficients; None for the exponential family),
    and the noise (None when unused), whose draws come scaled by each step's noise std. A named
    tuple: a step makes one, cheaply."""

    engine: Any
    scale: list[float] | Tensor | None
    noise: NoiseState | None


@dataclass(frozen=True)
class StochasticSolver(Solver, SDE):
    """Abstract: a sampler of the reverse SDE family above, driven by seeded noise.

    `init` draws one seed from the generator and builds the noise (none when the solver draws
    no noise, e.g. eta = 0), then calls `start` for the subclass's own state. `noise`:
    "brownian_tree" (default) drives every step by the increment of one Brownian path per
    sample, so solves with different step counts (or grids) share the path and converge to one
    pathwise solution; "iid" draws each step's noise afresh (`SeededNormals` numbered by step:
    reproducible, the same in any batch, not shared between step counts), without the tree's
    `brownian_depth` normals per element per step.
    """

    eta: Annotated[
        float, Field(ge=0, description="noise level: g^2 = eta * reference; 0 gives the ODE")
    ] = 1.0
    diffusion: Annotated[
        Diffusion, Field(description="reference diffusion: 'ddpm' (w = 1) or 'damped'")
    ] = "ddpm"
    brownian_depth: Annotated[
        int, Field(ge=4, le=30, description="levels of the Brownian tree (resolution 2^-depth)")
    ] = 20
    noise: Annotated[
        NoiseKind,
        Field(
            description="'brownian_tree': one Brownian path per sample, shared by every grid and "
            "step count; 'iid': fresh seeded normals per step (cheaper, reproducible, "
            "batch-independent, but another path for another step count)"
        ),
    ] = "brownian_tree"

    @property
    def draws_noise(self) -> bool:
        return self.eta > 0

    @property
    def evaluations_per_step(self) -> int:
        return 1

    def steps_for_nfe(self, nfe: int) -> int:
        """`nfe = evaluations_per_step * steps` with at least `MIN_STEPS` steps."""
        per_step = self.evaluations_per_step
        if isinstance(nfe, int) and not isinstance(nfe, bool) and nfe >= 1:
            if nfe % per_step or nfe < MIN_STEPS * per_step:
                valid = ", ".join(str(per_step * k) for k in range(MIN_STEPS, MIN_STEPS + 4))
                raise InvalidArgumentError(
                    f"solver {self.name!r} uses {per_step} evaluation(s) per step and at least "
                    f"{MIN_STEPS} steps (one step from noise to data would carry no noise), so "
                    f"nfe={nfe} is impossible; valid values are {valid}, ... "
                    f"(nfe = {per_step}*steps, steps >= {MIN_STEPS})"
                )
        return steps_from_nfe(self, nfe, per_step)

    def init(
        self, f: Dynamics, x: Tensor, grid: Tensor, generator: torch.Generator | None = None
    ) -> SDEState:
        noise = None
        if self.draws_noise:
            noise = noise_state(self.noise, x, grid, generator, self.brownian_depth)
        return self.start(f, x, grid, noise)

    def start(self, f: Dynamics, x: Tensor, grid: Tensor, noise: NoiseState | None) -> SDEState:
        """The solver's state at `grid[0]` around the Brownian path `noise`."""
        return SDEState(None, None, noise)


@dataclass(frozen=True)
class _Engine(ExponentialSolver):
    """The exponential engine running the deterministic part of `solver` (not registered)."""

    solver: ExponentialSDE

    @property
    def width(self) -> int:
        return self.solver.width

    def weights(self, schedule: Schedule) -> Weights:
        return self.solver.drift_weights(schedule)


class ExponentialSDE(StochasticSolver):
    """Abstract: an exponential integrator of the SDE, one evaluation per step (nfe = steps).

    Subclasses give `width` (how many data predictions a step combines), the eta = 0
    `counterpart` and `data_weights`: the weights of a step on `D_n, D_{n-1}, ...` given
    `c0 = alpha_b (1 - e^{-h - kappa})`. A step into sigma = 0 returns alpha_1 times the data
    prediction extrapolated to sigma / alpha = 0 (full order, as in the ODE family).
    """

    width: ClassVar[int]

    @abc.abstractmethod
    def counterpart(self) -> ExponentialSolver:
        """The deterministic solver this one equals at eta = 0."""

    @abc.abstractmethod
    def data_weights(self, schedule: Schedule, c0: Tensor, decay: Tensor) -> list[Tensor]:
        """Weights `(S, B)` on the data predictions of the last `width` nodes."""

    def kappa(self, schedule: Schedule) -> Tensor:
        """`eta |W(l_b) - W(l_a)|` per step `(S, B)`."""
        return self.eta * noise_exponent(schedule.lam[:-1], schedule.lam[1:], self.diffusion)

    def drift_weights(self, schedule: Schedule) -> Weights:
        """The engine's weights: the deterministic part of every step (module docstring)."""
        if self.eta == 0:
            return self.counterpart().weights(schedule)
        s = schedule
        keep = torch.exp(-self.kappa(s))
        w = Weights(s, self.width)
        w.add("x", 0, s.sigma[1:] / s.sigma[:-1] * keep)
        decay = s.decay * keep
        for entry, coef in enumerate(self.data_weights(s, s.alpha[1:] * (1 - decay), decay)):
            w.add("data", entry, coef)
        extrapolate_to_data(w, self.width)
        return w

    def start(self, f: Dynamics, x: Tensor, grid: Tensor, noise: NoiseState | None) -> SDEState:
        """The engine's state, and the noise scaled by each step's std
        `sigma_b sqrt(1 - e^{-2 kappa})`: the engine's weighted sum starts from the draw."""
        engine = _Engine(self)
        state = (engine, engine.init(f, x, grid))
        if self.eta == 0:
            return SDEState(state, None, noise)
        schedule = host_schedule(f, grid)
        scale = schedule.sigma[1:] * torch.sqrt(-torch.expm1(-2.0 * self.kappa(schedule)))
        return SDEState(state, None, noise.scaled(scale, x, grid))

    def step(
        self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor, state: SDEState, info: StepInfo
    ) -> tuple[Tensor, SDEState]:
        (engine, inner), _, noise = state
        xi = None
        if self.eta > 0:
            xi, noise = noise.draw(info.index, t1)
        x_next, inner = engine.advance(f, x, t0, inner, info.index, xi)
        return x_next, SDEState((engine, inner), None, noise)


@dataclass(frozen=True)
class ReverseSDE(ExponentialSDE):
    """DDIM with eta: the first-order exponential integrator of the reverse SDE (module doc).

    `x_b = (sigma_b / sigma_a) e^{-kappa} x_a + alpha_b (1 - e^{-h - kappa}) D + noise`: one
    evaluation per step (nfe = steps) at the step's start, so the end point is never evaluated.
    eta = 0 is `ddim` exactly (same numbers); eta = 1 with diffusion="ddpm" is DDPM ancestral
    sampling generalised to every affine path and prediction kind. Weak order 1. Starting at
    pure noise (alpha = 0) with eta > 0 and "ddpm", the first step forgets `x_init` (the SDE's
    memory decays infinitely fast there): the sample then depends on the seed alone.

    >>> flowforge.sample(model, noise, path="vp_cosine", prediction="noise",
    ...                  solver=ReverseSDE(eta=1.0), nfe=50, generator=g)
    """

    order = 1
    name = "reverse_sde"
    width = 1

    def counterpart(self) -> ExponentialSolver:
        return DDIM()

    def data_weights(self, schedule: Schedule, c0: Tensor, decay: Tensor) -> list[Tensor]:
        return [c0]
