"""Product paths and `sample_mixed`: one call per step advances continuous and discrete keys."""

from __future__ import annotations

import pytest
import torch

from flowforge import registry
from flowforge.discrete import MaskedPath, ProductPath, sample_mixed
from flowforge.errors import InvalidArgumentError
from flowforge.grids import make_grid
from flowforge.paths import CondOT
from flowforge.targets import GaussianMixture

GM = GaussianMixture(means=[[1.0, -2.0]], stds=[0.5], weights=[1.0])
TYPE_LOGITS = torch.tensor([0.0, 1.0, 2.0])


class Joint:
    """Exact velocity of a Gaussian for `pos (B, N, 2)` and fixed logits for `atom_type`."""

    def __init__(self):
        self.field = GM.field(CondOT(), "velocity")
        self.calls = 0

    def __call__(self, state, t):
        self.calls += 1
        pos = state["pos"]
        b, n, _ = pos.shape
        v = self.field(pos.reshape(b * n, 2), t.repeat_interleave(n)).reshape(b, n, 2)
        return {"pos": v, "atom_type": TYPE_LOGITS.expand(b, n, 3)}


def _template(batch=3000, n=4):
    mask = torch.ones(batch, n, dtype=torch.bool)
    mask[:, -1] = False
    return {
        "pos": torch.zeros(batch, n, 2),
        "atom_type": torch.zeros(batch, n, dtype=torch.long),
        "mask": mask,
    }


def test_product_sample_keeps_padding_and_shapes():
    path = ProductPath({"pos": CondOT(), "atom_type": MaskedPath(vocab_size=3)})
    gen = torch.Generator().manual_seed(0)
    x_1 = _template(8)
    x_1["pos"] = torch.randn(8, 4, 2, generator=gen)
    s = path.sample(path.source(x_1, gen), x_1, torch.full((8,), 0.3), generator=gen)
    x_t = path.state(s, x_1)
    assert x_t["pos"].shape == (8, 4, 2) and x_t["atom_type"].shape == (8, 4)
    assert torch.equal(x_t["pos"][:, -1], x_1["pos"][:, -1])
    assert torch.equal(x_t["atom_type"][:, -1], x_1["atom_type"][:, -1])
    assert bool((s["pos"].dx_t[:, -1] == 0).all()) and torch.equal(x_t["mask"], x_1["mask"])


@pytest.mark.parametrize(
    "pos_solver",
    [
        "euler",
        registry.create("solver", "euler_maruyama", eta=1.0),
        registry.create("solver", "dpm_solver_pp_sde", eta=1.0),
    ],
    ids=["euler", "euler_maruyama", "dpm_solver_pp_sde"],
)
def test_mixed_sampling_reaches_both_targets_with_one_call_per_step(pos_solver):
    """Deterministic and noise-drawing position solvers alike: with the exact field (an
    independent coupling) the SDE solvers keep the Gaussian's mean and spread."""
    path = ProductPath({"pos": CondOT(), "atom_type": MaskedPath(vocab_size=3)})
    gen = torch.Generator().manual_seed(1)
    x_init = path.source(_template(), gen)
    model = Joint()
    out = sample_mixed(
        model,
        x_init,
        path=path,
        predictions={"pos": "velocity"},
        solvers={"pos": pos_solver, "atom_type": "ancestral"},
        nfe=50,
        generator=gen,
    )
    assert model.calls == 50
    real = out["mask"]
    pos = out["pos"][real]
    torch.testing.assert_close(pos.mean(0), torch.tensor([1.0, -2.0]), atol=0.05, rtol=0)
    torch.testing.assert_close(pos.std(0), torch.tensor([0.5, 0.5]), atol=0.05, rtol=0)
    freq = torch.bincount(out["atom_type"][real], minlength=3).double() / real.sum()
    torch.testing.assert_close(freq, torch.softmax(TYPE_LOGITS.double(), 0), atol=0.03, rtol=0)
    assert torch.equal(out["pos"][~real], x_init["pos"][~real]), "padding never moves"
    assert torch.equal(out["atom_type"][~real], x_init["atom_type"][~real])


def test_solvers_that_call_twice_are_refused():
    path = ProductPath({"pos": CondOT(), "atom_type": MaskedPath(vocab_size=3)})
    x = path.source(_template(4), torch.Generator().manual_seed(0))
    with pytest.raises(InvalidArgumentError, match="one evaluation per step"):
        sample_mixed(
            Joint(),
            x,
            path=path,
            predictions={"pos": "velocity"},
            solvers={"pos": "heun", "atom_type": "ancestral"},
            nfe=10,
        )
    with pytest.raises(InvalidArgumentError, match="discrete solver"):
        sample_mixed(
            Joint(),
            x,
            path=path,
            predictions={"pos": "velocity"},
            solvers={"pos": "euler", "atom_type": "euler"},
            nfe=10,
        )


