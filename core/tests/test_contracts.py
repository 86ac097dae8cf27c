"""Every registered component meets its contract, and each contract catches a broken component.

The registered-component classes parametrize over `registry.names(kind)`, so a new path, solver,
operator, guidance or model (from core or any installed plugin) is tested by registering it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

import flowforge
from flowforge import registry
from flowforge.errors import InvalidArgumentError, SpecError
from flowforge.guidance import Guidance
from flowforge.operators import Identity
from flowforge.paths import CondOT
from flowforge.solvers import Euler
from flowforge.targets import GaussianMixture
from flowforge.testing import (
    FakeEntryPoint,
    GuidanceContract,
    ModelFactoryContract,
    OperatorContract,
    PathContract,
    SolverContract,
    plugin_module,
    registered,
)


@pytest.mark.parametrize("component_name", registered("path"))
class TestRegisteredPaths(PathContract):
    """Core's and installed plugins' paths."""


@pytest.mark.parametrize("component_name", registered("solver"))
class TestRegisteredSolvers(SolverContract):
    """Core's and installed plugins' solvers."""


@pytest.mark.parametrize("component_name", registered("operator"))
class TestRegisteredOperators(OperatorContract):
    """Core's and installed plugins' operators, with their default parameters."""


@pytest.mark.parametrize("component_name", registered("guidance"))
class TestRegisteredGuidance(GuidanceContract):
    """Generic checks of registered guidance at default parameters; plugins test the rest."""

    @pytest.fixture
    def component(self, component_name):
        try:
            guidance = registry.create(self.kind, component_name)
        except SpecError as err:
            pytest.skip(f"guidance {component_name!r} has required parameters: {err}")
        if guidance.needs:
            pytest.skip(
                f"guidance {component_name!r} needs {', '.join(guidance.needs)} "
                "(core/tests/guidance tests it with them)"
            )
        return guidance


@pytest.mark.parametrize("component_name", registered("model"))
class TestRegisteredModels(ModelFactoryContract):
    """Every registered model factory, built from its default parameters."""


class TestBaseGuidance(GuidanceContract):
    """The base class changes nothing, so it is both the component and its neutral setting."""

    @pytest.fixture
    def component(self) -> Guidance:
        return Guidance()

    @pytest.fixture
    def neutral(self) -> Guidance:
        return Guidance()


class Toy(nn.Module):
    """A per-sample MLP vector field on 2-D points, as a model plugin would register it."""

    def __init__(self, params: ToyParams, data_shape: tuple[int, ...] = (2,)):
        super().__init__()
        if data_shape != (2,):
            raise InvalidArgumentError(f"toy models 2-D points, not {data_shape}")
        self.net = nn.Sequential(nn.Linear(3, params.width), nn.Tanh(), nn.Linear(params.width, 2))

    def forward(self, x_t, t):
        return self.net(torch.cat([x_t, t[:, None]], dim=1))


@dataclass(frozen=True)
class ToyParams:
    width: int = 8


@flowforge.hookimpl
def _register_toy(register):
    register("toy", Toy, params=ToyParams)


class TestToyModelFactory(ModelFactoryContract):
    """The model contract on a model registered through a (fake) plugin."""

    name = "toy"
    data_shape = (2,)

    @pytest.fixture(autouse=True)
    def _toy_registry(self):
        plugin = plugin_module("toy_plugin", register_models=_register_toy)
        reg = registry.load(allowed=None, entry_points=[FakeEntryPoint("toy", plugin)])
        with registry.using(reg):
            yield


# The contracts must be able to fail: each broken component below violates one property.


class WrongDerivative(CondOT):
    def d_sigma(self, t):
        return torch.ones_like(t)


class DecreasingLogSNR(CondOT):
    def log_snr(self, t):
        return -super().log_snr(t)


class RecommendsAuto(CondOT):
    recommended_grid = "auto"  # `auto` stands for this very field: no grid to fall back on


@dataclass(frozen=True)
class HiddenCalls(Euler):
    """Calls the model once more per step behind the driver's back."""

    def rk_step(self, f, x, t0, t1, *coefficients):
        f.field(x, t0)
        return super().rk_step(f, x, t0, t1, *coefficients)


@dataclass(frozen=True)
class OverclaimedOrder(Euler):
    order = 2


class WrongAdjoint(Identity):
    def adjoint(self, y):
        return 2.0 * y


class WrongPinv(Identity):
    def pinv(self, y):
        return 0.5 * y


class ChangesDtype(Guidance):
    def after_step(self, x, t, dynamics):
        return x.double()


class Shifts(Guidance):
    def on_prediction(self, pred, dynamics):
        return pred.with_value(pred.value + 1.0)


class Noisy(Toy):
    def forward(self, x_t, t):
        return super().forward(x_t, t) + torch.randn_like(x_t)


class MixesBatch(Toy):
    def forward(self, x_t, t):
        return super().forward(x_t - x_t.mean(0), t)


FIELD = GaussianMixture(means=[[-1.0, 0.0], [1.0, 0.5]], stds=0.5).field(CondOT())
INPUTS = (
    torch.randn(3, 2, generator=torch.Generator().manual_seed(0)),
    torch.linspace(0.1, 0.9, 3),
)
BROKEN = {
    "wrong_derivative": (
        PathContract().test_derivatives_match_finite_differences,
        {"affine": WrongDerivative()},
    ),
    "decreasing_log_snr": (PathContract().test_log_snr_increasing, {"affine": DecreasingLogSNR()}),
    "recommends_auto": (
        PathContract().test_recommended_grid_is_a_named_grid,
        {"component": RecommendsAuto()},
    ),
    "hidden_calls": (
        SolverContract().test_exact_nfe,
        {"fixed_nfe_solver": HiddenCalls(), "generator": torch.Generator()},
    ),
    "overclaimed_order": (
        SolverContract().test_converges_at_its_order,
        {"fixed_nfe_solver": OverclaimedOrder()},
    ),
    "wrong_adjoint": (OperatorContract().test_adjoint, {"component": WrongAdjoint()}),
    "wrong_pinv": (OperatorContract().test_pinv, {"component": WrongPinv()}),
    "changes_dtype": (
        GuidanceContract().test_after_step_keeps_shape_and_dtype,
        {"component": ChangesDtype(), "field": FIELD},
    ),
    "not_neutral": (
        GuidanceContract().test_neutral_setting_changes_nothing,
        {"neutral": Shifts(), "field": FIELD},
    ),
    "noisy_model": (
        ModelFactoryContract().test_deterministic_in_eval_mode,
        {"network": Noisy(ToyParams()), "inputs": INPUTS},
    ),
    "mixes_batch": (
        ModelFactoryContract().test_per_sample_times,
        {"network": MixesBatch(ToyParams()), "inputs": INPUTS},
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_contract_catches_broken_component(case):
    call, kwargs = BROKEN[case]
    with pytest.raises(AssertionError):
        call(**kwargs)


def test_registered_without_components_skips_with_reason():
    with registry.using(registry.Registry()):
        (param,) = registered("model")
    assert param.values == (None,)
    assert "no model is registered" in param.marks[0].kwargs["reason"]
