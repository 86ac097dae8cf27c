"""The seeded noise: counter-based normals and the Brownian tree are exact, keyed and consistent."""

from __future__ import annotations

import math

import pytest
import torch

import flowforge
from flowforge import noise, registry
from flowforge.errors import InvalidArgumentError
from flowforge.noise import (
    BrownianTree,
    SeededNormals,
    draw_hash,
    erfinv_of_words_,
    hash32,
    mix32_,
    seed_from,
    signed32,
    xorshift16,
)

F64 = torch.float64


def test_hash_is_a_bijection_onto_32_bit_words_and_agrees_with_ints():
    x = torch.arange(2**18, dtype=torch.int64) * 16411  # spread over [0, 2^32)
    h = hash32(x)
    assert h.unique().numel() == x.numel()
    assert int(h.min()) >= 0 and int(h.max()) < 2**32
    assert [hash32(int(v)) for v in x[:50]] == h[:50].tolist()


def test_int32_mix_has_the_bits_of_the_reference_hash():
    """The samplers hash int32 words with wrapping multiplies; modulo 2^32 they are `draw_hash`,
    which is `hash32` but for its last xorshift (the same bits 17-31)."""
    words = torch.randint(0, 2**32, (4096,), generator=torch.Generator().manual_seed(0))
    words = torch.cat((words, torch.tensor([0, 1, 2**31 - 1, 2**31, 2**32 - 1])))
    mixed = mix32_(signed32(xorshift16(words)))
    assert mixed.dtype == torch.int32
    assert torch.equal(mixed.long() & 0xFFFFFFFF, draw_hash(words))
    assert mix32_(signed32(xorshift16(words)) ^ signed32(xorshift16(77))).long().tolist()[:5] == [
        signed32(draw_hash(int(w) ^ 77)) for w in words[:5]
    ]
    assert torch.equal(draw_hash(words) >> 17, hash32(words) >> 17)


def test_every_bit_a_draw_uses_avalanches_on_every_input_bit():
    """Flipping any input bit of `draw_hash` flips each of the 24 bits a normal is made of
    (8-31) with probability near 1/2: within 0.03 (measured: at most 0.016, at bits 8-11, the
    uniform's lowest; `hash32` 0.002). Dropping any round of the hash puts some bit at 0.47+."""
    x = torch.randint(0, 2**32, (2**16,), generator=torch.Generator().manual_seed(0))
    used = torch.arange(8, 32)
    base = draw_hash(x)
    flipped = [((base ^ draw_hash(x ^ (1 << i)))[:, None] >> used) & 1 for i in range(32)]
    p = torch.stack([f.double().mean(0) for f in flipped])  # (input bit, output bit)
    assert float((p - 0.5).abs().max()) < 0.03


def test_words_map_to_symmetric_exact_uniforms_inside_the_unit_interval():
    """Every word gives a finite normal; opposite words (w, ~w) give opposite normals."""
    extremes = torch.tensor([-(2**31), -(2**31) + 127, -1, 0, 127, 2**31 - 1], dtype=torch.int32)
    z = erfinv_of_words_(extremes.clone())
    assert bool(torch.isfinite(z).all()) and float(z.abs().max()) < 3.84  # sqrt(2) * 3.84 = 5.43
    assert torch.equal(z, -erfinv_of_words_(~extremes))


def test_normals_are_standard_and_independent_across_counters_and_elements():
    n = 200_000
    noise = SeededNormals(seed=5, shape=(n, 2), dtype=F64)
    a, b = noise.normals(0, 1), noise.normals(0, 2)
    se = 1 / math.sqrt(2 * n)
    assert abs(float(a.mean())) < 4 * se
    assert abs(float(a.var()) - 1) < 4 * math.sqrt(2) * se
    assert abs(float((a**4).mean()) - 3) < 4 * math.sqrt(96) * se  # Var(z^4) = 96
    for u, v in [(a, b), (a[:, 0], a[:, 1]), (a[:-1, 0], a[1:, 0])]:
        assert abs(float((u * v).mean())) < 4 / math.sqrt(u.numel())
    assert torch.equal(noise.normals(0, 1), a), "a draw is a pure function of its counter"


def test_a_sample_depends_on_seed_and_id_only():
    big = SeededNormals(seed=9, shape=(10, 3, 2))
    small = SeededNormals(seed=9, shape=(3, 3, 2))
    shifted = SeededNormals(seed=9, shape=(3, 3, 2), ids=torch.arange(4, 7))
    assert torch.equal(small.normals(7), big.normals(7)[:3])
    assert torch.equal(shifted.normals(7), big.normals(7)[4:7])
    per_sample = SeededNormals(seed=torch.tensor([9, 9, 1]), shape=(3, 3, 2))
    assert torch.equal(per_sample.normals(7)[:2], big.normals(7)[:2])
    assert not torch.equal(per_sample.normals(7)[2], big.normals(7)[2])


def test_tree_has_the_covariance_of_brownian_motion():
    n = 20_000
    tree = BrownianTree(seed=3, shape=(n, 2), t_lo=0.0, t_hi=2.0, dtype=F64)
    times = [0.0, 0.3, 0.7, 1.55, 2.0]
    w = {t: tree(torch.full((n,), t, dtype=F64)) for t in times}
    assert torch.equal(w[0.0], torch.zeros_like(w[0.0]))
    for s in times[1:]:
        for t in times[1:]:
            cov = float((w[s] * w[t]).mean())
            se = math.sqrt((s * t + min(s, t) ** 2) / (2 * n))  # std of the product's mean
            assert abs(cov - min(s, t)) < 4 * se, (s, t, cov)
    inc = tree.increment(torch.full((n,), 0.7, dtype=F64), torch.full((n,), 0.7 + 1e-4, dtype=F64))
    assert abs(float(inc.var()) / 1e-4 - 1) < 0.05, "fine increments keep variance dt"


