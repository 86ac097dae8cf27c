"""The identity operator: denoising problems `y = x + noise`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field
from torch import Tensor

from flowforge.operators.base import Operator


@dataclass(frozen=True)
class Identity(Operator):
    """`A = I`; its own adjoint and pseudo-inverse."""

    noise_std: Annotated[float, Field(ge=0, description="measurement noise std")] = 0.0

    def forward(self, x: Tensor) -> Tensor:
        return x

    def adjoint(self, y: Tensor) -> Tensor:
        return y

    def pinv(self, y: Tensor) -> Tensor:
        return y
