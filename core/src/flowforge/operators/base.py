"""Forward operators for inverse problems `y = A(x) + noise`, with a Gaussian noise model."""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError

Shape = tuple[int, ...]


class Operator(abc.ABC):
    """A linear measurement operator `A` with additive Gaussian noise of std `noise_std`.

    `x (B, *signal_shape)` lives in signal space, `y (B, *measurement_shape)` in measurement
    space; both shapes are None for operators that accept any shape (`Identity`). Subclasses give
    `forward` (A) and `adjoint` (A^T, for the real inner product), optionally `pinv` (A^+);
    `flowforge.operators.SVDOperator` adds the singular value decomposition. Operators follow the
    input's device and dtype: their constant tensors are kept once and converted on first use
    per (device, dtype) and cached, so repeated calls copy nothing and never sync with the host.

        op = registry.get("operator", "blur").build({"std": 2.0}, data_shape=(3, 64, 64))
        y = op.simulate(x, generator)               # A x + noise_std * N(0, I)
        op.log_likelihood(x, y)                     # (B,)
    """

    noise_std: float = 0.0
    signal_shape: Shape | None = None
    measurement_shape: Shape | None = None

    @abc.abstractmethod
    def forward(self, x: Tensor) -> Tensor:
        """`A x`: `(B, *signal_shape)` -> `(B, *measurement_shape)`."""

    @abc.abstractmethod
    def adjoint(self, y: Tensor) -> Tensor:
        """`A^T y`, so that `<A x, y> = <x, A^T y>`."""

    @property
    def has_pinv(self) -> bool:
        return type(self).pinv is not Operator.pinv

    def pinv(self, y: Tensor) -> Tensor:
        """The Moore-Penrose pseudo-inverse `A^+ y`, where the operator provides one."""
        raise NotImplementedError(f"{type(self).__name__} has no pseudo-inverse")

    def project_nullspace(self, x: Tensor) -> Tensor:
        """`x - A^+ A x`: the part of `x` that `A` does not see (DDNM's null-space term)."""
        return x - self.pinv(self.forward(x))

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    # The Gaussian noise model y = A x + noise_std * eps, eps ~ N(0, I).

    def simulate(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A measurement `A x + noise_std * eps` per signal; `generator` lives on x's device."""
        y = self.forward(x)
        if self.noise_std == 0:
            return y
        eps = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        return y + self.noise_std * eps

    def log_likelihood(self, x: Tensor, y: Tensor) -> Tensor:
        """`log N(y; A x, noise_std^2 I)` per sample, `(B,)`; needs `noise_std > 0`."""
        if self.noise_std == 0:
            raise InvalidArgumentError(
                f"{type(self).__name__}.log_likelihood: noise_std is 0, so y = A x has no "
                "density; build the operator with noise_std > 0, or use the residual "
                "||y - A x|| (or pinv / project_nullspace) for hard data consistency"
            )
        res = (y - self.forward(x)).flatten(1)
        var = self.noise_std**2
        return -0.5 * (res.square().sum(1) / var + res.shape[1] * math.log(2 * math.pi * var))

    def matrix(
        self,
        signal_shape: Sequence[int] | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
    ) -> Tensor:
        """The matrix `(m, n)` of `A` on flattened signals, by applying it to the identity.

        For small signals only (it costs n forward applications and n^2 memory): exact
        references and tests. `signal_shape` defaults to the operator's own.
        """
        shape = tuple(signal_shape) if signal_shape is not None else self.signal_shape
        if shape is None:
            raise InvalidArgumentError(
                f"{type(self).__name__}.matrix: signal_shape is required for an operator that "
                "accepts any shape; pass the shape of one signal, e.g. matrix((8,))"
            )
        n = math.prod(shape)
        eye = torch.eye(n, dtype=dtype, device=device).reshape(n, *shape)
        return self.forward(eye).reshape(n, -1).T

    # Helpers for subclasses.

    def _on(self, name: str, like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """The constant tensor attribute `name` on `like`'s device, in `dtype` (default: like's).

        Converted once per (device, dtype) and cached: the steady state copies nothing.
        """
        dtype = like.dtype if dtype is None else dtype
        cache = self.__dict__.setdefault("_converted", {})
        key = (name, like.device, dtype)
        if key not in cache:
            cache[key] = getattr(self, name).to(device=like.device, dtype=dtype)
        return cache[key]

    def _check(self, x: Tensor, expected: Shape | None, what: str) -> None:
        """Raise unless `x` is a batch `(B, *expected)` (None: any shape)."""
        if expected is not None and tuple(x.shape[1:]) != expected:
            dims = ", ".join(map(str, expected))
            raise InvalidArgumentError(
                f"{type(self).__name__}: {what} must have shape (B, {dims}), got "
                f"{tuple(x.shape)}; pass a batch of such tensors, or build the operator for your "
                "signals (data_shape=...)"
            )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(signal_shape={self.signal_shape}, "
            f"measurement_shape={self.measurement_shape}, noise_std={self.noise_std})"
        )


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype matching a real floating dtype (float32 -> complex64)."""
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def check_noise_std(noise_std: float) -> float:
    """`noise_std` as a float, or `InvalidArgumentError` if it is negative or not finite."""
    value = float(noise_std)
    if not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
    return value


def require_shape(data_shape: Sequence[int] | None, name: str) -> Shape:
    """The signal shape a factory was given, or an error saying how to give it."""
    if data_shape is None:
        raise InvalidArgumentError(
            f"operator {name!r} needs the shape of one signal: build it with "
            f"registry.get('operator', {name!r}).build(params, data_shape=(C, H, W))"
        )
    shape = tuple(int(s) for s in data_shape)
    if not shape or min(shape) < 1:
        raise InvalidArgumentError(f"data_shape must be positive sizes, got {tuple(data_shape)}")
    return shape
