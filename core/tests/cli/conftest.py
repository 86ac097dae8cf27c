"""Fixtures for CLI tests: a core-only registry, and the real `flowforge` entry point."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flowforge import registry
from flowforge.cli import main


@pytest.fixture
def core_only() -> Iterator[registry.Registry]:
    """Core's own components only (no installed plugin), current during the test."""
    with registry.using(registry.load(allowed=set())) as reg:
        yield reg


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run the real `flowforge` entry point; returns `(exit code, stdout, stderr)`."""

    def run(*args: object) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return exit_info.value.code, out, err

    return run
