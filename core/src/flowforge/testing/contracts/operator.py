"""The operator contract: linearity, adjointness, the pseudo-inverse and the SVD, in float64."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest
import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.graph import forbid_host_sync
from flowforge.operators import Operator, SVDOperator
from flowforge.registry import Component
from flowforge.testing.contracts.base import Contract
from flowforge.testing.require import require

F64 = torch.float64
TOL = {"rtol": 1e-10, "atol": 1e-10}


def inner(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample inner product `(B,)` of two `(B, ...)` tensors."""
    return (a * b).flatten(1).sum(1)


def norm(a: Tensor) -> Tensor:
    """Per-sample Euclidean norm `(B,)` of a `(B, ...)` tensor."""
    return a.flatten(1).norm(dim=1)


class OperatorContract(Contract):
    """Contract for `flowforge.operators.Operator` on signals `(B, *signal_shape)` in float64.

    Registered operators are built as a spec builds them, `factory(params,
    data_shape=signal_shape)`. Checks: `A` is linear and `op(x) == op.forward(x)`; `<A x, y> =
    <x, A^T y>` to 1e-10 relative; shapes match `signal_shape`/`measurement_shape` where the
    operator declares them, and a wrong signal shape raises `InvalidArgumentError`; with a
    pseudo-inverse, the four Moore-Penrose identities (`A A^+ A = A`, `A^+ A A^+ = A^+`, both
    products symmetric) and `A project_nullspace(x) = 0`; with an SVD, `V` is orthogonal,
    `A^T A = V diag(s)^2 V^T`, `s >= 0`, and `gram_solve` inverts `a A^T A + b I`; float32 inputs
    give float32 outputs; no host synchronisation; `simulate` without noise is `A x`. Set
    `signal_shape` to a shape your operator accepts.

        class TestBlur(OperatorContract):
            name = "gaussian_blur"
            signal_shape = (3, 16, 16)
    """

    kind = "operator"
    signal_shape: ClassVar[tuple[int, ...]] = (3, 8, 8)
    batch = 2

    @pytest.fixture
    def component(self, registered_component: Component) -> Operator:
        return registered_component.build(dict(self.params), data_shape=self.signal_shape)

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
        torch.testing.assert_close(combined, expected, **TOL)
        torch.testing.assert_close(component(x), component.forward(x), rtol=0, atol=0)

    def test_adjoint(self, component: Operator):
        x, y = self._signals(component)
        at_y = component.adjoint(y)
        require(
            at_y.shape == x.shape, f"A^T y has shape {tuple(at_y.shape)}, x has {tuple(x.shape)}"
        )
        require(component.forward(x).shape[0] == x.shape[0], "A x must keep the batch dimension")
        lhs, rhs = inner(component.forward(x), y), inner(x, at_y)
        torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10 * float(rhs.abs().max()))

    def test_declared_shapes(self, component: Operator):
        x, y = self._signals(component)
        if component.signal_shape is not None:
            require(
                component.signal_shape == tuple(self.signal_shape),
                "expected component.signal_shape == tuple(self.signal_shape)",
            )
            with pytest.raises(InvalidArgumentError):
                component.forward(x.reshape(self.batch, -1)[:, :-1])
        if component.measurement_shape is not None:
            require(
                tuple(y.shape[1:]) == component.measurement_shape,
                "expected tuple(y.shape[1:]) == component.measurement_shape",
            )

    def test_pinv(self, component: Operator):
        if not component.has_pinv:
            pytest.skip(f"{type(component).__name__} has no pseudo-inverse")
        x, y = self._signals(component)
        a_x = component.forward(x)
        torch.testing.assert_close(component.forward(component.pinv(a_x)), a_x, **TOL)
        p_y = component.pinv(y)
        require(p_y.shape == x.shape, f"A^+ y has shape {tuple(p_y.shape)}, x has {tuple(x.shape)}")
        scale = 1 + float(p_y.abs().max())  # A^+ may be large (blur): compare relative to it
        torch.testing.assert_close(
            component.pinv(component.forward(p_y)), p_y, rtol=1e-10, atol=1e-10 * scale
        )
        # (A^+ A) and (A A^+) are orthogonal projections, hence symmetric; an inner product's
        # rounding scales with the product of the norms (Cauchy-Schwarz), large where A^+ is
        z, w = self._signals(component, 1)
        left = component.pinv(a_x)
        torch.testing.assert_close(
            inner(left, z),
            inner(x, component.pinv(component.forward(z))),
            rtol=TOL["rtol"],
            atol=TOL["atol"] * (1 + float((norm(left) * norm(z)).max())),
        )
        right = component.forward(p_y)
        torch.testing.assert_close(
            inner(right, w),
            inner(y, component.forward(component.pinv(w))),
            rtol=TOL["rtol"],
            atol=TOL["atol"] * (1 + float((norm(right) * norm(w)).max())),
        )
        null = component.project_nullspace(x)
        require(
            float(component.forward(null).abs().max()) < 1e-10 * (1 + float(a_x.abs().max())),
            "the null-space projection is not in the null space: A (x - A^+ A x) != 0",
        )

    def test_svd(self, component: Operator):
        if not isinstance(component, SVDOperator):
            pytest.skip(f"{type(component).__name__} has no SVD")
        x, _ = self._signals(component)
        s_x = component.vt(x)
        s = component.singular_values(s_x)
        require(s.dtype == F64 and bool((s >= 0).all()), "singular values must be >= 0")
        torch.testing.assert_close(component.v(s_x), x, **TOL)
        torch.testing.assert_close(s_x.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1), **TOL)
        gram = component.adjoint(component.forward(x))
        torch.testing.assert_close(component.v(s.square() * s_x), gram, **TOL)
        shift = torch.tensor([0.3, 2.0], dtype=F64)[: self.batch]
        solved = component.gram_solve(x, shift=shift, scale=0.7)
        lhs = 0.7 * component.adjoint(component.forward(solved))
        lhs = lhs + shift.reshape(-1, *[1] * (x.ndim - 1)) * solved
        torch.testing.assert_close(lhs, x, **TOL)

    def test_follows_float32(self, component: Operator):
        x, y = self._signals(component)
        for call, arg in ((component.forward, x), (component.adjoint, y)):
            out = call(arg.float())
            require(out.dtype == torch.float32, f"{call.__name__} returned {out.dtype}")
            scale = float(call(arg).abs().max()) + 1
            torch.testing.assert_close(out.double(), call(arg), rtol=0, atol=1e-5 * scale)
        if component.has_pinv:  # dtype only: A^+ amplifies rounding by the condition number
            require(
                component.pinv(y.float()).dtype == torch.float32,
                "expected component.pinv(y.float()).dtype == torch.float32",
            )

    def test_no_host_sync(self, component: Operator):
        x, y = self._signals(component)
        component.adjoint(component.forward(x))  # converts constants once, outside the check
        if component.has_pinv:
            component.project_nullspace(x)
        if isinstance(component, SVDOperator):
            component.gram_solve(x, 1.0)
        with forbid_host_sync():
            component.adjoint(component.forward(x))
            if component.has_pinv:
                component.project_nullspace(x)
                component.pinv(y)
            if isinstance(component, SVDOperator):
                component.gram_solve(x, 1.0)

    def test_noise_model(self, component: Operator):
        require(float(component.noise_std) >= 0.0, "expected float(component.noise_std) >= 0.0")
        x, _ = self._signals(component)
        if component.noise_std == 0:
            torch.testing.assert_close(component.simulate(x), component.forward(x), rtol=0, atol=0)
            return
        gen = lambda: torch.Generator().manual_seed(3)
        y = component.simulate(x, gen())
        torch.testing.assert_close(y, component.simulate(x, gen()), rtol=0, atol=0)
        res = (y - component.forward(x)).flatten()
        require(
            abs(float(res.std()) / component.noise_std - 1) < 5 / math.sqrt(res.numel()),
            "expected abs(float(res.std()) / component.noise_std - 1) < 5 / math.sqrt(res.numel())",
        )
