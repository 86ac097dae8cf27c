"""Data-parallel draws: the parts of a step's batch together are the batch one process draws."""

from __future__ import annotations

import itertools

import pytest
import torch
from flowforge_molecules.coupling import EquivariantOT
from flowforge_molecules.encoding import OneHotEncoding
from flowforge_molecules.objective import MoleculeObjective
from flowforge_molecules.product import ProductEncoding
from flowforge_molecules.product_objective import ProductObjective
from flowforge_molecules.regressor import PropertyObjective

from flowforge.paths import CondOT


def _objectives(dataset):
    state = dataset.states()["train"]
    props = state.properties[:, :2]
    onehot = OneHotEncoding(dataset.elements)
    product = ProductEncoding(dataset.elements, CondOT())
    x = onehot.encode(state)
    return {
        "onehot": MoleculeObjective(
            CondOT(),
            "velocity",
            onehot,
            x,
            state.mask,
            properties=props,
            coupling=EquivariantOT(),
            self_condition=True,
        ),
        "product": ProductObjective(
            product,
            "velocity",
            product.encode(state),
            properties=props,
            coupling=EquivariantOT(),
        ),
        "regressor": PropertyObjective(x, state.mask, props),
    }


@pytest.mark.parametrize("name", ["onehot", "product", "regressor"])
def test_union_of_parts_is_the_whole_draw(fixture_dataset, name):
    objective = _objectives(fixture_dataset)[name]
    n, cuts = 12, (0, 5, 8, 12)
    whole_gen = torch.Generator().manual_seed(7)
    whole = objective.draw(n, whole_gen)
    parts, states = [], []
    for lo, hi in itertools.pairwise(cuts):
        gen = torch.Generator().manual_seed(7)
        parts.append(objective.draw(n, gen, part=slice(lo, hi)))
        states.append(gen.get_state())
    assert set(parts[0]) == set(whole)
    for key, value in whole.items():
        joined = torch.cat([p[key] for p in parts])
        if joined.is_floating_point():
            assert torch.equal(joined.isnan(), value.isnan()), key
        assert torch.allclose(joined.nan_to_num(), value.nan_to_num(), atol=1e-6), key
    # every part leaves the generator where the whole draw does
    assert all(torch.equal(s, whole_gen.get_state()) for s in states)
