"""Shared fixtures: the committed QM9 fixture as molecules and as padded states."""

from __future__ import annotations

import pytest
from flowforge_molecules.datasets import QM9Fixture, load_fixture


@pytest.fixture(scope="session")
def fixture_molecules():
    return load_fixture()


@pytest.fixture(scope="session")
def fixture_dataset():
    return QM9Fixture()
