"""Discrete samplers: exact joint distributions, the cache, NFE honesty, infilling, guidance."""

from __future__ import annotations

import pytest
import torch

from flowforge import registry
from flowforge.discrete import SVDD, DiscreteCFG, Infill, MaskedPath, UniformPath, sample
from flowforge.errors import InvalidArgumentError, SpecError

from .conftest import ExactDenoiser, TinyNet, random_joint

V, L = 3, 3


def _chi_square(tokens: torch.Tensor, probs: torch.Tensor, vocab: int) -> float:
    codes = (tokens * vocab ** torch.arange(tokens.shape[1] - 1, -1, -1)).sum(1)
    counts = torch.bincount(codes, minlength=vocab ** tokens.shape[1]).double()
    expected = probs.double() / probs.sum() * tokens.shape[0]
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("solver", ["ancestral", "mdlm_cached", "tau_leaping", "ctmc_euler"])
def test_samples_follow_the_joint_distribution(solver):
    """With the exact denoiser, 128 steps give the joint table (chi-square, 26 dof, p ~ 1e-4;
    4 steps unmask tokens together from their marginals and fail it)."""
    probs = random_joint(V, L)
    model = ExactDenoiser(probs, V, L)
    path = MaskedPath(vocab_size=V)
    gen = torch.Generator().manual_seed(0)
    x = path.source((4000, L), gen, "cpu")
    out = sample(model, x, path=path, solver=solver, nfe=128, generator=gen)
    assert bool((out.x < V).all()), "the last step must unmask every token"
    assert _chi_square(out.x, probs, V) < 60.0


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_temperature_draws_from_the_tempered_conditional(temperature):
    """One token: the samples follow softmax(log p / T) (chi-square, 4 dof, p ~ 1e-4), and that
    table is far from p itself, so the test would see a temperature that is ignored."""
    probs = torch.tensor([0.05, 0.1, 0.15, 0.3, 0.4])
    model = ExactDenoiser(probs, 5, 1)
    path = MaskedPath(vocab_size=5)
    gen = torch.Generator().manual_seed(0)
    solver = registry.create("solver", "ancestral", temperature=temperature)
    out = sample(
        model, path.source((8000, 1), gen, "cpu"), path=path, solver=solver, nfe=4, generator=gen
    )
    target = probs ** (1 / temperature)
    assert _chi_square(out.x, target, 5) < 25.0
    assert _chi_square(out.x, probs, 5) > 100.0


def test_temperature_one_is_the_default_and_zero_is_argmax():
    probs = random_joint(V, L, seed=2)
    model = ExactDenoiser(probs, V, L)
    path = MaskedPath(vocab_size=V)
    runs = {}
    for t in (None, 1.0):
        gen = torch.Generator().manual_seed(4)
        solver = registry.create("solver", "ancestral", **({} if t is None else {"temperature": t}))
        runs[t] = sample(
            model, path.source((64, L), gen, "cpu"), path=path, solver=solver, nfe=8, generator=gen
        ).x
    assert torch.equal(runs[None], runs[1.0])
    one = ExactDenoiser(torch.tensor([0.2, 0.15, 0.35, 0.3]), 4, 1)
    path = MaskedPath(vocab_size=4)
    gen = torch.Generator().manual_seed(5)
    greedy = registry.create("solver", "tau_leaping", temperature=0.0)
    out = sample(
        one, path.source((256, 1), gen, "cpu"), path=path, solver=greedy, nfe=4, generator=gen
    )
    assert bool((out.x == 2).all())


