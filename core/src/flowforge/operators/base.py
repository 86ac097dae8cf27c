"""Forward operators for inverse problems `y = A(x) + noise`."""

from __future__ import annotations

import abc

from torch import Tensor


class Operator(abc.ABC):
    """A linear measurement operator: `forward` (A), `adjoint` (A^T), optional pseudo-inverse.

    `x (B, ...)` lives in signal space, `y (B, ...)` in measurement space; `noise_std` is the
    standard deviation of additive Gaussian measurement noise.
    """

    noise_std: float = 0.0

    @abc.abstractmethod
    def forward(self, x: Tensor) -> Tensor:
        """`A x`."""

    @abc.abstractmethod
    def adjoint(self, y: Tensor) -> Tensor:
        """`A^T y`, so that `<A x, y> = <x, A^T y>`."""

    @property
    def has_pinv(self) -> bool:
        return type(self).pinv is not Operator.pinv

    def pinv(self, y: Tensor) -> Tensor:
        """The Moore-Penrose pseudo-inverse `A^+ y`, where the operator provides one."""
        raise NotImplementedError(f"{type(self).__name__} has no pseudo-inverse")

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)
