"""Experiment runs: the run directory, the runner, and what a run writes (samples, plots, report).

The runner (`flowforge.experiment.runner`) is imported on demand by the CLI. (Not named `runs`:
the repository ignores every `runs/` directory.)
"""

from flowforge.experiment.directory import RunDir
from flowforge.experiment.signals import RunInterrupted, StopOnSignal

__all__ = ["RunDir", "RunInterrupted", "StopOnSignal"]