def test_tree_is_exact_at_dyadic_times_whatever_its_depth():
    """Levels below a dyadic time's own add exactly 0 there: a deeper tree is the same path."""
    times = torch.arange(0, 257, dtype=F64) / 256
    shape = (times.numel(), 3)
    shallow = BrownianTree(seed=11, shape=shape, depth=8, dtype=F64)
    deep = BrownianTree(seed=11, shape=shape, depth=20, dtype=F64)
    assert torch.equal(shallow(times), deep(times))


def test_tree_values_do_not_depend_on_the_other_queries_or_the_batch():
    t = torch.rand(6, dtype=F64, generator=torch.Generator().manual_seed(0))
    tree = BrownianTree(seed=2, shape=(6, 4), dtype=F64)
    single = torch.stack([tree(t[i].expand(6))[i] for i in range(6)])
    assert torch.equal(tree(t), single)
    small = BrownianTree(seed=2, shape=(2, 4), dtype=F64)
    assert torch.equal(small(t[:2]), tree(t)[:2])
    assert not torch.equal(BrownianTree(seed=3, shape=(6, 4), dtype=F64)(t), tree(t))


def test_seed_from_generator_is_reproducible_and_stays_a_tensor():
    a = seed_from(torch.Generator().manual_seed(0), "cpu")
    b = seed_from(torch.Generator().manual_seed(0), "cpu")
    c = seed_from(torch.Generator().manual_seed(1), "cpu")
    assert a.dtype == torch.int64 and a.ndim == 0
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(4)
    d = seed_from(None, "cpu")
    torch.manual_seed(4)
    assert torch.equal(d, seed_from(None, "cpu"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1, "shape": (2, 2)},
        {"seed": 1.5, "shape": (2, 2)},
        {"seed": torch.tensor([1.0]), "shape": (1, 2)},
        {"seed": torch.tensor([1, 2]), "shape": (3, 2)},
        {"seed": 0, "shape": ()},
        {"seed": 0, "shape": (2, 2), "depth": 0},
        {"seed": 0, "shape": (2, 2), "ids": torch.arange(3)},
    ],
)
def test_invalid_arguments_raise_with_the_fix(kwargs):
    with pytest.raises(InvalidArgumentError):
        BrownianTree(**kwargs)


def test_tree_sums_its_levels_in_the_same_order_in_chunks(monkeypatch):
    """A large state makes the levels in interleaved parts; the sum keeps its order and bits."""
    tree = BrownianTree(seed=4, shape=(5, 3), depth=20, dtype=F64)
    t = torch.rand(5, dtype=F64, generator=torch.Generator().manual_seed(1))
    whole = tree(t)
    monkeypatch.setattr(noise, "CHUNK_ELEMENTS", 3 * 15)  # 3 levels of 15 elements: 8 parts
    assert torch.equal(tree(t), whole)


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_a_walk_makes_only_the_changed_levels_with_the_same_bits(dtype):
    """Along times every sample shares, a query takes the levels whose node did not change
    since the previous time from that query, and its per-level numbers from the walk: W has
    the bits of the tree's own query at every time (float32 terms reuse the erfinv values
    themselves, float64 ones a copy)."""
    tree = BrownianTree(seed=6, shape=(5, 3), t_lo=-0.25, t_hi=1.5, dtype=dtype)
    times = torch.rand(40, dtype=F64, generator=torch.Generator().manual_seed(3)).sort()[0]
    times = torch.cat((times, times[-1:], torch.tensor([1.5, 2.0], dtype=F64)))[:, None]
    levels, first = tree.walk(times)
    assert first[-3] == tree.depth and first[-1] == tree.depth, "no node changes"
    assert 0 < min(first) and max(first[:-3]) < tree.depth
    w, z = tree.query(None, levels=levels[0])
    for n in range(times.shape[0] - 1):
        w, z = tree.query(None, z, first[n], levels[n + 1])
        assert torch.equal(w, tree(times[n + 1].expand(5))), n
    assert tree.walk(torch.rand(4, 5, dtype=F64)) is None, "per-sample times: no walk"


@pytest.mark.parametrize("dtype", [F64, torch.float32])
@pytest.mark.parametrize("name", ["reverse_sde", "euler_maruyama", "predictor_corrector"])
def test_a_cpu_solve_on_the_walk_has_the_bits_of_plain_tree_queries(name, dtype, monkeypatch):
    path = registry.create("path", "vp_cosine")
    x = torch.randn(6, 2, dtype=dtype, generator=torch.Generator().manual_seed(0))
    kw = dict(path=path, prediction="velocity", solver=name, nfe=12, t_span=(0.05, 1.0))

    def solve():
        return flowforge.sample(
            lambda x_t, t: -x_t, x, generator=torch.Generator().manual_seed(2), **kw
        )

    walks, walk = [], BrownianTree.walk

    def recorded(self, times):
        walks.append(walk(self, times))
        return walks[-1]

    monkeypatch.setattr(BrownianTree, "walk", recorded)
    walked = solve()
    assert walks and walks[-1] is not None, "the CPU solve walks the tree"
    monkeypatch.setattr(BrownianTree, "walk", lambda self, times: None)
    assert torch.equal(walked, solve())
