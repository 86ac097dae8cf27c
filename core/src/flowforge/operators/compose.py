"""Composition of operators: `A = A_k ... A_2 A_1` (blur then downsample, mask after FFT, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field, field_validator
from torch import Tensor

from flowforge import registry
from flowforge.errors import InvalidArgumentError, SpecError
from flowforge.operators.base import Operator, Shape, check_noise_std, require_shape
from flowforge.spec.models import ComponentRef


class Compose(Operator):
    """The operators applied in the order given: `Compose(a1, a2)(x) = a2(a1(x))`.

    Forward and adjoint chain their parts (`A^T = A_1^T ... A_k^T`); there is no pseudo-inverse
    or SVD in general. The noise model belongs to the composition: its parts must be noiseless.

    >>> op = Compose(Blur(gaussian_kernel(1.0), (3, 64, 64)), Downsample(4, (3, 64, 64)))
    """

    def __init__(self, *operators: Operator, noise_std: float = 0.0):
        if not operators:
            raise InvalidArgumentError("Compose needs at least one operator")
        shape: Shape | None = operators[0].signal_shape
        for i, op in enumerate(operators):
            if op.noise_std != 0:
                raise InvalidArgumentError(
                    f"operators[{i}] ({type(op).__name__}) has noise_std {op.noise_std}; build "
                    "the parts noiseless and give noise_std to the composition"
                )
            if shape is not None and op.signal_shape is not None and op.signal_shape != shape:
                raise InvalidArgumentError(
                    f"operators[{i}] ({type(op).__name__}) takes signals {op.signal_shape} but "
                    f"the operator before it outputs {shape}; build it for data_shape={shape}"
                )
            shape = op.measurement_shape if op.measurement_shape is not None else shape
        self.operators = tuple(operators)
        self.signal_shape = operators[0].signal_shape
        self.measurement_shape = shape
        self.noise_std = check_noise_std(noise_std)

    def forward(self, x: Tensor) -> Tensor:
        for op in self.operators:
            x = op.forward(x)
        return x

    def adjoint(self, y: Tensor) -> Tensor:
        for op in reversed(self.operators):
            y = op.adjoint(y)
        return y


def _default_parts() -> list[ComponentRef]:
    return [ComponentRef(name="blur"), ComponentRef(name="downsample")]


@dataclass(frozen=True)
class ComposeParams:
    """Parameters of the registered `compose` operator: registered operators, applied in order."""

    operators: Annotated[
        list[ComponentRef],
        Field(min_length=1, description="operators applied in order, each {name, params}"),
    ] = field(default_factory=_default_parts)
    noise_std: Annotated[float, Field(ge=0, description="measurement noise std")] = 0.0

    @field_validator("operators")
    @classmethod
    def _registered(cls, parts: list[ComponentRef]) -> list[ComponentRef]:
        for i, part in enumerate(parts):
            try:
                registry.get("operator", part.name).validate(part.params, f"operators[{i}]")
            except SpecError as err:
                raise ValueError(str(err)) from None
        return parts


def build_compose(params: ComposeParams, *, data_shape: Sequence[int] | None = None) -> Compose:
    """Factory of the registered `compose` operator for signals of shape `data_shape`."""
    shape = require_shape(data_shape, "compose")
    parts = []
    for part in params.operators:
        op = registry.get("operator", part.name).build(part.params, data_shape=shape)
        parts.append(op)
        shape = op.measurement_shape if op.measurement_shape is not None else shape
    return Compose(*parts, noise_std=params.noise_std)
