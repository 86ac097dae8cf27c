"""Tasks: what `flowforge run` does with a spec (core ships `generate`)."""

from flowforge.tasks.base import Task, TaskContext
from flowforge.tasks.generate import Generate

__all__ = ["Generate", "Task", "TaskContext"]
