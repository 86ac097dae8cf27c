"""Vector fields and the evaluation wrapper solvers call: one network call, any prediction kind."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import AffinePath, check_prediction

if TYPE_CHECKING:
    from flowforge.solvers.base import StepInfo


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

    Calling it runs the network once, as `field(x_t, t, **cond)` with the solve's conditioning
    keywords, and returns a `Prediction` after the guidance hooks; `nfe` counts these calls.
    It is also the context of one solve that guidance hooks read: `last` (the latest prediction),
    `step` (the `StepInfo` of the step under way, with the solve's generator; None outside a
    solve), `solver` (the solve's solver, None outside a solve: a hook that must know the
    step's transition law, as SMC's twisted proposal does, reads it), `memory(owner)` (scratch
    space that lives for one solve), and `network` / `reuse` for model calls a hook makes
    itself (those are not counted in `nfe`).

    When a hook sets `requires_grad` (and gradients are enabled), the network sees `x_t` as a
    leaf that requires grad, so hooks differentiate through the call; the returned prediction is
    detached, so no graph survives the step.
    """

    def __init__(
        self,
        field: Callable[..., Tensor],
        path: AffinePath,
        prediction: str,
        guidance: Sequence[Any] = (),
        cond: Mapping[str, Any] | None = None,
        solver: Any = None,
    ):
        self.field = field
        self.solver = solver
        self.path = path
        self.prediction = check_prediction(prediction)
        self.guidance = tuple(guidance)
        self.cond = dict(cond or {})
        self.nfe = 0
        self.step: StepInfo | None = None
        self.last: Prediction | None = None
        self._tracks_grad = any(getattr(g, "requires_grad", False) for g in self.guidance)
        self._memory: dict[int, dict[str, Any]] = {}
        self._known: tuple[Tensor, Tensor, Tensor] | None = None

    def __call__(self, x_t: Tensor, t: Tensor) -> Prediction:
        track = self._tracks_grad and torch.is_grad_enabled()
        x_in = x_t.detach().requires_grad_(True) if track else x_t
        out = None if track else self._take_known(x_t, t)
        if out is None:
            out = self.network(x_in, t)
        self.nfe += 1
        pred = Prediction(out, self.prediction, x_in, t, self.path)
        for g in self.guidance:
            pred = g.on_prediction(pred, self)
        if track:
            pred = Prediction(pred.value.detach(), pred.kind, x_t, t, self.path)
        self.last = pred
        return pred

    def network(self, x_t: Tensor, t: Tensor, cond: Mapping[str, Any] | None = None) -> Tensor:
        """The model's own output at `(x_t, t)` with keywords `cond` (default: the solve's).

        No guidance, not counted in `nfe`: for hooks that need another model call (the
        unconditional branch of CFG, the particles of SMC).
        """
        out = self.field(x_t, t, **(self.cond if cond is None else cond))
        if not isinstance(out, Tensor) or out.shape != x_t.shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise InvalidArgumentError(
                f"the model returned {got} for an input of shape {tuple(x_t.shape)}; "
                f"a vector field "
                f"must return a {self.prediction} prediction of the same shape as x_t"
            )
        return out

    def reuse(self, x_t: Tensor, t: Tensor, out: Tensor) -> None:
        """Declare `out` the network's output at `(x_t, t)`: the next call with these very
        tensor objects returns it instead of running the network again (it still counts one
        evaluation). A hook that evaluated the model at the state it hands on (SMC) saves the
        solver that call."""
        self._known = (x_t, t, out)

    def _take_known(self, x_t: Tensor, t: Tensor) -> Tensor | None:
        known, self._known = self._known, None
        if known is not None and known[0] is x_t and known[1] is t:
            return known[2]
        return None

    @contextmanager
    def rows(self, index: Tensor, batch: int) -> Iterator[None]:
        """Within the block the network sees only rows `index (n,)` of a solve of `batch`
        samples: the condition's per-sample tensors (first dimension `batch`) are cut alike.
        For solvers that evaluate a subset of the samples (dopri5: those still running)."""
        full = self.cond
        if index.shape[0] != batch:
            self.cond = {k: take_rows(v, index, batch) for k, v in full.items()}
        try:
            yield
        finally:
            self.cond = full

    def memory(self, owner: object) -> dict[str, Any]:
        """Scratch space of `owner` (a guidance method) for the current solve."""
        return self._memory.setdefault(id(owner), {})

    def begin(self) -> None:
        """Forget the previous solve's scratch state (`last`, `step`, memory, reused output)."""
        self.step, self.last, self._known = None, None, None
        self._memory.clear()


def take_rows(value: Any, index: Tensor, batch: int) -> Any:
    """Rows `index` of a per-sample tensor (first dimension `batch`); anything else as it is."""
    if isinstance(value, Tensor) and value.ndim and value.shape[0] == batch:
        return value[index]
    return value
