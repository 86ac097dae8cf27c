"""Core test configuration: the real CLI entry point as a fixture; `pytester` for plugin tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flowforge.cli import main

pytest_plugins = ["pytester"]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run the real `flowforge` entry point; returns `(exit code, stdout, stderr)`."""

    def run(*args: object) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return exit_info.value.code, out, err

    return run
