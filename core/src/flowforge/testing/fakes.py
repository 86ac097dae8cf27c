"""Test doubles: a call-counting vector field and stand-ins for installed plugins.

`FakeEntryPoint` lets a test load any module as if it were an installed plugin, without
installing anything: `registry.load(entry_points=[FakeEntryPoint("mine", module)])`.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


class CountingField:
    """Wraps a vector field and counts its calls, independently of the driver's own count.

    >>> f = CountingField(lambda x, t: -x)
    >>> flowforge.sample(f, x, path="cond_ot", prediction="velocity", solver="rk4", nfe=8)
    >>> f.calls  # 8
    """

    def __init__(self, field: Callable[..., Tensor]):
        self.field = field
        self.calls = 0

    def __call__(self, x_t: Tensor, t: Tensor, **cond: Any) -> Tensor:
        self.calls += 1
        return self.field(x_t, t, **cond)


@dataclass(frozen=True)
class FakeDistribution:
    """The `name` and `version` of the distribution a fake entry point claims to come from."""

    name: str
    version: str = "0.0.0"


@dataclass(frozen=True)
class FakeEntryPoint:
    """An entry point of group `flowforge` whose `load()` returns `plugin` (or calls it).

    `plugin` is the plugin object (usually a module with `@flowforge.hookimpl` functions) or a
    zero-argument callable returning it, which may raise to simulate a broken plugin.

    >>> ep = FakeEntryPoint("ralston", flowforge_ralston, dist_name="flowforge-ralston")
    >>> reg = registry.load(allowed=None, entry_points=[ep])
    """

    name: str
    plugin: object
    dist_name: str = ""
    version: str = "0.0.0"
    dist: FakeDistribution = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "dist", FakeDistribution(self.dist_name or self.name, self.version)
        )

    def load(self) -> object:
        if isinstance(self.plugin, types.FunctionType):
            return self.plugin()
        return self.plugin


def plugin_module(name: str, **hooks: Callable[..., Any]) -> types.ModuleType:
    """A module named `name` holding `hooks` (functions decorated with `flowforge.hookimpl`)."""
    module = types.ModuleType(name)
    for attr, value in hooks.items():
        setattr(module, attr, value)
    return module
