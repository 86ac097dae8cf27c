"""The discrete-diffusion objective under data parallelism: each process's `part` of a draw is
those rows of the batch drawn for all processes, and the per-row losses add up to the whole."""

from __future__ import annotations

import torch

from flowforge.discrete import DiscreteDiffusion, MaskedPath

from .conftest import TinyNet


def test_parts_of_a_draw_make_up_the_whole_draw():
    data = torch.randint(0, 4, (50, 6), generator=torch.Generator().manual_seed(0))
    data[:, -2:] = 4  # padding, never corrupted
    objective = DiscreteDiffusion(MaskedPath(vocab_size=5), data, pad_id=4)
    whole = objective.draw(12, torch.Generator().manual_seed(1))
    parts, gens = [], []
    for i in range(0, 12, 4):
        gens.append(torch.Generator().manual_seed(1))
        parts.append(objective.draw(12, gens[-1], part=slice(i, i + 4)))
    for key in ("x_1", "t", "x_t"):
        assert torch.equal(torch.cat([p[key] for p in parts]), whole[key]), key
    # every process leaves its generator in the same state (they stay in step)
    after = torch.Generator().manual_seed(1)
    objective.draw(12, after)
    assert all(torch.equal(g.get_state(), after.get_state()) for g in gens)
    assert bool((whole["x_t"] == 5).any()) and bool((whole["x_t"][:, -2:] == 4).all())
    torch.manual_seed(0)
    net = TinyNet(5, 6, width=16)
    with torch.no_grad():
        total = objective.loss(net, whole).sum()
        summed = sum(objective.loss(net, p).sum() for p in parts)
    torch.testing.assert_close(summed, total)
    assert float(total) > 0
