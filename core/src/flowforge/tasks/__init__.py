"""Tasks: what `flowforge run` does with a spec (core ships `generate` and `inverse_problem`)."""

from flowforge.tasks.base import Task, TaskContext
from flowforge.tasks.generate import Generate
from flowforge.tasks.inverse_problem import InverseProblem

__all__ = ["Generate", "InverseProblem", "Task", "TaskContext"]
