"""Equivariant OT: never costlier than the independent pair, and the noise stays valid."""

from __future__ import annotations

import numpy as np
import torch
from flowforge_molecules.coupling import EquivariantOT, align, transport_cost
from flowforge_molecules.encoding import OneHotEncoding


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


def test_alignment_within_groups_keeps_groups():
    rng = np.random.default_rng(0)
    x1, x0 = rng.normal(size=(9, 3)), rng.normal(size=(9, 3))
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    perm, rot = align(x0, x1, groups, groups)
    assert (groups[perm] == groups).all()
    assert transport_cost(x0, x1, perm, rot) <= transport_cost(x0, x1, np.arange(9), np.eye(3))
    assert np.isclose(np.linalg.det(rot), 1.0)