def test_cached_equals_uncached_and_calls_less():
    probs = random_joint(V, 4, seed=3)
    path = MaskedPath(vocab_size=V)
    results = {}
    for solver in ("ancestral", "mdlm_cached"):
        model = ExactDenoiser(probs, V, 4)
        gen = torch.Generator().manual_seed(7)
        out = sample(
            model,
            path.source((64, 4), gen, "cpu"),
            path=path,
            solver=solver,
            nfe=128,
            generator=gen,
        )
        results[solver] = (out, model.calls)
    (plain, plain_calls), (cached, cached_calls) = results["ancestral"], results["mdlm_cached"]
    assert torch.equal(plain.x, cached.x), "the cache must not change the samples"
    assert plain.nfe == plain_calls == 128 and plain.nfe_per_sample == 128
    assert cached.nfe == cached_calls < plain.nfe
    assert cached.nfe_per_sample <= 4.0, "a sequence is evaluated at most once per change"


def test_cached_equals_uncached_for_a_network():
    torch.manual_seed(0)
    net = TinyNet(5, 6, time_input=False).eval()
    path = MaskedPath(vocab_size=5)
    outs = []
    for solver in ("ancestral", "mdlm_cached"):
        gen = torch.Generator().manual_seed(11)
        outs.append(
            sample(
                net,
                path.source((32, 6), gen, "cpu"),
                path=path,
                solver=solver,
                nfe=64,
                generator=gen,
            )
        )
    assert torch.equal(outs[0].x, outs[1].x) and outs[1].nfe < outs[0].nfe


def test_cache_refuses_a_time_dependent_model():
    net = TinyNet(5, 6, time_input=True)
    path = MaskedPath(vocab_size=5)
    with pytest.raises(InvalidArgumentError, match="time-independent"):
        sample(net, path.source((2, 6), None, "cpu"), path=path, solver="mdlm_cached", nfe=8)


@pytest.mark.parametrize("path", [MaskedPath(vocab_size=V), UniformPath(vocab_size=V)])
def test_clamped_tokens_survive_infilling(path):
    torch.manual_seed(0)
    net = TinyNet(V, 8).eval()
    gen = torch.Generator().manual_seed(2)
    template = torch.randint(0, V, (16, 8), generator=gen)
    known = torch.rand(16, 8, generator=gen) < 0.4
    known[:, :2] = known[:, -1] = False  # the prefix and suffix are clamped by the first one
    guidance = [Infill(prefix=(2, 1), suffix=(0,)), Infill(tokens=template, known=known)]
    x = path.source((16, 8), gen, "cpu")
    out = sample(
        net,
        x,
        path=path,
        solver="ancestral",
        nfe=16,
        generator=gen,
        guidance=guidance,
        return_trajectory=True,
    )
    for state in out.trajectory:
        assert bool((state[:, :2] == torch.tensor([2, 1])).all()) and bool(
            (state[:, -1] == 0).all()
        )
        assert torch.equal(state[known], template[known])
    assert bool((out.x < V).all())


def test_padding_never_changes():
    net = TinyNet(V, 6).eval()
    path = MaskedPath(vocab_size=V)
    gen = torch.Generator().manual_seed(0)
    valid = torch.arange(6)[None].expand(8, 6) < torch.randint(1, 7, (8, 1), generator=gen)
    x = torch.where(valid, path.mask_id, 0)
    out = sample(net, x, path=path, solver="tau_leaping", nfe=10, generator=gen, valid=valid)
    assert bool((out.x[~valid] == 0).all()) and bool((out.x[valid] < V).all())


class Conditional(torch.nn.Module):
    """Logits that favour token `label` (None: uniform); time-independent."""

    time_conditioned = False

    def forward(self, x_t, t, label=None):
        logits = torch.zeros(*x_t.shape, V)
        if label is not None:
            logits[torch.arange(x_t.shape[0]), :, label] = 1.0
        return logits


