"""Training: regression losses per prediction kind, EMA, checkpoints, RNG state and the loop."""

from flowforge.training.checkpoint import CheckpointDir, load_checkpoint, save_checkpoint
from flowforge.training.ema import EMA
from flowforge.training.losses import regression_loss, regression_target, uniform_times
from flowforge.training.trainer import MAX_NONFINITE, Trainer, TrainSummary

__all__ = [
    "EMA",
    "MAX_NONFINITE",
    "CheckpointDir",
    "TrainSummary",
    "Trainer",
    "load_checkpoint",
    "regression_loss",
    "regression_target",
    "save_checkpoint",
    "uniform_times",
]
