"""GPU sampling: `sample(..., cuda_graph=True)`, mixed precision (`solver_dtype`), graph cache.

CPU tests: the errors for what cannot be captured, the mixed-precision contract and accuracy,
the cache and the state walking that capture relies on. `gpu` tests (run on the GPU machine):
the captured solve equals the eager one for every registered fixed-step solver, later calls
replay without recapturing, and neither the eager loop nor the replay synchronises with the
host (`torch.cuda.set_sync_debug_mode("error")`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

import flowforge
from flowforge import driver, graph, registry
from flowforge.errors import InvalidArgumentError, NumericalError
from flowforge.graph import GraphCache, flatten, map_tensors
from flowforge.guidance import Guidance
from flowforge.paths import CondOT
from flowforge.solvers import SDE, Adaptive, Discrete, Euler
from flowforge.targets import GaussianMixture
from flowforge.testing.contracts.solver import valid_nfes

GM = GaussianMixture(means=[[-1.0, 0.5], [1.0, -0.5]], stds=[0.5, 0.4], weights=[0.4, 0.6])
CUDA = torch.cuda.is_available()


def gpu(test):
    """Mark a test as needing a CUDA device (skipped without one, deselected by `make test`)."""
    return pytest.mark.gpu(pytest.mark.skipif(not CUDA, reason="needs a CUDA device")(test))


def fixed_step_solvers() -> list[str]:
    return [
        name
        for name in registry.names("solver")
        if not isinstance(registry.create("solver", name), Adaptive | Discrete)
    ]


def _nfe(solver: str) -> int:
    return next(n for n in valid_nfes(registry.create("solver", solver), 24) if n >= 8)


# --- what cannot be captured: clear errors before any work (no GPU needed) -------------------


@dataclass(frozen=True)
class StepSizeControl(Euler, Adaptive):
    """A stand-in adaptive solver: only its marker matters here."""


class GradientGuidance(Guidance):
    requires_grad = True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "x_init on a CUDA device"),
        ({"solver": StepSizeControl()}, "needs a fixed-step solver"),
        ({"guidance": GradientGuidance()}, "needs autograd"),
    ],
)
def test_uncapturable_requests_are_rejected(kwargs, message):
    kw = dict(path="cond_ot", prediction="velocity", solver="euler", nfe=4) | kwargs
    with pytest.raises(InvalidArgumentError, match=message):
        flowforge.sample(GM.field(CondOT()), torch.randn(3, 2), cuda_graph=True, **kw)


# --- mixed precision: the network in its dtype, the solver state in solver_dtype --------------


def test_network_gets_its_dtype_and_the_solver_keeps_its_own():
    seen = []

    def spy(x, t):
        seen.append((x.dtype, t.dtype))
        return GM.field(CondOT())(x, t)

    res = flowforge.sample(
        spy, torch.randn(5, 2).bfloat16(), path="cond_ot", prediction="velocity",
        solver="heun", nfe=5, solver_dtype=torch.float32, return_trajectory=True,
    )  # fmt: skip
    assert set(seen) == {(torch.bfloat16, torch.float32)}, "x in bf16, t in at least float32"
    assert res.x.dtype == res.trajectory.dtype == res.times.dtype == torch.float32


def test_float32_state_beats_bf16_state_with_a_bf16_network():
    """Rounding the state to bf16 every step dominates; a float32 state removes most of it."""
    field = GM.field(CondOT())
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)).bfloat16()
    kw = dict(path="cond_ot", prediction="velocity", solver="euler", nfe=100)
    ref = flowforge.sample(field, x0.double(), **kw)
    pure = flowforge.sample(field, x0, **kw)
    mixed = flowforge.sample(field, x0, solver_dtype=torch.float32, **kw)
    err_pure = (pure.double() - ref).abs().mean()
    err_mixed = (mixed.double() - ref).abs().mean()
    assert err_mixed < 0.25 * err_pure, f"mixed {err_mixed:.3g} vs bf16 state {err_pure:.3g}"


def test_float64_state_with_float32_network_tracks_float64():
    field = GM.field(CondOT())
    x0 = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    kw = dict(path="cond_ot", prediction="velocity", solver="rk4", nfe=40)
    ref = flowforge.sample(field, x0, **kw)
    out = flowforge.sample(field, x0.float(), solver_dtype=torch.float64, **kw)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_same_solver_dtype_changes_nothing():
    x0 = torch.randn(8, 2)
    kw = dict(path="cond_ot", prediction="velocity", solver="midpoint", nfe=8)
    plain = flowforge.sample(GM.field(CondOT()), x0, **kw)
    same = flowforge.sample(GM.field(CondOT()), x0, solver_dtype=torch.float32, **kw)
    assert torch.equal(plain, same)


def test_nan_check_holds_in_mixed_precision():
    def bad(x, t):
        return torch.where(t[:, None] > 0.5, torch.nan, 1.0).to(x.dtype) * torch.ones_like(x)

    with pytest.raises(NumericalError, match=r"step 7 of 10"):
        flowforge.sample(
            bad, torch.randn(3, 2).bfloat16(), path="cond_ot", prediction="velocity",
            solver="euler", nfe=10, time_grid="uniform", solver_dtype=torch.float32,
        )  # fmt: skip


@pytest.mark.parametrize("bad_dtype", [torch.int32, "float64", torch.bool])
def test_solver_dtype_must_be_a_float_dtype(bad_dtype):
    with pytest.raises(InvalidArgumentError, match="solver_dtype must be a floating-point"):
        flowforge.sample(
            GM.field(CondOT()), torch.randn(2, 2), path="cond_ot", prediction="velocity",
            solver="euler", nfe=2, solver_dtype=bad_dtype,
        )  # fmt: skip


# --- the cache and the state walking behind capture -------------------------------------------


def test_cache_is_bounded_least_recently_used_and_clearable():
    cache = GraphCache(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert (len(cache), cache.captures, cache.hits) == (2, 3, 3)
    cache.clear()
    assert len(cache) == 0 and cache.get("a") is None
    with pytest.raises(InvalidArgumentError, match="positive integer"):
        GraphCache(max_entries=0)


@dataclass(frozen=True)
class Record:
    w: torch.Tensor
    depth: int


@dataclass(frozen=True, slots=True)
class Slotted:
    """Like `flowforge.field.Prediction`: slots, no `__dict__`."""

    value: torch.Tensor
    kind: str


def test_flatten_sees_tensors_in_records_and_keeps_aliasing():
    x = torch.randn(3, 2)
    state = {"hist": [x, x * 2], "brownian": Record(torch.zeros(3), depth=4), "k": None}
    tensors, structure = flatten((x, state))
    assert len(tensors) == 3 and tensors[0] is x, "x appears twice but is one buffer"
    copy = map_tensors((x, state), torch.clone)
    assert copy[0] is copy[1]["hist"][0] and copy[0] is not x
    assert isinstance(copy[1]["brownian"], Record) and copy[1]["brownian"].depth == 4
    assert torch.equal(copy[1]["hist"][1], x * 2)
    assert flatten(copy)[1] == structure, "a clone has the same structure"
    other = {"hist": [x, x * 2], "brownian": Record(torch.zeros(3), depth=5), "k": None}
    assert flatten((x, other))[1] != structure, "a different constant is a different graph"
    wider = {**state, "brownian": Record(torch.zeros(4), depth=4)}
    assert flatten((x, wider))[1] != structure, "a different shape is a different graph"


def test_flatten_sees_slotted_records_and_anchors_opaque_objects():
    pred, opaque = Slotted(torch.ones(2), "noise"), object()
    anchors: list[Any] = []
    tensors, _ = flatten((pred, opaque), anchors)
    assert len(tensors) == 1 and tensors[0] is pred.value
    assert anchors == [opaque], "an object keyed by its id must be kept alive by the caller"
    copy = map_tensors((pred, opaque), torch.clone)
    assert copy[0].value is not pred.value and copy[0].kind == "noise" and copy[1] is opaque
    assert map_tensors(Record(torch.ones(1), 2), lambda t: t) == Record(torch.ones(1), 2)


# --- on the GPU ---------------------------------------------------------------------------


class TinyNet(nn.Module):
    """A time-conditioned MLP: cuBLAS work and elementwise kernels, like a real network."""

    def __init__(self, dim: int = 2, width: int = 64):
        super().__init__()
        self.inp = nn.Linear(dim + 2, width)
        self.out = nn.Linear(width, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.to(x.dtype)[:, None]
        h = torch.cat([x, torch.sin(3 * t), torch.cos(3 * t)], dim=1)
        return self.out(torch.nn.functional.silu(self.inp(h)))


@pytest.fixture
def net() -> TinyNet:
    graph.clear_cache()
    return TinyNet().cuda().eval()


def _both(field, x, solver, seed=0, **kw) -> tuple[Any, Any]:
    kw = dict(path="cond_ot", prediction="velocity", solver=solver, nfe=_nfe(solver)) | kw
    out = []
    for captured in (False, True):
        g = torch.Generator("cuda").manual_seed(seed)
        out.append(flowforge.sample(field, x, cuda_graph=captured, generator=g, **kw))
    return out[0], out[1]


@gpu
@pytest.mark.parametrize("solver", fixed_step_solvers())
def test_captured_solve_equals_eager(solver, net):
    x = torch.randn(64, 2, device="cuda")
    eager, captured = _both(net, x, solver, return_trajectory=True, t_span=(0.0, 0.99))
    torch.testing.assert_close(captured.trajectory, eager.trajectory, rtol=1e-5, atol=1e-5)
    assert captured.nfe == eager.nfe == _nfe(solver)
    if isinstance(registry.create("solver", solver), SDE):
        again = flowforge.sample(
            net, x, path="cond_ot", prediction="velocity", solver=solver, nfe=_nfe(solver),
            cuda_graph=True, generator=torch.Generator("cuda").manual_seed(1),
        )  # fmt: skip
        assert not torch.equal(again, captured.x), "another seed must give other noise"


@gpu
def test_later_calls_replay_with_new_inputs(net):
    kw = dict(path="vp_cosine", prediction="noise", nfe=9)
    x = torch.randn(32, 2, device="cuda")
    # per-sample times from the first call on: times shared by every sample make smaller
    # step tables (`shared_columns`), hence another graph
    t0 = torch.linspace(0.05, 0.2, 32, device="cuda")
    flowforge.sample(net, x, solver="heun", t_span=(t0 + 0.01, 0.95), cuda_graph=True, **kw)
    captures = graph.CACHE.captures
    for grid in ("uniform", "logsnr"):
        x = torch.randn(32, 2, device="cuda")
        eager, captured = _both(net, x, "heun", t_span=(t0, 0.95), time_grid=grid, **kw)
        torch.testing.assert_close(captured, eager, rtol=1e-5, atol=1e-5)
    assert graph.CACHE.captures == captures, "same shapes and objects must only replay"
    x = torch.randn(16, 2, device="cuda")
    flowforge.sample(net, x, solver="heun", t_span=(t0[:16], 0.95), cuda_graph=True, **kw)
    assert graph.CACHE.captures == captures + 1, "a new batch size is a new graph"


@dataclass(frozen=True)
class NoisyEuler(Euler, SDE):
    """Draws from the solve's generator inside every step (most SDE solvers draw in init)."""

    def step(self, f, x, t0, t1, state, info):
        x, state = super().step(f, x, t0, t1, state, info)
        z = torch.randn(x.shape, generator=info.generator, device=x.device, dtype=x.dtype)
        return x + 0.01 * z, state