def test_discrete_cfg_sharpens_and_counts_calls():
    path = MaskedPath(vocab_size=V)
    label = torch.full((2000,), 2)
    freq = {}
    for w in (1.0, 3.0):
        gen = torch.Generator().manual_seed(0)
        out = sample(
            Conditional(),
            path.source((2000, 4), gen, "cpu"),
            path=path,
            solver="ancestral",
            nfe=8,
            generator=gen,
            cond={"label": label},
            guidance=DiscreteCFG(scale=w),
        )
        freq[w] = float((out.x == 2).double().mean())
        assert out.nfe == (8 if w == 1.0 else 16)
    e = torch.e
    assert abs(freq[1.0] - e / (e + 2)) < 0.02
    assert abs(freq[3.0] - e**3 / (e**3 + 2)) < 0.02, "w=3 multiplies the log-odds by 3"


def test_svdd_raises_the_reward():
    probs = random_joint(V, L, seed=5)
    path = MaskedPath(vocab_size=V)

    def reward(x):
        return (x == 1).double().sum(1)

    means = []
    for guidance in (None, SVDD(reward=reward, num_candidates=8)):
        gen = torch.Generator().manual_seed(0)
        out = sample(
            ExactDenoiser(probs, V, L),
            path.source((500, L), gen, "cpu"),
            path=path,
            solver="ancestral",
            nfe=12,
            generator=gen,
            guidance=guidance,
        )
        means.append(float(reward(out.x).mean()))
    assert means[1] > means[0] + 0.5, means


def test_guidance_needs_and_kinds_are_checked():
    path = MaskedPath(vocab_size=V)
    x = path.source((2, L), None, "cpu")
    with pytest.raises(InvalidArgumentError, match="reward"):
        sample(Conditional(), x, path=path, solver="ancestral", nfe=4, guidance="svdd")
    with pytest.raises(InvalidArgumentError, match="discrete solver"):
        sample(Conditional(), x, path=path, solver="euler", nfe=4)


def test_few_steps_are_inexact_with_simultaneous_unmasking():
    """The chi-square test above can fail: 4 steps miss the joint table by far."""
    probs = random_joint(V, L)
    path = MaskedPath(vocab_size=V)
    gen = torch.Generator().manual_seed(0)
    out = sample(
        ExactDenoiser(probs, V, L),
        path.source((4000, L), gen, "cpu"),
        path=path,
        solver="ancestral",
        nfe=2,
        generator=gen,
    )
    assert _chi_square(out.x, probs, V) > 60.0


@pytest.mark.parametrize(
    "solver, window",
    [
        ("ancestral", (0.0, 1.0)),
        ("tau_leaping", (0.0, 1.0)),
        ("mdlm_cached", (0.0, 1.0)),
        ("ancestral", (0.2, 0.7)),
    ],
)
def test_remasking_keeps_the_joint_distribution(solver, window):
    """eta = 3 remasks often (a token revealed at t = 0.5 returns to the mask with probability
    0.78 by t = 1) and the joint table survives (the test above's bound): a remasked token is
    redrawn from its exact conditional. The balancing rate is what the mask-fraction test
    below checks; an exact time-independent denoiser cannot see it."""
    probs = random_joint(V, L, seed=7)
    model = ExactDenoiser(probs, V, L)
    path = MaskedPath(vocab_size=V)
    gen = torch.Generator().manual_seed(1)
    chosen = registry.create("solver", solver, eta=3.0, eta_window=window)
    out = sample(
        model, path.source((4000, L), gen, "cpu"), path=path, solver=chosen, nfe=256, generator=gen
    )
    assert bool((out.x < V).all())
    assert _chi_square(out.x, probs, V) < 60.0


