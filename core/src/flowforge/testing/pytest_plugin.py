"""pytest plugin of flowforge (entry point `pytest11`): seeds, float64 and registry isolation.

Loaded automatically wherever flowforge is installed, so plugin test suites get the same
fixtures as core's:
- `generator`: a `torch.Generator` seeded with `--flowforge-seed` (default 0);
- `float64`: torch's default dtype is float64 during the test;
- `fresh_registry`: a registry loaded by a fresh plugin manager, current during the test.
After every test the process-wide registry is forgotten (`registry.reset()`), so a test that
changes it cannot affect the next one. Nothing heavy happens at import: torch and the
registry are imported by the fixtures that need them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("flowforge").addoption(
        "--flowforge-seed",
        type=int,
        default=0,
        help="seed of the `generator` fixture (default 0); vary it to probe seed-dependent tests",
    )


@pytest.fixture
def generator(request: pytest.FixtureRequest) -> Any:
    """A CPU `torch.Generator` seeded with `--flowforge-seed`."""
    import torch

    return torch.Generator().manual_seed(request.config.getoption("--flowforge-seed"))


@pytest.fixture
def float64() -> Iterator[Any]:
    """Run the test with torch's default dtype set to float64; yields `torch.float64`."""
    import torch

    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield torch.float64
    finally:
        torch.set_default_dtype(saved)


@pytest.fixture
def fresh_registry() -> Iterator[Any]:
    """A registry loaded afresh (core plus installed plugins, honouring FLOWFORGE_PLUGINS)."""
    from flowforge import registry

    with registry.using(registry.load()) as reg:
        yield reg


@pytest.fixture(autouse=True)
def _flowforge_reset_registry() -> Iterator[None]:
    """Forget the process-wide registry after each test, so no registry state leaks."""
    yield
    # Only where flowforge's registry was imported at all: other projects pay nothing.
    module = sys.modules.get("flowforge.registry")
    if module is not None:
        module.reset()
