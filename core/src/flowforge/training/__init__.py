"""Training: objectives per prediction kind, time samplers, couplings, EMA, checkpoints, loop."""

from flowforge.training.checkpoint import CheckpointDir, load_checkpoint, save_checkpoint
from flowforge.training.ema import EMA
from flowforge.training.losses import (
    per_sample_loss,
    pseudo_huber,
    regression_loss,
    regression_target,
)
from flowforge.training.trainer import MAX_NONFINITE, Trainer, TrainSummary
from flowforge.training.weighting import WEIGHTINGS, data_error_scale, data_weight, loss_weight

__all__ = [
    "EMA",
    "MAX_NONFINITE",
    "WEIGHTINGS",
    "CheckpointDir",
    "TrainSummary",
    "Trainer",
    "data_error_scale",
    "data_weight",
    "load_checkpoint",
    "loss_weight",
    "per_sample_loss",
    "pseudo_huber",
    "regression_loss",
    "regression_target",
    "save_checkpoint",
]
