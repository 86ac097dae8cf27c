"""Probability paths: how noise `x_0` and data `x_1` are interpolated over time `t` in [0, 1].

Convention: t=0 is noise, t=1 is data. An affine Gaussian path writes
`x_t = alpha(t) * x_1 + sigma(t) * x_0` with `x_0 ~ N(0, I)`; a model's prediction of one kind
(`velocity`, `data`, `noise`, `score`) converts exactly into any other through the path.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.tensors import expand_like

PREDICTIONS = ("velocity", "data", "noise", "score")


def check_prediction(kind: str) -> str:
    """Return `kind` if it is one of `PREDICTIONS`, else raise a message listing them."""
    if kind not in PREDICTIONS:
        raise InvalidArgumentError(
            f"unknown prediction {kind!r}; a model predicts one of {', '.join(PREDICTIONS)}"
        )
    return kind


@dataclass(frozen=True)
class PathSample:
    """A point on the path: `x_t` and its time derivative `dx_t` (the conditional velocity).

    Shapes: `x_0, x_1, x_t, dx_t (B, ...)`, `t (B,)`.
    """

    x_0: Tensor
    x_1: Tensor
    t: Tensor
    x_t: Tensor
    dx_t: Tensor


class Path(abc.ABC):
    """A probability path between a source (t=0) and the data (t=1)."""

    # The grid `time_grid="auto"` takes on this path whatever the solver (a name of
    # `flowforge.grids.GRIDS`); None: the solver's own `default_grid`.
    recommended_grid: ClassVar[str | None] = None

    @abc.abstractmethod
    def sample(self, x_0: Tensor, x_1: Tensor, t: Tensor) -> PathSample:
        """Draw `x_t` given both end points; `t (B,)`."""

    @property
    def t_span(self) -> tuple[float, float]:
        """The default integration interval (t0, t1) for sampling, noise to data."""
        return (0.0, 1.0)


class AffinePath(Path):
    """`x_t = alpha(t) x_1 + sigma(t) x_0`; subclasses give the schedule and its derivatives.

    All schedule methods take `t` of any shape and return a tensor of the same shape.
    """

    @abc.abstractmethod
    def alpha(self, t: Tensor) -> Tensor:
        """Signal coefficient; 1 at t=1 for paths that end exactly at the data."""

    @abc.abstractmethod
    def sigma(self, t: Tensor) -> Tensor:
        """Noise coefficient; largest at t=0."""

    @abc.abstractmethod
    def d_alpha(self, t: Tensor) -> Tensor:
        """d alpha / dt."""

    @abc.abstractmethod
    def d_sigma(self, t: Tensor) -> Tensor:
        """d sigma / dt."""

    @abc.abstractmethod
    def t_from_log_snr(self, log_snr: Tensor) -> Tensor:
        """Inverse of `log_snr`: the time at which log(alpha^2 / sigma^2) equals `log_snr`."""

    def log_snr(self, t: Tensor) -> Tensor:
        """log(alpha(t)^2 / sigma(t)^2), increasing in t."""
        return 2.0 * (torch.log(self.alpha(t)) - torch.log(self.sigma(t)))

    def sample(self, x_0: Tensor, x_1: Tensor, t: Tensor) -> PathSample:
        a, s = expand_like(self.alpha(t), x_1), expand_like(self.sigma(t), x_1)
        da, ds = expand_like(self.d_alpha(t), x_1), expand_like(self.d_sigma(t), x_1)
        return PathSample(x_0, x_1, t, a * x_1 + s * x_0, da * x_1 + ds * x_0)

    def endpoints(self, pred: Tensor, kind: str, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """The (data, noise) pair `(x_1, x_0)` implied by a prediction of `kind` at `(x_t, t)`."""
        check_prediction(kind)
        a, s = expand_like(self.alpha(t), x_t), expand_like(self.sigma(t), x_t)
        if kind == "data":
            return pred, (x_t - a * pred) / s
        if kind == "noise":
            return (x_t - s * pred) / a, pred
        if kind == "score":
            x_0 = -s * pred
            return (x_t - s * x_0) / a, x_0
        da, ds = expand_like(self.d_alpha(t), x_t), expand_like(self.d_sigma(t), x_t)
        det = a * ds - s * da
        return (ds * x_t - s * pred) / det, (a * pred - da * x_t) / det

    def convert(self, pred: Tensor, source: str, target: str, x_t: Tensor, t: Tensor) -> Tensor:
        """Exact conversion of a prediction from `source` to `target` kind at `(x_t, t)`.

        `pred, x_t (B, ...)`, `t (B,)`. Kinds: velocity, data, noise, score.
        """
        check_prediction(source)
        check_prediction(target)
        if source == target:
            return pred
        x_1, x_0 = self.endpoints(pred, source, x_t, t)
        if target == "data":
            return x_1
        if target == "noise":
            return x_0
        s = expand_like(self.sigma(t), x_t)
        if target == "score":
            return -x_0 / s
        da, ds = expand_like(self.d_alpha(t), x_t), expand_like(self.d_sigma(t), x_t)
        return da * x_1 + ds * x_0
