"""The identity operator: denoising problems `y = x + noise`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field
from torch import Tensor

from flowforge.operators.svd import SVDOperator


@dataclass(frozen=True)
class Identity(SVDOperator):
    """`A = I` on signals of any shape: its own adjoint and pseudo-inverse, singular values 1."""

    noise_std: Annotated[float, Field(ge=0, description="measurement noise std")] = 0.0

    def forward(self, x: Tensor) -> Tensor:
        return x

    def adjoint(self, y: Tensor) -> Tensor:
        return y

    def pinv(self, y: Tensor) -> Tensor:
        return y

    def vt(self, x: Tensor) -> Tensor:
        return x

    def v(self, s: Tensor) -> Tensor:
        return s

    def singular_values(self, like: Tensor) -> Tensor:
        return like.new_ones(())
