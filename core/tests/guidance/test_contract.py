"""Every guidance method meets the guidance contract at a working setting and a neutral one."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from flowforge import registry
from flowforge.guidance import Measurement
from flowforge.operators import Mask
from flowforge.paths import CondOT
from flowforge.targets import GaussianMixture
from flowforge.testing import GuidanceContract

# Two classes of 2-D points; the unconditional model is their equal mixture.
CLASSES = [
    GaussianMixture(means=[[-2.0, 0.0]], stds=0.5),
    GaussianMixture(means=[[2.0, 1.0], [1.0, -1.0]], stds=0.3),
]
UNCONDITIONAL = GaussianMixture(
    means=[[-2.0, 0.0], [2.0, 1.0], [1.0, -1.0]], stds=[0.5, 0.3, 0.3], weights=[0.5, 0.25, 0.25]
)
PATH = CondOT()


def conditional_field(x, t, label=1):
    """`label` None: the unconditional model; an int: that class's exact velocity."""
    if label is None:
        return UNCONDITIONAL.predict(x, t, PATH, "velocity")
    return CLASSES[label].predict(x, t, PATH, "velocity")


def measurement() -> Measurement:
    """The first of two coordinates observed with noise std 0.1."""
    op = Mask(torch.tensor([True, False]), (2,), noise_std=0.1)
    return Measurement(op, torch.tensor([[1.5]]))


class TestCFG(GuidanceContract):
    name = "cfg"
    params: ClassVar = {
        "scale": 3.0,
        "interval": (0.1, 0.9),
        "rescale": 0.5,
        "null_cond": {"label": None},
    }
    neutral_params: ClassVar = {"scale": 1.0, "null_cond": {"label": None}}

    @pytest.fixture
    def field(self):
        return conditional_field


class TestClassifier(GuidanceContract):
    @pytest.fixture
    def component(self):
        target = torch.tensor([1.0, 0.5])
        return registry.create(
            "guidance",
            "classifier",
            scale=2.0,
            log_likelihood=lambda z, t: -(z - target.to(z)).square().sum(1),
        )

    @pytest.fixture
    def neutral(self, component):
        return type(component)(scale=0.0, log_likelihood=component.log_likelihood)


class TestSelfGuidance(GuidanceContract):
    @pytest.fixture
    def component(self):
        return registry.create(
            "guidance",
            "self_guidance",
            scale=10.0,
            loss="quantile",
            quantile=0.8,
            observed=torch.tensor([[1.5, 0.0]]),
            mask=torch.tensor([True, False]),
        )

    @pytest.fixture
    def neutral(self, component):
        return type(component)(scale=0.0, observed=component.observed, mask=component.mask)


POSTERIOR_CASES = [
    ("dps", {"scale": 0.5}, {"scale": 0.0}),
    ("dps", {"scale": 0.02, "weighting": "gaussian"}, {"scale": 0.0}),
    ("pigdm", {"scale": 1.0}, {"scale": 0.0}),
    ("ddnm", {}, None),
    ("ddnm", {"scaled": False}, None),
    ("dds", {"cg_iters": 3, "gamma": 0.5}, None),
    ("flowchef", {"scale": 0.5}, {"scale": 0.0}),
    ("red_diff", {"lam": 0.25, "lr": 0.1}, None),
    ("pnp_flow", {"lr": 0.5, "exponent": 1.0, "samples": 2}, None),
    ("pnp_flow", {"lr": 0.5, "normalize": True}, None),
    ("smc", {"ess_threshold": 1.0}, None),
    ("smc", {"particles": 2, "resampling": "multinomial"}, None),
]


@pytest.mark.parametrize("case", POSTERIOR_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
class TestPosteriorGuidance(GuidanceContract):
    """The posterior samplers on one noisy coordinate of a 2-D mixture."""

    @pytest.fixture
    def component(self, case):
        name, setting, _ = case
        return registry.create("guidance", name, measurement=measurement(), **setting)

    @pytest.fixture
    def neutral(self, case):
        name, _, neutral_setting = case
        if neutral_setting is None:
            pytest.skip(f"{name} has no setting that leaves the solve unchanged")
        return registry.create("guidance", name, measurement=measurement(), **neutral_setting)
