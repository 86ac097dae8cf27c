"""CPU programs of the exponential family: a solve's per-step weights run in the fewest tensor ops.

On the CPU a solve is never a captured graph and every sample usually shares the grid, so the
weights `(S, 2W, 1)` of a solve (module `exponential`: row n weighs the window
`(x_n, output_n, x_{n-1}, output_{n-1}, ...)`) become Python numbers once, in `init`, and a step
is a few tensor ops with those numbers baked in (a stochastic step's noise rides along: the first
op adds onto it). At the benchmark's size (batch 256, d = 16) an op costs microseconds whatever
it computes, so the form that needs the fewest ops wins (benchmarks/overhead.py). Three forms
give the same sums up to rounding; `host_program` prices each (`COPY_COST`, `MM_COST`) and keeps
the cheapest:

- kept (`kept_program`): each node keeps what later rows read of it, one vector where they weigh
  it through one prediction form (`x_j + k output_j`, one multiply-add, as a multistep method
  does); a step is one multiply and a multiply-add per further term: order + 2 ops.
- outputs (`output_program`): `x_{n+1} = a x_n + sum_j b_j output_j` over the last few raw
  outputs, which are kept by reference (no op), where such a short sum exists: singlestep
  methods (`dpm_solver`), whose stages restart from their step's start.
- ring (`ring_program`): the window itself lives in the rows of one `(2W, numel)` buffer; a
  step copies `x_n` and `output_n` into the rows of the oldest node and takes the whole sum in
  one matrix product: two copies and a product whatever the order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

# Relative tolerance under which the weights of a node's (x, output) pair in later rows count
# as one direction (they are one conversion times per-row numbers, equal up to rounding).
PROPORTIONAL = 1e-13
# Relative size under which an output's weight in `output_program` is rounding left over from
# the cancellation of the earlier states (it is exactly 0 in exact arithmetic).
NEGLIGIBLE = 1e-12
# Longest solve whose output program is searched (a dense `(S + 1)^2` table in `init`).
OUTPUT_STEPS = 1024
# A matrix product `(1, 2W) @ (2W, numel)` and the view of its result, and a copy, in in-place
# multiply-adds (measured at the benchmark's size, W = 2-4: the product and its view about 2, a
# copy about 0.6).
MM_COST = 2.0
COPY_COST = 0.6


def on_host(weights: Tensor, x: Tensor) -> bool:
    """Whether per-step `weights (..., B or 1)` may become Python numbers: `x` is on the CPU,
    every sample shares them and no gradient flows into them (schedule tuning differentiates
    through the weights)."""
    return x.device.type == "cpu" and weights.shape[-1] == 1 and not weights.requires_grad


def host_table(weights: Tensor, x: Tensor) -> list[list[tuple[int, float]]] | None:
    """Per step, the nonzero `(entry, weight)` pairs of `weights (S, E, 1)` as Python floats
    where `on_host`, else None.

    On the CPU a solve is never a captured graph, so baking the weights into the ops as
    scalars is safe, and it saves an index op per term and skips the zero terms.
    """
    if not on_host(weights, x):
        return None
    rows = weights[..., 0].tolist()
    return [[(e, c) for e, c in enumerate(row) if c != 0.0] for row in rows]


@dataclass(frozen=True, slots=True)
class HostStep:
    """One step of a kept or output program: the weighted sum and what the node keeps.

    `terms`: `(index, weight)` pairs into `(x_n, output_n, *kept)`, where `kept` holds what the
    previous nodes kept, newest first. `keep`: what node n keeps: "x", "output", "both", a
    float k for `x_n + k output_n` (one multiply-add), or None. `carry`: how many of `kept`
    stay in the window after this step.
    """

    terms: tuple[tuple[int, float], ...]
    keep: str | float | None
    carry: int

    @property
    def ops(self) -> int:
        """Tensor ops of the step: `weighted_sum`'s, one more for a combined kept vector."""
        return sum_ops(self.terms) + isinstance(self.keep, float)


def sum_ops(terms: tuple[tuple[int, float], ...]) -> int:
    """Tensor ops of `weighted_sum(terms)`: one per term, less one where the first of several
    weights is exactly 1."""
    return max(len(terms) - (len(terms) > 1 and terms[0][1] == 1.0), 1)


def _kept(pairs: list[tuple[float, float]]) -> str | float | None:
    """What a node keeps, given the `(x weight, output weight)` pairs later rows put on it."""
    pairs = [(a, b) for a, b in pairs if a != 0.0 or b != 0.0]
    if not pairs:
        return None
    if all(b == 0.0 for _, b in pairs):
        return "x"
    if all(a == 0.0 for a, _ in pairs):
        return "output"
    a0, b0 = max(pairs, key=lambda p: abs(p[0]))  # a0 != 0: not every a is 0
    k = b0 / a0
    if math.isfinite(k) and all(
        abs(b - k * a) <= PROPORTIONAL * max(abs(b), abs(k * a)) for a, b in pairs
    ):
        return k
    return "both"


