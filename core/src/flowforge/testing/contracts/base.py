"""What every contract mixin shares: how a subclass says which component is under test.

Three ways, from least to most code:
- name a registered component: `name = "rk4"` (and optionally `params = {...}`);
- run every registered one: `@pytest.mark.parametrize("component_name", registered("solver"))`;
- build it by hand: override the `component` fixture.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from flowforge import registry
from flowforge.registry import Component


def registered(kind: str) -> list[Any]:
    """Values for `pytest.mark.parametrize("component_name", ...)`: every registered `kind`.

    With none registered, one placeholder that is skipped with a reason (instead of pytest's
    generic empty-parameter-set skip), so a missing kind shows up in the report.
    """
    names = registry.names(kind)
    if names:
        return names
    return [
        pytest.param(None, id="none", marks=pytest.mark.skip(reason=f"no {kind} is registered"))
    ]


class Contract:
    """Base of the contract mixins; the component under test is the `component` fixture.

    Class names of the mixins do not start with `Test`, so pytest collects only their subclasses.
    """

    kind: ClassVar[str]
    name: ClassVar[str | None] = None
    params: ClassVar[Mapping[str, Any]] = {}

    @pytest.fixture
    def component_name(self) -> str | None:
        """The registered name under test (`name`), unless a subclass parametrizes it."""
        return self.name

    @pytest.fixture
    def registered_component(self, component_name: str | None) -> Component:
        """The registry entry of the component under test; skips tests of hand-built components."""
        if component_name is None:
            pytest.skip(
                f"{type(self).__name__} tests a hand-built {self.kind}, not a registered one"
            )
        return registry.get(self.kind, component_name)

    @pytest.fixture
    def component(self, component_name: str | None) -> Any:
        """The component under test: the registered `name` built from `params`."""
        if component_name is None:
            pytest.fail(
                f"{type(self).__name__}: set `name = '<registered {self.kind} name>'` or override "
                "the `component` fixture"
            )
        return registry.create(self.kind, component_name, **self.params)
