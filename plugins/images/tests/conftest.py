"""A digits prior trained once per session: class-conditional U-Net on scikit-learn's 8x8 digits.

Several slow tests (FD_lenet, CFG, inversion, restoration) share it, so the training cost of a
few seconds is paid once.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from flowforge_images.data import Digits
from flowforge_images.models import UNetParams, build_unet
from torch import nn

from flowforge.data.standardize import Standardizer
from flowforge.paths import CondOT
from flowforge.spec.models import TrainSpec
from flowforge.training.regression import Regression
from flowforge.training.trainer import Trainer

STEPS = 600


@dataclass
class Prior:
    model: nn.Module
    untrained: nn.Module
    standardizer: Standardizer
    path: CondOT
    data: Digits


def digits_unet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    params = UNetParams(size="small", channels=16, num_classes=10, attention=True)
    return build_unet(params, data_shape=(1, 8, 8))


@pytest.fixture(scope="session")
def digits_prior() -> Prior:
    """The U-Net trained for `STEPS` steps (velocity, cond-OT, label dropout 0.1) and its
    untrained twin."""
    data = Digits()
    train, labels = data.splits()["train"], data.labels()["train"]
    st = data.fit_standardizer(train)
    path = CondOT()
    model, untrained = digits_unet(), digits_unet()
    objective = Regression(path, "velocity", st.encode(train), labels=labels, label_dropout=0.1)
    config = TrainSpec(steps=STEPS, batch_size=128, lr=2e-3, ema_decay=0.99, lr_schedule="cosine")
    trainer = Trainer(model, objective, config, generator=torch.Generator().manual_seed(0))
    trainer.fit()
    model.load_state_dict(trainer.ema.state_dict())
    return Prior(model.eval(), untrained.eval(), st, path, data)
