"""CPU programs of the explicit Runge-Kutta methods: each stage state and a step's result as a
weighted sum of a few vectors, the weights Python numbers fixed in `init`.

On the CPU with a grid every sample shares (and no gradient through it), a step's size and a
non-velocity model's conversion `velocity = p x + q output` at every stage time are numbers
known before the loop (`explicit_rk.stage_conversions`). Every stage state is then a linear
combination of the vectors of the step so far, `(x, output_0, x_1, output_1, ...)`, in one of
two forms: the tableau's, `x + h sum_j a_ij (p_j x_j + q_j output_j)`, or, with the earlier
stage states substituted, one on `x` and the raw outputs only. A step takes the form with fewer
tensor ops (a weight of exactly 1 rides in `torch.add`): at the benchmark's size an op costs
microseconds whatever it computes (benchmarks/overhead.py), and the tensor form spends a few
more per step on the step size and each stage's conversion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from flowforge.field import Dynamics
from flowforge.solvers.host_program import sum_ops, weighted_sum

# `(vector index, weight)` pairs into `(x, output_0, x_1, output_1, ...)`.
Terms = tuple[tuple[int, float], ...]


@dataclass(frozen=True, slots=True)
class RKProgram:
    """One step: stage i evaluates at `t0 + c[i] h` the state `stages[i]` weighs (stage 0:
    the step's start x itself, empty), `result` weighs the step's result; stage j's state is
    vector 2j, its output 2j + 1."""

    c: tuple[float, ...]
    stages: tuple[Terms, ...]
    result: Terms


@dataclass(frozen=True, slots=True)
class HostRKStep:
    """A step's program and the times of its stages strictly inside the step (`mids[i]`, None
    where stage i evaluates at the step's start or end, which the driver passes)."""

    program: RKProgram
    mids: tuple[Tensor | None, ...]

    def run(self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor) -> Tensor:
        """The step from `x` at `t0` to `t1`: one model call per stage."""
        vectors = [x]
        for i, terms in enumerate(self.program.stages):
            ci = self.program.c[i]
            xi = weighted_sum(terms, vectors) if i else x
            pred = f(xi, t0 if ci == 0 else t1 if ci == 1 else self.mids[i])
            if i:
                vectors.append(xi)
            vectors.append(pred.as_(f.prediction))
        return weighted_sum(self.program.result, vectors)


def _terms(weights: dict[int, float]) -> Terms:
    """The nonzero weights, one that is exactly 1 first (the base of `torch.add`, which
    `sum_ops` counts)."""
    items = [(k, c) for k, c in sorted(weights.items()) if c != 0.0]
    return tuple(sorted(items, key=lambda kc: kc[1] != 1.0))


def rk_program(
    tableau: tuple[Sequence[Sequence[float]], Sequence[float], Sequence[float]],
    h: float,
    p: Sequence[float],
    q: Sequence[float],
) -> RKProgram:
    """The program of one step of `tableau (a, b, c)` with step size `h`, where stage j's
    velocity is `p[j] x_j + q[j] output_j` (p = 0, q = 1 for a velocity model)."""
    a, b, c = tableau
    flat: list[dict[int, float]] = []  # each stage state on x (index 0) and raw outputs

    def combine(row: Sequence[float]) -> tuple[Terms, dict[int, float]]:
        tableau, raw = {0: 1.0}, {0: 1.0}
        for j, w in enumerate(row):
            if not w:
                continue
            k = h * w
            tableau[2 * j] = tableau.get(2 * j, 0.0) + k * p[j]
            tableau[2 * j + 1] = tableau.get(2 * j + 1, 0.0) + k * q[j]
            for index, e in flat[j].items():
                raw[index] = raw.get(index, 0.0) + k * p[j] * e
            raw[2 * j + 1] = raw.get(2 * j + 1, 0.0) + k * q[j]
        by_tableau, by_outputs = _terms(tableau), _terms(raw)
        return (by_tableau if sum_ops(by_tableau) <= sum_ops(by_outputs) else by_outputs), raw

    stages: list[Terms] = []
    for i in range(len(b)):
        terms, raw = ((), {0: 1.0}) if i == 0 else combine(a[i])
        stages.append(terms)
        flat.append(raw)
    return RKProgram(tuple(c), tuple(stages), combine(b)[0])


def host_steps(programs: list[RKProgram], grid: Tensor) -> list[HostRKStep]:
    """Each step's program with the times of its stages inside the step, `t0 + c (t1 - t0)`
    on `grid (S+1, B)`, computed for the whole grid at once."""
    inner = {ci for p in programs for ci in p.c if ci not in (0, 1)}
    t0, dt = grid[:-1], grid[1:] - grid[:-1]
    at = {ci: (t0 + ci * dt).unbind(0) for ci in inner}
    return [
        HostRKStep(p, tuple(None if ci in (0, 1) else at[ci][n] for ci in p.c))
        for n, p in enumerate(programs)
    ]
