"""Testing kit for flowforge and its plugins: contract mixins, fakes and pytest fixtures.

A plugin's tests subclass one contract mixin per component and name the component under test;
the mixin's test methods check the properties every component of that kind must have:

    from flowforge.testing import SolverContract

    class TestRalston(SolverContract):
        name = "ralston"          # a registered solver; or override the `component` fixture

Names are imported lazily, so that loading the pytest plugin (`flowforge.testing.pytest_plugin`)
stays cheap. The checks raise `flowforge.errors.ContractError` through `require`, never `assert`,
so they hold under `python -O` too.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Contract": "flowforge.testing.contracts.base",
    "registered": "flowforge.testing.contracts.base",
    "PathContract": "flowforge.testing.contracts.path",
    "SolverContract": "flowforge.testing.contracts.solver",
    "OperatorContract": "flowforge.testing.contracts.operator",
    "GuidanceContract": "flowforge.testing.contracts.guidance",
    "ModelFactoryContract": "flowforge.testing.contracts.model",
    "PosteriorProblem": "flowforge.testing.posterior",
    "mixture_problem": "flowforge.testing.posterior",
    "TimeSamplerContract": "flowforge.testing.contracts.time_sampler",
    "CouplingContract": "flowforge.testing.contracts.coupling",
    "CountingField": "flowforge.testing.fakes",
    "FakeEntryPoint": "flowforge.testing.fakes",
    "plugin_module": "flowforge.testing.fakes",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'flowforge.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
