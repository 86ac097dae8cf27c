"""Equivariant OT: never costlier than the independent pair, and the noise stays valid."""

from __future__ import annotations

import itertools

import pytest
import torch
from flowforge_molecules.coupling import EquivariantOT, align, kabsch, transport_cost
from flowforge_molecules.encoding import OneHotEncoding

from flowforge.errors import InvalidArgumentError


def test_alignment_never_increases_cost(fixture_dataset, generator):
    state = fixture_dataset.states()["train"]
    enc = OneHotEncoding(fixture_dataset.elements)
    x_1 = enc.encode(state)[:64]
    mask = state.mask[:64]
    x_0 = enc.noise(mask, generator)
    out = EquivariantOT().pair(x_0, x_1, generator=generator)
    before = ((x_0 - x_1) ** 2).sum((1, 2))
    after = ((out.x_0 - x_1) ** 2).sum((1, 2))
    assert (after <= before + 1e-5).all()
    assert (after < before).float().mean() > 0.9  # and usually lowers it
    assert torch.equal(out.x_1, x_1)
    assert (out.x_0[~mask] == 0).all()
    com = (out.x_0[..., :3] * mask[..., None]).sum(1)
    assert com.abs().max() < 1e-4
    # each noise molecule is a rotated, permuted copy: pairwise distances are kept
    for b in range(4):
        real = mask[b]
        d0 = torch.cdist(x_0[b, real, :3], x_0[b, real, :3])
        d1 = torch.cdist(out.x_0[b, real, :3], out.x_0[b, real, :3])
        assert torch.allclose(
            torch.sort(d0.flatten()).values, torch.sort(d1.flatten()).values, atol=1e-4
        )


def test_alignment_within_groups_keeps_groups(generator):
    x1 = torch.randn(3, 9, 3, generator=generator, dtype=torch.float64)
    x0 = torch.randn(3, 9, 3, generator=generator, dtype=torch.float64)
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[2, 7:] = False  # a padded molecule: its two last atoms take no part
    x1, x0 = x1 * mask[..., None], x0 * mask[..., None]
    groups = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2]).expand(3, 9)
    perm, rot = align(x0, x1, mask, groups, groups)
    assert torch.equal(torch.gather(groups, 1, perm), groups)
    assert perm[2, 7:].tolist() == [7, 8]
    identity = transport_cost(
        x0, x1, torch.arange(9).expand(3, 9), torch.eye(3, dtype=torch.float64).expand(3, 3, 3)
    )
    assert (transport_cost(x0, x1, perm, rot) <= identity + 1e-9).all()
    assert torch.allclose(torch.linalg.det(rot), torch.ones(3, dtype=torch.float64))


def test_alignment_against_brute_force_on_small_molecules(generator):
    """Over all permutations of 5 atoms, each with its Kabsch rotation: the alternation is never
    below that optimum (costs and rotations are consistent) and gets most of the way to it from
    the independent pair (which costs about 7 times the optimum here; alternation: 1.6)."""
    x1 = torch.randn(40, 5, 3, generator=generator, dtype=torch.float64)
    x0 = torch.randn(40, 5, 3, generator=generator, dtype=torch.float64)
    x1, x0 = x1 - x1.mean(1, keepdim=True), x0 - x0.mean(1, keepdim=True)
    perm, rot = align(x0, x1, torch.ones(40, 5, dtype=torch.bool))
    got = transport_cost(x0, x1, perm, rot)
    best = torch.full((40,), torch.inf, dtype=torch.float64)
    for p in itertools.permutations(range(5)):
        tiled = torch.tensor(p).expand(40, 5)
        r = kabsch(torch.gather(x0, 1, tiled[..., None].expand(-1, -1, 3)), x1)
        best = torch.minimum(best, transport_cost(x0, x1, tiled, r))
    assert (got >= best - 1e-9).all()
    assert got.mean() < 2.0 * best.mean()
    identity = transport_cost(
        x0, x1, torch.arange(5).expand(40, 5), torch.eye(3, dtype=torch.float64).expand(40, 3, 3)
    )
    assert identity.mean() > 5.0 * best.mean()


def test_mismatched_groups_name_the_element():
    x = torch.zeros(1, 3, 3)
    mask = torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(InvalidArgumentError, match="element 0 has 2 atoms in the data and 1 in"):
        align(x, x, mask, torch.tensor([[0, 1, 1]]), torch.tensor([[0, 0, 1]]))
