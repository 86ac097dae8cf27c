"""The operator contract: linearity, adjointness and the pseudo-inverse identities, in float64."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor

from flowforge.operators import Operator
from flowforge.testing.contracts.base import Contract

F64 = torch.float64


def inner(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample inner product `(B,)` of two `(B, ...)` tensors."""
    return (a * b).flatten(1).sum(1)


class OperatorContract(Contract):
    """Contract for `flowforge.operators.Operator` on signals `(B, *signal_shape)` in float64.

    Checks: `A` is linear and `op(x) == op.forward(x)`; `<A x, y> = <x, A^T y>` to 1e-10
    relative; `A^T y` has the signal's shape; with a pseudo-inverse, the Moore-Penrose identities
    `A A^+ A x = A x` and `A^+ A A^+ y = A^+ y`; `noise_std >= 0`. Operators must follow the
    input's dtype (keep float32 buffers and cast them to `x.dtype`). Set `signal_shape` to a
    shape your operator accepts.

        class TestBlur(OperatorContract):
            name = "gaussian_blur"
            signal_shape = (3, 16, 16)
    """

    kind = "operator"
    signal_shape: ClassVar[tuple[int, ...]] = (3, 8, 8)
    batch = 2

    def _signals(self, op: Operator, seed: int = 0) -> tuple[Tensor, Tensor]:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(self.batch, *self.signal_shape, dtype=F64, generator=gen)
        y_shape = op.forward(x).shape
        return x, torch.randn(y_shape, dtype=F64, generator=gen)

    def test_linear(self, component: Operator):
        x, _ = self._signals(component, 0)
        z, _ = self._signals(component, 1)
        combined = component.forward(2.5 * x - 0.5 * z)
        expected = 2.5 * component.forward(x) - 0.5 * component.forward(z)
        torch.testing.assert_close(combined, expected, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(component(x), component.forward(x), rtol=0, atol=0)

    def test_adjoint(self, component: Operator):
        x, y = self._signals(component)
        at_y = component.adjoint(y)
        assert at_y.shape == x.shape, f"A^T y has shape {tuple(at_y.shape)}, x has {tuple(x.shape)}"
        assert component.forward(x).shape[0] == x.shape[0], "A x must keep the batch dimension"
        lhs, rhs = inner(component.forward(x), y), inner(x, at_y)
        torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10 * float(rhs.abs().max()))

    def test_pinv(self, component: Operator):
        if not component.has_pinv:
            pytest.skip(f"{type(component).__name__} has no pseudo-inverse")
        x, y = self._signals(component)
        a_x = component.forward(x)
        torch.testing.assert_close(
            component.forward(component.pinv(a_x)), a_x, rtol=1e-10, atol=1e-10
        )
        p_y = component.pinv(y)
        assert p_y.shape == x.shape, f"A^+ y has shape {tuple(p_y.shape)}, x has {tuple(x.shape)}"
        torch.testing.assert_close(
            component.pinv(component.forward(p_y)), p_y, rtol=1e-10, atol=1e-10
        )

    def test_noise_std_non_negative(self, component: Operator):
        assert float(component.noise_std) >= 0.0
