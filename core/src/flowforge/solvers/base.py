"""Solver base class and capability markers.

A solver is a stateless frozen dataclass: `init` returns its state, `step` advances one grid
interval and returns the new state. The driver (`flowforge.sample`) owns the loop, the grid and
the checks; a step never synchronises with the host, so a whole solve can be graph-captured.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics


class ODE:
    """Marker: solves the probability-flow ODE (deterministic)."""


class SDE:
    """Marker: simulates a stochastic differential equation (uses the generator)."""


class Adaptive:
    """Marker: chooses its own step sizes (rtol/atol); NFE is reported, not prescribed.

    The driver calls `solve` instead of running a grid: `nfe` passed to `flowforge.sample` is
    then a budget (None: the solver's own cap), and the result's `nfe` is what was used.
    Step-size control needs the host, so adaptive solves are not graph-capturable.
    """

    def solve(
        self,
        f: Dynamics,
        x: Tensor,
        t0: Tensor,
        t1: Tensor,
        max_nfe: int | None,
        generator: torch.Generator | None,
    ) -> AdaptiveOutcome:
        """Integrate from `t0 (B,)` to `t1 (B,)` within `max_nfe` evaluations."""
        raise NotImplementedError(f"{type(self).__name__} must implement solve()")


class Multistep:
    """Marker: reuses evaluations from earlier steps (its state carries them)."""


class Discrete:
    """Marker: advances a discrete (CTMC) state."""


@dataclass(frozen=True)
class StepInfo:
    """Where a step sits in the solve: `index` of `count` steps; `generator` for noise."""

    index: int
    count: int
    generator: torch.Generator | None = None

    @property
    def last(self) -> bool:
        return self.index == self.count - 1


@dataclass(frozen=True)
class AdaptiveOutcome:
    """What an adaptive solve returns: the end state and the accepted states with their times.

    `trajectory` and `times` are lists over accepted steps of `(B, ...)` states and `(B,)` times,
    starting with the initial state at `t0` and ending with `x` at `t1`.
    """

    x: Tensor
    trajectory: list[Tensor]
    times: list[Tensor]


class Solver(abc.ABC):
    """Base of all solvers. Subclasses set `order` and implement `step` (and `steps_for_nfe`)."""

    order: ClassVar[int]
    default_grid: ClassVar[str] = "uniform"

    @abc.abstractmethod
    def steps_for_nfe(self, nfe: int) -> int:
        """The number of grid steps that uses exactly `nfe` evaluations; raises if impossible."""

    def init(
        self, f: Dynamics, x: Tensor, grid: Tensor, generator: torch.Generator | None = None
    ) -> Any:
        """Initial solver state for a solve on `grid (S+1, B)` (default: none).

        SDE solvers build their seeded noise source here from `generator`.
        """
        return None

    @abc.abstractmethod
    def step(
        self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor, state: Any, info: StepInfo
    ) -> tuple[Tensor, Any]:
        """Advance `x` from `t0 (B,)` to `t1 (B,)`; returns `(x_next, state)`."""

    @property
    def name(self) -> str:
        return type(self).__name__.lower()


def steps_from_nfe(solver: Solver, nfe: int, per_step: int, extra: int = 0) -> int:
    """Steps for `nfe = per_step * steps + extra`; otherwise raise naming the valid values."""
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise InvalidArgumentError(f"nfe must be a positive integer, got {nfe!r}")
    steps, rest = divmod(nfe - extra, per_step)
    if rest or steps < 1:
        valid = ", ".join(str(per_step * k + extra) for k in range(1, 5))
        raise InvalidArgumentError(
            f"solver {solver.name!r} uses {per_step} evaluations per step"
            + (f" minus {-extra} on the last" if extra < 0 else "")
            + f", so nfe={nfe} is impossible; valid values are {valid}, ... "
            f"(nfe = {per_step}*steps{extra:+d})".replace("+0", "")
        )
    return steps
