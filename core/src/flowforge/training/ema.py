"""Exponential moving average of a model's weights: smoother weights to sample with."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from flowforge.errors import CheckpointError


class EMA:
    """Keeps `shadow = decay * shadow + (1 - decay) * weights` after every optimizer step.

    `decay = 0` disables averaging: the shadow is the live model. Buffers are copied as they are.

    >>> ema = EMA(model, decay=0.999)
    >>> ema.update(model)                       # after optimizer.step()
    >>> with ema.applied(model): samples = ...  # sample with the averaged weights
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.shadow: dict[str, Tensor] = {
            k: v.detach().clone() for k, v in model.state_dict().items()
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for name, value in model.state_dict().items():
            shadow = self.shadow[name]
            if self.decay and value.is_floating_point():
                shadow.lerp_(value, 1.0 - self.decay)
            else:
                shadow.copy_(value)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily load the averaged weights into `model`; restores the live ones after."""
        live = copy.deepcopy(model.state_dict())
        model.load_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.load_state_dict(live)

    def state_dict(self) -> dict[str, Tensor]:
        return {k: v.clone() for k, v in self.shadow.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if set(state) != set(self.shadow):
            raise CheckpointError(
                "the checkpoint's EMA weights do not match the model (different parameter names); "
                "was it written by a run with another model spec?"
            )
        for k, v in state.items():
            if v.shape != self.shadow[k].shape:
                raise CheckpointError(
                    f"EMA weight {k!r} has shape {tuple(v.shape)} in the checkpoint but "
                    f"{tuple(self.shadow[k].shape)} in the model"
                )
            self.shadow[k].copy_(v)
