"""Training: objectives per prediction kind, time samplers, couplings, EMA, checkpoints, loop;
reflow pairs and progressive distillation for few-step sampling."""

from flowforge.training.checkpoint import CheckpointDir, load_checkpoint, save_checkpoint
from flowforge.training.distillation import Distillation, Teacher, ddim_data_target, refine
from flowforge.training.ema import EMA
from flowforge.training.losses import (
    per_sample_loss,
    pseudo_huber,
    regression_loss,
    regression_target,
    weighted_error,
)
from flowforge.training.lr_schedule import lr_factor
from flowforge.training.network import Network
from flowforge.training.objective import Batch, Objective, split_batch
from flowforge.training.reflow import Pairs, generate_pairs
from flowforge.training.regression import Regression
from flowforge.training.self_conditioning import SelfConditioned, takes_self_condition
from flowforge.training.trainer import Trainer, TrainSummary
from flowforge.training.weighting import WEIGHTINGS, data_error_scale, data_weight, loss_weight

__all__ = [
    "EMA",
    "WEIGHTINGS",
    "Batch",
    "CheckpointDir",
    "Distillation",
    "Network",
    "Objective",
    "Pairs",
    "Regression",
    "SelfConditioned",
    "Teacher",
    "TrainSummary",
    "Trainer",
    "data_error_scale",
    "data_weight",
    "ddim_data_target",
    "generate_pairs",
    "load_checkpoint",
    "loss_weight",
    "lr_factor",
    "per_sample_loss",
    "pseudo_huber",
    "refine",
    "regression_loss",
    "regression_target",
    "save_checkpoint",
    "split_batch",
    "takes_self_condition",
    "weighted_error",
]
