"""Guidance hooks run inside the per-step region: none of them reads a device value on the host."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import flowforge
from flowforge import driver
from flowforge.graph import forbid_host_sync
from flowforge.guidance import (
    CFG,
    DDNM,
    DDS,
    DPS,
    SMC,
    FlowChef,
    PiGDM,
    PnPFlow,
    REDDiff,
    SelfGuidance,
)
from flowforge.testing import mixture_problem

F64 = torch.float64
PROBLEM = mixture_problem("dense", d=8)
M = PROBLEM.measurement
GUIDANCE = {
    "cfg": (CFG(scale=2.0, interval=(0.2, 0.8), rescale=0.5), "euler"),
    "self_guidance": (
        SelfGuidance(scale=5.0, observed=torch.zeros(1, 8, dtype=F64), mask=torch.arange(8) < 4),
        "euler",
    ),
    "dps": (DPS(measurement=M), "euler"),
    "pigdm": (PiGDM(measurement=M), "euler"),
    "ddnm": (DDNM(measurement=M), "ddim"),
    "dds": (DDS(measurement=M), "ddim"),
    "flowchef": (FlowChef(measurement=M), "euler"),
    "red_diff": (REDDiff(measurement=M), "euler"),
    "pnp_flow": (PnPFlow(measurement=M, samples=2, normalize=True), "euler"),
    "smc": (SMC(measurement=M, particles=4), "reverse_sde"),
    "smc_multinomial": (SMC(measurement=M, resampling="multinomial"), "euler"),
}


@pytest.fixture
def guarded_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = driver.run_steps

    def guarded(*args: Any, **kwargs: Any):
        calls.append(1)
        with forbid_host_sync():
            return original(*args, **kwargs)

    monkeypatch.setattr(driver, "run_steps", guarded)
    return calls


@pytest.mark.parametrize("name", list(GUIDANCE))
def test_guided_steps_never_sync(name, guarded_steps):
    guidance, solver = GUIDANCE[name]
    prior = PROBLEM.prior
    cond = {"label": torch.ones(8)} if name == "cfg" else None
    # Operators convert their constants on first use: do it before the guarded region.
    M.operator.forward(torch.zeros(1, 8, dtype=torch.float64))
    M.operator.vt(torch.zeros(1, 8, dtype=torch.float64))
    M.operator.singular_values(torch.zeros(1, 8, dtype=torch.float64))
    x = flowforge.sample(
        lambda x_t, t, **_: prior.predict(
            x_t, t, flowforge.registry.create("path", "cond_ot"), "velocity"
        ),
        torch.randn(8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64),
        path="cond_ot",
        prediction="velocity",
        solver=solver,
        nfe=6,
        guidance=guidance,
        generator=torch.Generator().manual_seed(1),
        cond=cond,
    )
    assert guarded_steps == [1] and torch.isfinite(x).all()
