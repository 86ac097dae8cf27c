"""Guidance without autograd runs inside a captured CUDA graph and replays like an eager solve.

GPU only (`gpu` marker): conditions, measurements and the hooks' per-solve memory are captured
once and replayed with new inputs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flowforge
from flowforge.guidance import CFG, DDNM, DDS, SMC, FlowChef, Measurement, PnPFlow, REDDiff
from flowforge.operators import Dense, Mask, gaussian_matrix, random_mask

CUDA = torch.cuda.is_available()


def gpu(test):
    """Mark a test as needing the GPU machine; skipped without CUDA."""
    return pytest.mark.gpu(pytest.mark.skipif(not CUDA, reason="needs a CUDA device")(test))


D = 8


class ConditionalNet(nn.Module):
    """A small velocity model with an optional class label (None: unconditional)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(D + 2, 64), nn.SiLU(), nn.Linear(64, D))
        self.embed = nn.Embedding(3, 1)

    def forward(self, x, t, label=None):
        code = torch.zeros_like(t) if label is None else self.embed(label)[:, 0]
        return self.body(torch.cat([x, t[:, None], code[:, None]], dim=1))


def _measurement(kind: str) -> Measurement:
    g = torch.Generator().manual_seed(0)
    if kind == "mask":
        op = Mask(random_mask((D,), 0.5, g), (D,), noise_std=0.1)
    else:
        op = Dense(gaussian_matrix(D // 2, D, g), (D,), noise_std=0.1)
    y = torch.randn(1, op.measurement_shape[0], generator=g).cuda()
    return Measurement(op, y)


CASES = {
    "ddnm": (lambda: DDNM(measurement=_measurement("dense")), "euler"),
    "dds": (lambda: DDS(measurement=_measurement("dense")), "euler"),
    "flowchef": (lambda: FlowChef(measurement=_measurement("mask")), "euler"),
    "red_diff": (lambda: REDDiff(measurement=_measurement("mask")), "euler"),
    "pnp_flow": (
        lambda: PnPFlow(measurement=_measurement("dense"), samples=2, normalize=True),
        "euler",
    ),
    "smc": (lambda: SMC(measurement=_measurement("dense"), particles=16), "reverse_sde"),
}


def _solve(net, guidance, solver, x, captured, seed=0, cond=None):
    return flowforge.sample(
        net,
        x,
        path="cond_ot",
        prediction="velocity",
        solver=solver,
        nfe=11 if solver == "heun" else 12,
        guidance=guidance,
        generator=torch.Generator("cuda").manual_seed(seed),
        cuda_graph=captured,
        cond=cond,
    )


@gpu
@pytest.mark.parametrize("name", sorted(CASES))
def test_captured_guidance_equals_eager(name):
    net = ConditionalNet().cuda()
    make, solver = CASES[name]
    guidance = make()
    for seed in (0, 1):
        x = torch.randn(64, D, generator=torch.Generator().manual_seed(seed)).cuda()
        eager = _solve(net, guidance, solver, x, False, seed)
        captured = _solve(net, guidance, solver, x, True, seed)
        torch.testing.assert_close(captured, eager, rtol=1e-4, atol=1e-4)


@gpu
def test_captured_cfg_replays_with_new_conditions():
    net = ConditionalNet().cuda()
    guidance = CFG(scale=3.0, interval=(0.1, 0.9), rescale=0.5)
    x = torch.randn(64, D, generator=torch.Generator().manual_seed(0)).cuda()
    for labels in (torch.zeros(64, dtype=torch.long), torch.arange(64) % 3):
        cond = {"label": labels.cuda()}
        eager = _solve(net, guidance, "heun", x, False, cond=cond)
        captured = _solve(net, guidance, "heun", x, True, cond=cond)
        torch.testing.assert_close(captured, eager, rtol=1e-4, atol=1e-4)
