"""The error hierarchy: every user mistake surfaces as one of these, with a message giving the fix.

The CLI prints a `FlowforgeError` as its message alone (no traceback) and exits non-zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class FlowforgeError(Exception):
    """Base of all flowforge errors; the message is written for the user."""


class SpecError(FlowforgeError):
    """A spec (or component parameters) failed validation; holds every problem found.

    Each issue is `(location, message)` with a dotted location such as `train.lr`.
    """

    def __init__(self, issues: Iterable[tuple[str, str]], source: str | None = None):
        self.issues: list[tuple[str, str]] = list(issues)
        self.source = source
        super().__init__(self.format())

    def format(self) -> str:
        head = f"{self.source}: " if self.source else ""
        lines = [f"{loc or '<root>'}: {msg}" for loc, msg in self.issues]
        if len(lines) == 1:
            return head + lines[0]
        return head + f"{len(lines)} problems\n" + "\n".join(f"  {line}" for line in lines)

    def prefixed(self, prefix: str) -> SpecError:
        """The same issues with `prefix.` put before every location (for nested validation)."""
        return SpecError(
            [(f"{prefix}.{loc}" if loc else prefix, msg) for loc, msg in self.issues], self.source
        )


class PluginError(FlowforgeError):
    """A plugin is broken or clashes with another (for example a duplicate component name)."""


class MissingDependencyError(FlowforgeError, ImportError):
    """An optional dependency is not installed; the message gives the pip command."""

    def __init__(self, package: str, feature: str, install: str | None = None):
        self.package = package
        hint = install or f"pip install {package}"
        super().__init__(
            f"{feature} needs the package '{package}', which is not installed. Fix: {hint}"
        )


class InvalidArgumentError(FlowforgeError, ValueError):
    """An argument to a public function is out of its valid range or the wrong shape."""


class NumericalError(FlowforgeError, FloatingPointError):
    """A solve or a training step produced NaN or Inf."""


class CheckpointError(FlowforgeError):
    """A checkpoint is missing, corrupt, or does not match the model it is loaded into."""


class ContractError(FlowforgeError, AssertionError):
    """A component breaks a property every component of its kind must have (raised by the
    contract checks of `flowforge.testing`; an AssertionError too, so test runners report it as
    a failed check)."""


@dataclass(frozen=True)
class UnknownName:
    """Helper for the 'did you mean' part of unknown-name messages."""

    kind: str
    name: str
    choices: Sequence[str]

    def message(self) -> str:
        import difflib

        close = difflib.get_close_matches(self.name, list(self.choices), n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        installed = ", ".join(sorted(self.choices)) or "none"
        return f"unknown {self.kind} {self.name!r}.{hint} Installed: {installed}."