def test_remasking_rate_and_refusal():
    """One step from t = 0.5 over h = 0.1 at eta = 2 remasks 1 - exp(-0.2) = 18.1% of revealed
    tokens (binomial, 40,000 tokens: 3 sigma = 0.6 points); padding never changes; a uniform
    path is refused with the parameter to change."""
    from flowforge.discrete.dynamics import DiscreteDynamics
    from flowforge.solvers.base import StepInfo

    path = MaskedPath(vocab_size=V)
    model = ExactDenoiser(random_joint(V, L), V, L)
    f = DiscreteDynamics(model, path)
    x = torch.randint(0, V, (40000 // L + 1, L), generator=torch.Generator().manual_seed(0))
    f.frozen = torch.zeros_like(x, dtype=torch.bool)
    f.frozen[:100] = True
    t0, t1 = torch.full((x.shape[0],), 0.5), torch.full((x.shape[0],), 0.6)
    info = StepInfo(index=0, count=2, generator=torch.Generator().manual_seed(2))
    solver = registry.create("solver", "ancestral", eta=2.0)
    out, _ = solver.step(f, x, t0, t1, None, info)
    rate = float((out[100:] == path.mask_id).double().mean())
    assert abs(rate - (1 - torch.exp(torch.tensor(-0.2)).item())) < 0.006
    assert torch.equal(out[:100], x[:100])
    g = DiscreteDynamics(model, UniformPath(vocab_size=V))
    with pytest.raises(InvalidArgumentError, match="eta"):
        solver.step(g, x, t0, t1, None, info)


@pytest.mark.parametrize("window", [(0.0, 1.0), (0.1, 0.3)])
def test_remasking_keeps_the_mask_fraction_of_the_path(window):
    """The balancing unmask rate keeps P(masked at t) = 1 - alpha(t): 64 steps from t = 0 to 0.5
    at eta = 3 leave 50% masked (without the balance it would be 70%), also when the remasking
    stops inside the solve (a time profile of eta)."""
    from flowforge.discrete.dynamics import DiscreteDynamics
    from flowforge.solvers.base import StepInfo

    path = MaskedPath(vocab_size=V)
    f = DiscreteDynamics(ExactDenoiser(random_joint(V, L), V, L), path)
    x = path.source((6000, L), None, "cpu")
    gen = torch.Generator().manual_seed(3)
    solver = registry.create("solver", "ancestral", eta=3.0, eta_window=window)
    grid = torch.linspace(0.0, 0.5, 65)
    for i in range(64):
        t0, t1 = grid[i].expand(x.shape[0]), grid[i + 1].expand(x.shape[0])
        x, _ = solver.step(f, x, t0, t1, None, StepInfo(index=i, count=128, generator=gen))
    assert abs(float((x == path.mask_id).double().mean()) - 0.5) < 0.015


def test_remasking_window_switches_remasking_on_and_off():
    """Inside `eta_window`, its ends included, a step remasks 1 - exp(-eta h) of the revealed
    tokens (as above); a step that starts outside it is the plain step, token for token, and a
    reversed or out-of-range window is refused naming the parameter."""
    from flowforge.discrete.dynamics import DiscreteDynamics
    from flowforge.solvers.base import StepInfo

    path = MaskedPath(vocab_size=V)
    f = DiscreteDynamics(ExactDenoiser(random_joint(V, L), V, L), path)
    x = torch.randint(0, V + 1, (40000 // L + 1, L), generator=torch.Generator().manual_seed(4))
    windowed = registry.create("solver", "ancestral", eta=2.0, eta_window=(0.3, 0.55))
    plain = registry.create("solver", "ancestral")

    def step(solver, t):
        t0, t1 = torch.full((x.shape[0],), t), torch.full((x.shape[0],), t + 0.1)
        info = StepInfo(index=0, count=4, generator=torch.Generator().manual_seed(5))
        return solver.step(f, x, t0, t1, None, info)[0]

    revealed = x != path.mask_id
    for t in (0.3, 0.45, 0.55):
        rate = float((step(windowed, t)[revealed] == path.mask_id).double().mean())
        assert abs(rate - (1 - torch.exp(torch.tensor(-0.2)).item())) < 0.008, t
    for t in (0.2, 0.56, 0.8):
        assert torch.equal(step(windowed, t), step(plain, t))
    for bad in ((0.7, 0.3), (0.0, 1.5)):
        with pytest.raises(SpecError, match="eta_window"):
            registry.create("solver", "ancestral", eta=1.0, eta_window=bad)