@gpu
def test_draws_from_the_generator_inside_steps_replay_like_eager(net):
    x = torch.randn(32, 2, device="cuda")
    kw = dict(path="cond_ot", prediction="velocity", solver=NoisyEuler(), nfe=8)
    g, captures = torch.Generator("cuda"), graph.CACHE.captures
    for seed in (0, 1, 0):
        eager = flowforge.sample(net, x, generator=torch.Generator("cuda").manual_seed(seed), **kw)
        captured = flowforge.sample(net, x, generator=g.manual_seed(seed), cuda_graph=True, **kw)
        torch.testing.assert_close(captured, eager, rtol=1e-5, atol=1e-5)
    assert graph.CACHE.captures == captures + 1, "re-seeding the same generator only replays"


@gpu
def test_mixed_precision_in_a_graph(net):
    net = net.to(torch.bfloat16)
    x = torch.randn(64, 2, device="cuda").bfloat16()
    eager, captured = _both(net, x, "heun", solver_dtype=torch.float32)
    assert captured.dtype == torch.float32
    torch.testing.assert_close(captured, eager, rtol=1e-5, atol=1e-5)


@gpu
@pytest.mark.parametrize("solver", fixed_step_solvers())
def test_no_host_sync_on_the_gpu(solver, net, monkeypatch: pytest.MonkeyPatch):
    """The eager per-step region and the graph replay under CUDA's sync debug mode "error"."""
    original = driver.run_steps

    def strict(*args, **kwargs):
        torch.cuda.set_sync_debug_mode("error")
        try:
            return original(*args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    x = torch.randn(64, 2, device="cuda")
    kw = dict(path="cond_ot", prediction="velocity", solver=solver, nfe=_nfe(solver))
    with monkeypatch.context() as m:
        m.setattr(driver, "run_steps", strict)
        flowforge.sample(net, x, generator=torch.Generator("cuda").manual_seed(0), **kw)
    flowforge.sample(net, x, cuda_graph=True, **kw)
    captured, _ = graph.CACHE.values()[-1]
    torch.cuda.set_sync_debug_mode("error")
    try:
        captured.replay()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


@gpu
def test_a_field_that_syncs_gets_a_clear_error():
    graph.clear_cache()

    def syncing(x, t):
        return -x * float(t[0])

    with pytest.raises(InvalidArgumentError, match="synchronises with the host"):
        flowforge.sample(
            syncing, torch.randn(4, 2, device="cuda"), path="cond_ot", prediction="velocity",
            solver="euler", nfe=4, cuda_graph=True,
        )  # fmt: skip
