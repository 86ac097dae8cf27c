"""Size batches: one atom count per batch, cut to it, each molecule as likely as with uniform
draws."""

from __future__ import annotations

import pytest
import torch
from flowforge_molecules.encoding import OneHotEncoding
from flowforge_molecules.objective import MoleculeObjective
from flowforge_molecules.product import ProductEncoding
from flowforge_molecules.product_objective import ProductObjective
from flowforge_molecules.size_batches import SizeBatches

from flowforge.errors import InvalidArgumentError
from flowforge.paths import CondOT


def test_batches_hold_one_size_and_molecules_are_drawn_uniformly(fixture_dataset):
    mask = fixture_dataset.states()["train"].mask
    sizes = SizeBatches(mask)
    gen = torch.Generator().manual_seed(0)
    seen = torch.zeros(len(mask))
    for _ in range(4000):
        rows = sizes.draw(8, gen)
        assert len(set(mask[rows].sum(1).tolist())) == 1
        seen += torch.bincount(rows, minlength=len(mask))
    # 32,000 draws over 320 molecules: 100 each expected, a few sigma of Poisson noise
    assert seen.min() > 50 and seen.max() < 160
    assert abs(seen.std().item() - 10.0) < 3.0


@pytest.mark.parametrize("state", ["product", "onehot"])
def test_objectives_cut_batches_to_their_atom_count(fixture_dataset, state):
    train = fixture_dataset.states()["train"]
    if state == "product":
        enc = ProductEncoding(fixture_dataset.elements, CondOT(), "masked", fixture_dataset.charges)
        objective = ProductObjective(enc, "velocity", enc.encode(train), size_batches=True)
    else:
        enc = OneHotEncoding(fixture_dataset.elements, fixture_dataset.charges)
        x = enc.encode(train)
        objective = MoleculeObjective(CondOT(), "velocity", enc, x, train.mask, size_batches=True)
    gen = torch.Generator().manual_seed(0)
    widths = set()
    for _ in range(20):
        batch = objective.draw(16, gen)
        width = batch["mask"].shape[1]
        assert batch["mask"].all()
        ends = ("pos_0", "pos_1") if state == "product" else ("x_0", "x_1")
        assert all(batch[k].shape[:2] == (16, width) for k in ends)
        widths.add(width)
    assert len(widths) > 3 and max(widths) <= train.mask.shape[1]


def test_padding_must_put_real_atoms_first():
    mask = torch.tensor([[True, False, True]])
    with pytest.raises(InvalidArgumentError, match="real atoms must come first"):
        SizeBatches(mask)
