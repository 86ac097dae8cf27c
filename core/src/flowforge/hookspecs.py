"""Hook specifications: how a plugin contributes components and CLI commands.

Every hook is callback style: the plugin calls `register(name, factory, params=None, summary=None)`
once per component. `factory` is a frozen dataclass (its fields, validated by pydantic, are the
component's parameters) or any callable, with `params` a pydantic model of its keyword arguments.

    import flowforge

    @flowforge.hookimpl
    def register_solvers(register):
        register("my_euler", MyEuler)
"""

from __future__ import annotations

import pluggy

PROJECT = "flowforge"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_paths(register):
    """Register probability paths (`flowforge.paths.Path` subclasses)."""


@hookspec
def register_solvers(register):
    """Register solvers (`flowforge.solvers.Solver` subclasses)."""


@hookspec
def register_guidance(register):
    """Register guidance methods (`flowforge.guidance.Guidance` subclasses)."""


@hookspec
def register_models(register):
    """Register model factories returning an `nn.Module` (a vector field)."""


@hookspec
def register_datasets(register):
    """Register datasets (`flowforge.data.Dataset` subclasses)."""


@hookspec
def register_metrics(register):
    """Register evaluation metrics (`flowforge.metrics.Metric` subclasses)."""


@hookspec
def register_operators(register):
    """Register forward operators for inverse problems (`flowforge.operators.Operator`)."""


@hookspec
def register_tasks(register):
    """Register tasks: what `flowforge run` does with a spec (`flowforge.tasks.Task`)."""


@hookspec
def register_time_samplers(register):
    """Register training-time distributions (`flowforge.training.time_samplers.TimeSampler`)."""


@hookspec
def register_couplings(register):
    """Register noise-data couplings for training (`flowforge.training.couplings.Coupling`)."""


@hookspec
def register_commands(cli):
    """Add click commands to the `flowforge` CLI group `cli`."""
