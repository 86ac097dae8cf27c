"""Shared fixtures: the committed QM9 fixture as molecules and as padded states; random product
states and orthogonal maps for the equivariance tests."""

from __future__ import annotations

import pytest
import torch
from flowforge_molecules.datasets import QM9Fixture, load_fixture
from flowforge_molecules.product import ProductEncoding

from flowforge.paths import CondOT

PRODUCT_STATES = ProductEncoding(("H", "C", "N", "O", "F"), CondOT()).num_states


@pytest.fixture(scope="session")
def fixture_molecules():
    return load_fixture()


@pytest.fixture(scope="session")
def fixture_dataset():
    return QM9Fixture()


@pytest.fixture
def product_state(generator):
    """A random product state over H C N O F: 3 molecules of 7 slots, the first with 5 atoms."""
    b, n = 3, 7
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[0, 5:] = False
    types, charges = PRODUCT_STATES
    return {
        "pos": torch.randn(b, n, 3, generator=generator) * mask[..., None],
        "atom_type": torch.randint(0, types, (b, n), generator=generator),
        "charge": torch.randint(0, charges, (b, n), generator=generator),
        "mask": mask,
    }


@pytest.fixture
def orthogonal(generator):
    """A random rotation, or with `reflect` a rotation times a reflection: `(3, 3)`."""

    def draw(reflect: bool) -> torch.Tensor:
        q, _ = torch.linalg.qr(torch.randn(3, 3, generator=generator))
        q = q * torch.sign(torch.det(q))
        return q @ torch.diag(torch.tensor([-1.0, 1.0, 1.0])) if reflect else q

    return draw
