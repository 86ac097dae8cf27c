"""Fixtures for CLI tests: a core-only registry, and the real `flowforge` entry point."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flowforge import registry


@pytest.fixture
def core_only() -> Iterator[registry.Registry]:
    """Core's own components only (no installed plugin), current during the test."""
    with registry.using(registry.load(allowed=set())) as reg:
        yield reg