class _Times(Joint):
    """`Joint` recording the times it is called at."""

    def __init__(self):
        super().__init__()
        self.times = []

    def __call__(self, state, t):
        self.times.append(t[0].item())
        return super().__call__(state, t)


@pytest.mark.parametrize("grid", ["edm", "logsnr"])
def test_named_grids_follow_the_continuous_path_and_still_reach_the_target(grid):
    path = ProductPath({"pos": CondOT(), "atom_type": MaskedPath(vocab_size=3)})
    gen = torch.Generator().manual_seed(2)
    model = _Times()
    out = sample_mixed(
        model,
        path.source(_template(), gen),
        path=path,
        predictions={"pos": "velocity"},
        solvers={"pos": "dpm_solver_pp", "atom_type": "ancestral"},
        nfe=30,
        generator=gen,
        time_grid=grid,
    )
    t0, t1 = (torch.full((1,), v) for v in path.t_span)
    expected = make_grid(grid, CondOT(), t0, t1, 30, "uniform")[:-1, 0]
    torch.testing.assert_close(torch.tensor(model.times), expected)
    assert model.times[-1] > 0.99, "log-SNR grids crowd the steps at the data end"
    pos = out["pos"][out["mask"]]
    torch.testing.assert_close(pos.mean(0), torch.tensor([1.0, -2.0]), atol=0.05, rtol=0)
    torch.testing.assert_close(pos.std(0), torch.tensor([0.5, 0.5]), atol=0.05, rtol=0)


def test_explicit_grid_and_discrete_only_states():
    times = torch.tensor([0.0, 0.5, 0.9, 1.0])
    path = ProductPath({"atom_type": MaskedPath(vocab_size=3)})
    gen = torch.Generator().manual_seed(3)
    x_init = path.source({k: v for k, v in _template(16).items() if k != "pos"}, gen)
    seen = []

    def model(state, t):
        seen.append(t[0].item())
        return {"atom_type": TYPE_LOGITS.expand(*state["atom_type"].shape, 3)}

    common = dict(path=path, predictions={}, solvers={"atom_type": "ancestral"}, nfe=3)
    sample_mixed(model, x_init, generator=gen, time_grid=times, **common)
    assert seen == pytest.approx(times[:-1].tolist())
    with pytest.raises(InvalidArgumentError, match=r"time_grid 'edm'.*continuous key"):
        sample_mixed(model, x_init, generator=gen, time_grid="edm", **common)
    with pytest.raises(InvalidArgumentError, match=r"unknown time_grid 'logsnr2'"):
        sample_mixed(model, x_init, generator=gen, time_grid="logsnr2", **common)
    seen.clear()
    sample_mixed(model, x_init, generator=gen, time_grid="auto", **common)
    assert seen == pytest.approx([0.0, 1 / 3, 2 / 3])


@pytest.mark.parametrize(
    ("pos_path", "solver", "expected"),
    [("cond_ot", "dpm_solver_pp", "uniform"), ("vp_cosine", "dpm_solver_pp", "logsnr"),
     ("vp_cosine", "euler", "uniform")],
)  # fmt: skip
def test_auto_is_the_continuous_paths_recommended_grid_else_its_solvers(pos_path, solver, expected):
    """`auto` resolves as `flowforge.sample` would for the first continuous key alone (here
    after a discrete key): cond_ot recommends uniform, vp_cosine leaves it to the solver."""
    pos = registry.create("path", pos_path)
    path = ProductPath({"atom_type": MaskedPath(vocab_size=3), "pos": pos})
    gen = torch.Generator().manual_seed(4)
    seen = []

    def model(state, t):
        seen.append(t[0].item())
        b, n = state["atom_type"].shape
        return {"pos": torch.zeros_like(state["pos"]), "atom_type": TYPE_LOGITS.expand(b, n, 3)}

    sample_mixed(
        model, path.source(_template(8), gen), path=path, predictions={"pos": "velocity"},
        solvers={"pos": solver, "atom_type": "ancestral"}, nfe=6, generator=gen, time_grid="auto",
        t_span=(0.0, 0.999),
    )  # fmt: skip
    t0, t1 = torch.zeros(1), torch.full((1,), 0.999)
    expected = make_grid(expected, pos, t0, t1, 6, "uniform")[:-1, 0]
    torch.testing.assert_close(torch.tensor(seen), expected)