def kept_program(rows: list[list[float]]) -> list[HostStep]:
    """The weight rows `(S, 2W)` with each node's later contributions folded into one kept
    vector where the rows allow it.

    A multistep row weighs an earlier node through one prediction form, `p x_j + q output_j`
    (data or noise), so the node can keep `x_j + (q/p) output_j` once and every later row reads
    one vector instead of two: order 4 (`ipndm`) takes six tensor ops per step instead of eight.
    Nodes whose later rows mix forms (warm-up, the switch between halves) keep both.
    """
    steps, width = len(rows), len(rows[0]) // 2
    keeps = []
    for j in range(steps):
        later = [
            (rows[n][2 * (n - j)], rows[n][2 * (n - j) + 1])
            for n in range(j + 1, min(j + width, steps))
        ]
        keeps.append(_kept(later))
    size = [0 if k is None else 2 if k == "both" else 1 for k in keeps]
    program = []
    for n in range(steps):
        terms = [(e, c) for e, c in enumerate(rows[n][:2]) if c != 0.0]
        offset = 2
        for back in range(1, width):
            j = n - back
            if j < 0:
                break
            a, b = rows[n][2 * back], rows[n][2 * back + 1]
            kept = keeps[j]
            if kept == "both":
                terms += [(offset, a), (offset + 1, b)]
            elif kept == "output":
                terms.append((offset, b))
            elif kept is not None:
                terms.append((offset, a))
            offset += size[j]
        carry = sum(size[j] for j in range(max(n - width + 2, 0), n))
        program.append(HostStep(tuple((i, c) for i, c in terms if c != 0.0), keeps[n], carry))
    return program


def output_program(rows: list[list[float]]) -> list[HostStep] | None:
    """The rows as `x_{n+1} = a x_n + sum_j b_j output_j` with the raw outputs kept by
    reference, or None where some step needs a long sum (multistep methods: their states carry
    every earlier output) or the solve is longer than `OUTPUT_STEPS`.

    Every state is `c x_0 + sum_j d_j output_j`; the table of these coefficients gives `a` (the
    ratio of the x_0 coefficients) and the `b_j`, which are exactly 0 outside the current
    singlestep step (and the one before, which a trailing low-order step reads).
    """
    steps, width = len(rows), len(rows[0]) // 2
    if steps > OUTPUT_STEPS:
        return None
    table = np.zeros((steps + 1, steps + 1))  # row n: x_n on (x_0, output_0, output_1, ...)
    table[0, 0] = 1.0
    parts: list[tuple[float, dict[int, float]]] = []
    for n in range(steps):
        for back in range(min(width, n + 1)):
            a, b = rows[n][2 * back], rows[n][2 * back + 1]
            table[n + 1] += a * table[n - back]
            table[n + 1, n - back + 1] += b
        now, new = table[n], table[n + 1]
        ratio = new[0] / now[0] if now[0] != 0.0 else 0.0
        rest = new[1:] - ratio * now[1:]
        scale = max(np.abs(new).max(), abs(ratio) * np.abs(now).max())
        used = np.nonzero(np.abs(rest) > NEGLIGIBLE * scale)[0]
        if (new[0] != 0.0 and now[0] == 0.0) or (used.size and n - used.min() >= 2 * width):
            return None
        parts.append((ratio, {int(j): float(rest[j]) for j in used}))
    lag = max((n - min(b, default=n) for n, (_, b) in enumerate(parts)), default=0)
    program = []
    for n, (ratio, outputs) in enumerate(parts):
        terms = [(0, ratio)] if ratio != 0.0 else []
        terms += [(1 if j == n else 2 + n - 1 - j, c) for j, c in sorted(outputs.items())]
        program.append(HostStep(tuple(terms), "output", lag))
    return program


@dataclass(frozen=True, slots=True)
class RingStep:
    """One step of a ring program: copy `x_n` and `output_n` into ring rows `x_row` and
    `out_row` (None: no row reads it), then `x_next = weights @ ring`, `weights (1, 2W)` in
    x's dtype."""

    x_row: int | None
    out_row: int | None
    weights: Tensor

    @property
    def ops(self) -> float:
        return COPY_COST * ((self.x_row is not None) + (self.out_row is not None)) + MM_COST


