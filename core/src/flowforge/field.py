"""Vector fields and the evaluation wrapper solvers call: one network call, any prediction kind."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import AffinePath, check_prediction


@runtime_checkable
class VectorField(Protocol):
    """Any callable `(x_t (B, ...), t (B,), **cond) -> prediction (B, ...)`, often an nn.Module."""

    def __call__(self, x_t: Tensor, t: Tensor, **cond: Any) -> Tensor: ...


@dataclass(frozen=True, slots=True)
class Prediction:
    """A model output of kind `kind` at `(x_t, t)`, convertible exactly to any other kind.

    Created once per model call, so it is kept light: slots, and no conversion work for the kind
    the model already predicts (solvers read it every step; see benchmarks/overhead.py).

    >>> pred = Prediction(eps_hat, "noise", x_t, t, path)
    >>> pred.velocity  # dx_t/dt implied by the noise prediction
    """

    value: Tensor
    kind: str
    x_t: Tensor
    t: Tensor
    path: AffinePath

    def as_(self, kind: str) -> Tensor:
        """The prediction converted to `kind` (velocity, data, noise or score)."""
        if kind == self.kind:
            return self.value
        return self.path.convert(self.value, self.kind, kind, self.x_t, self.t)

    @property
    def velocity(self) -> Tensor:
        return self.as_("velocity")

    @property
    def data(self) -> Tensor:
        return self.as_("data")

    @property
    def noise(self) -> Tensor:
        return self.as_("noise")

    @property
    def score(self) -> Tensor:
        return self.as_("score")

    def with_value(self, value: Tensor, kind: str | None = None) -> Prediction:
        """A copy holding `value` (of `kind`, default the same kind) at the same point."""
        return Prediction(value, kind or self.kind, self.x_t, self.t, self.path)


class Dynamics:
    """What a solver evaluates: model + path + prediction kind + guidance, with an exact NFE count.

    Calling it runs the network once and returns a `Prediction` after the guidance hooks.
    """

    def __init__(
        self,
        field: Callable[..., Tensor],
        path: AffinePath,
        prediction: str,
        guidance: Sequence[Any] = (),
    ):
        self.field = field
        self.path = path
        self.prediction = check_prediction(prediction)
        self.guidance = tuple(guidance)
        self.nfe = 0

    def __call__(self, x_t: Tensor, t: Tensor) -> Prediction:
        out = self.field(x_t, t)
        self.nfe += 1
        if not isinstance(out, Tensor) or out.shape != x_t.shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise InvalidArgumentError(
                f"the model returned {got} for an input of shape {tuple(x_t.shape)}; "
                f"a vector field "
                f"must return a {self.prediction} prediction of the same shape as x_t"
            )
        pred = Prediction(out, self.prediction, x_t, t, self.path)
        for g in self.guidance:
            pred = g.on_prediction(pred, self)
        return pred
