"""The guidance contract: hooks keep shapes and dtypes, and a neutral setting changes nothing.

Guidance depends on its setting (a conditional model, an operator and a measurement, ...), so
this contract can only check what holds for every method. A subclass provides:
- `component`: the guidance at a working setting (default: the registered `name` with `params`);
- `neutral`: the same guidance at a setting that must not steer, such as a guidance scale of 0
  (default: the registered `name` with `neutral_params`; skipped when that is None);
- `field`: the model the guidance steers, `(x_t, t) -> prediction` for `path` and `prediction`
  on states `(B, *event_shape)` (default: the exact velocity of a 2-D Gaussian mixture).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import pytest
import torch
from torch import Tensor

import flowforge
from flowforge import registry
from flowforge.field import Dynamics, Prediction
from flowforge.guidance import Guidance
from flowforge.solvers.base import Discrete
from flowforge.targets import GaussianMixture
from flowforge.testing.contracts.base import Contract
from flowforge.testing.require import require

MIXTURE = GaussianMixture(means=[[-2.0, 0.0], [2.0, 1.0]], stds=[0.5, 0.3], weights=[0.3, 0.7])


def _grad_mode(guidance: Guidance) -> AbstractContextManager:
    """Gradients on exactly when the guidance asks for them, as in the driver."""
    return torch.enable_grad() if guidance.requires_grad else torch.no_grad()


class GuidanceContract(Contract):
    """Contract for `flowforge.guidance.Guidance` (see the module docstring for what to provide).

    Checks: `on_prediction` returns a `Prediction` of the same shape and dtype at the same
    `(x_t, t)`; `after_step` and `on_population` keep shapes and dtypes; a guided solve is finite;
    the neutral setting leaves every hook's output and a whole solve unchanged.

        class TestCFG(GuidanceContract):
            name = "cfg"
            params = {"scale": 3.0}
            neutral_params = {"scale": 1.0}

            @pytest.fixture
            def field(self):
                return my_conditional_toy_model
    """

    kind = "guidance"
    neutral_params: ClassVar[Mapping[str, Any] | None] = None
    path: ClassVar[str] = "cond_ot"
    prediction: ClassVar[str] = "velocity"
    event_shape: ClassVar[tuple[int, ...]] = (2,)
    batch = 4

    @pytest.fixture(autouse=True)
    def _continuous_only(self, component_name: str | None) -> None:
        """Discrete guidance (`Discrete` marker) steers CTMC samplers, tested in its own suite."""
        if component_name is None:
            return
        factory = registry.get(self.kind, component_name).factory
        if isinstance(factory, type) and issubclass(factory, Discrete):
            pytest.skip(f"{component_name} steers discrete (CTMC) samplers")

    @pytest.fixture
    def field(self) -> Callable[..., Tensor]:
        if self.event_shape != (2,):
            pytest.fail(
                f"{type(self).__name__}: override the `field` fixture for {self.event_shape} states"
            )
        return MIXTURE.field(registry.create("path", self.path), self.prediction)

    @pytest.fixture
    def neutral(self, component_name: str | None) -> Guidance:
        if component_name is None or self.neutral_params is None:
            pytest.skip(f"{type(self).__name__} sets no `neutral_params` (or `neutral` fixture)")
        return registry.create(self.kind, component_name, **self.neutral_params)

    def _point(self, dtype=torch.float32) -> tuple[Tensor, Tensor]:
        gen = torch.Generator().manual_seed(0)
        x_t = torch.randn(self.batch, *self.event_shape, generator=gen, dtype=dtype)
        return x_t, torch.linspace(0.2, 0.8, self.batch, dtype=dtype)

    def _dynamics(self, field, guidance: list[Guidance]) -> Dynamics:
        return Dynamics(field, registry.create("path", self.path), self.prediction, guidance)

    def _solve(self, field, guidance: list[Guidance]) -> Tensor:
        x, _ = self._point(torch.float64)
        return flowforge.sample(
            field,
            x,
            path=self.path,
            prediction=self.prediction,
            solver="euler",
            nfe=8,
            guidance=guidance,
            generator=torch.Generator().manual_seed(0),
        )

    def test_on_prediction_keeps_shape_and_dtype(self, component: Guidance, field):
        x_t, t = self._point()
        with _grad_mode(component):
            pred = self._dynamics(field, [component])(x_t, t)
        require(isinstance(pred, Prediction), f"on_prediction returned {type(pred).__name__}")
        require(
            pred.value.shape == x_t.shape and pred.value.dtype == x_t.dtype,
            f"on_prediction turned {tuple(x_t.shape)} {x_t.dtype} into "
            f"{tuple(pred.value.shape)} {pred.value.dtype}",
        )
        require(torch.equal(pred.x_t, x_t) and torch.equal(pred.t, t), "the point (x_t, t) changed")

    def test_after_step_keeps_shape_and_dtype(self, component: Guidance, field):
        x, t = self._point()
        with _grad_mode(component):
            out = component.after_step(x, t, self._dynamics(field, [component]))
        require(
            out.shape == x.shape and out.dtype == x.dtype,
            f"after_step turned {tuple(x.shape)} {x.dtype} into {tuple(out.shape)} {out.dtype}",
        )

    def test_on_population_keeps_shapes(self, component: Guidance, field):
        x, t = self._point()
        log_w = torch.zeros(self.batch)
        with _grad_mode(component):
            out, out_w = component.on_population(x, log_w, t, self._dynamics(field, [component]))
        require(
            out.shape == x.shape and out.dtype == x.dtype, "on_population changed the particles"
        )
        require(
            out_w.shape == log_w.shape and out_w.dtype == log_w.dtype, "log_weights changed shape"
        )

    def test_guided_solve_is_finite(self, component: Guidance, field):
        out = self._solve(field, [component])
        require(bool(torch.isfinite(out).all()), "expected bool(torch.isfinite(out).all())")

    def test_neutral_setting_changes_nothing(self, neutral: Guidance, field):
        x, t = self._point(torch.float64)
        with _grad_mode(neutral):
            plain = self._dynamics(field, [])(x, t).value
            pred = self._dynamics(field, [neutral])(x, t)
            stepped = neutral.after_step(x, t, self._dynamics(field, [neutral]))
        torch.testing.assert_close(pred.as_(self.prediction), plain, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(stepped, x, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(
            self._solve(field, [neutral]), self._solve(field, []), rtol=1e-10, atol=1e-10
        )