def ring_program(rows: list[list[float]], x: Tensor) -> list[RingStep]:
    """The weight rows `(S, 2W)` on a ring of the window: node n's `x` and output in rows
    `2 (n mod W)` and `2 (n mod W) + 1`, which node n - W held before. The steps' weights are
    made in one tensor op (not four ops per weight) when a solve builds its program."""
    steps, width = len(rows), len(rows[0]) // 2
    table = [[0.0] * (2 * width) for _ in range(steps)]
    slots = []
    for n in range(steps):
        for e, c in enumerate(rows[n]):
            if c != 0.0 and n - e // 2 >= 0:
                table[n][2 * ((n - e // 2) % width) + e % 2] = c
        # node n is read by rows n .. n + W - 1, at entries 2 (m - n) and 2 (m - n) + 1
        later = [rows[m][2 * (m - n) : 2 * (m - n) + 2] for m in range(n, min(n + width, steps))]
        slot = 2 * (n % width)
        x_row = slot if any(a != 0.0 for a, _ in later) else None
        out_row = slot + 1 if any(b != 0.0 for _, b in later) else None
        slots.append((x_row, out_row))
    weights = torch.tensor(table, dtype=x.dtype)[:, None, :].unbind(0)
    return [RingStep(a, b, w) for (a, b), w in zip(slots, weights, strict=True)]


def weighted_sum(
    terms: tuple[tuple[int, float], ...], vectors: Sequence[Tensor], base: Tensor | None = None
) -> Tensor:
    """`sum(c * vectors[i] for i, c in terms)`, a new tensor, in one tensor op per term: a
    multiply and in-place multiply-adds, or, where the first of several weights is exactly 1,
    `torch.add` of the first two. No terms: zeros like `vectors[0]`.

    With `base` (a stochastic step's noise, not modified): `base` plus the sum, in the same
    number of ops (the first term is a multiply-add onto `base`)."""
    if not terms:
        return torch.zeros_like(vectors[0]) if base is None else base.clone()
    (i, c), rest = terms[0], terms[1:]
    if base is not None:
        out = torch.add(base, vectors[i], alpha=c)
    elif c == 1.0 and rest:
        (j, d), rest = rest[0], rest[1:]
        out = torch.add(vectors[i], vectors[j], alpha=d)
    else:
        out = vectors[i] * c
    for j, d in rest:
        out.add_(vectors[j], alpha=d)
    return out


def run_host_step(
    step: HostStep, x: Tensor, out: Tensor, kept: tuple, noise: Tensor | None = None
) -> tuple[Tensor, tuple]:
    """One step of a kept or output program: `(x_next, kept)` from the state, output and kept
    vectors, plus `noise` if given."""
    x_next = weighted_sum(step.terms, (x, out, *kept), noise)
    keep = step.keep
    if keep is None:
        new = ()
    elif keep == "x":
        new = (x,)
    elif keep == "output":
        new = (out,)
    elif keep == "both":
        new = (x, out)
    else:
        new = (torch.add(x, out, alpha=keep),)
    return x_next, (*new, *kept[: step.carry])


def run_ring_step(
    step: RingStep, x: Tensor, out: Tensor, ring: Tensor, rows: list, noise: Tensor | None = None
) -> Tensor:
    """One step of a ring program on the solve's `ring (2W, numel)` and its rows shaped as x,
    plus `noise` if given (`addmm`: no extra op)."""
    if step.x_row is not None:
        rows[step.x_row].copy_(x)
    if step.out_row is not None:
        rows[step.out_row].copy_(out)
    if noise is not None:
        return torch.addmm(noise.reshape(1, -1), step.weights, ring).view_as(x)
    return torch.mm(step.weights, ring).view_as(x)


class HostProgram:
    """A solve's CPU program in its cheapest form: `start(x)` gives the window before the
    first step, `run(n, x, output, window)` returns `(x_{n+1}, window)`."""

    def __init__(self, steps: list[HostStep] | list[RingStep]):
        self.steps = steps
        # a ring program's window: the width of its steps' weights (0: a kept/output program)
        ring = steps and isinstance(steps[0], RingStep)
        self.ring_rows = steps[0].weights.shape[-1] if ring else 0

    @property
    def ops(self) -> float:
        """Tensor ops of the whole solve (the cost `host_program` compares)."""
        return sum(s.ops for s in self.steps)

    def start(self, x: Tensor) -> Any:
        if not self.ring_rows:
            return ()
        ring = x.new_zeros(self.ring_rows, x.numel())
        return ring, [r.view_as(x) for r in ring]

    def run(
        self, n: int, x: Tensor, out: Tensor, window: Any, noise: Tensor | None = None
    ) -> tuple[Tensor, Any]:
        """Step n: `(x_{n+1}, window)`, `x_{n+1}` plus `noise` if given."""
        if self.ring_rows:
            return run_ring_step(self.steps[n], x, out, *window, noise), window
        return run_host_step(self.steps[n], x, out, window, noise)


def host_program(weights: Tensor, x: Tensor) -> HostProgram | None:
    """The cheapest CPU program of `weights (S, 2W, 1)` (module doc), or None where the weights
    cannot be Python numbers (`on_host`)."""
    if not on_host(weights, x):
        return None
    rows = weights[..., 0].tolist()
    candidates = [HostProgram(kept_program(rows)), HostProgram(ring_program(rows, x))]
    outputs = output_program(rows)
    if outputs is not None:
        candidates.append(HostProgram(outputs))
    return min(candidates, key=lambda p: p.ops)
