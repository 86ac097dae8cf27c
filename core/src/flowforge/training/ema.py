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
    With `warmup = W > 0` the n-th update uses `min(decay, (n - 1) / (n - 1 + W))`: the first
    update copies the weights (the random initialisation is forgotten at once) and the average
    then spans about `1 + (n - 1) / W` steps until that reaches `1 / (1 - decay)`. `W = 1` is
    the running mean of all weights so far; Song et al.'s `(1 + n) / (10 + n)` is close to
    `W = 9`. The decay is a function of the step alone, so a resumed run continues the same
    average.

    >>> ema = EMA(model, decay=0.999, warmup=10)
    >>> ema.update(model, step)                 # after optimizer.step()
    >>> with ema.applied(model): samples = ...  # sample with the averaged weights
    """

    def __init__(self, model: nn.Module, decay: float, warmup: int = 0):
        self.decay = float(decay)
        self.warmup = int(warmup)
        self.shadow: dict[str, Tensor] = {
            k: v.detach().clone() for k, v in model.state_dict().items()
        }
        self._cached: tuple | None = None

    def decay_at(self, step: int) -> float:
        """The decay of the update after optimizer step `step` (1, 2, ...)."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (step - 1) / (step - 1 + self.warmup))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Average in the weights of `model` after optimizer step `step`: one multi-tensor lerp
        per dtype (three passes over the weights), buffers that are not floats copied."""
        decay = self.decay_at(step)
        groups, copies = self._plan(model, bool(decay))
        if copies[0]:
            torch._foreach_copy_(*copies)
        for shadows, values in groups.values():
            torch._foreach_lerp_(shadows, values, 1.0 - decay)

    def _plan(self, model: nn.Module, average: bool) -> tuple[dict, tuple[list, list]]:
        """(shadow, live) tensor lists of `model`: one group per floating dtype to average (one
        multi-tensor op each: a kernel launch per parameter would dominate the step of a small
        model on a GPU), and the rest to copy. Kept when the state is parameters alone (a module
        may reassign a buffer); parameters stay the same tensors, as the optimizer's do."""
        key = (model, average)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        groups: dict[torch.dtype, tuple[list[Tensor], list[Tensor]]] = {}
        copies: tuple[list[Tensor], list[Tensor]] = ([], [])
        state = model.state_dict()
        for name, value in state.items():
            if average and value.is_floating_point():
                shadows, values = groups.setdefault(value.dtype, ([], []))
            else:
                shadows, values = copies
            shadows.append(self.shadow[name])
            values.append(value)
        if set(state) == {name for name, _ in model.named_parameters(remove_duplicate=False)}:
            self._cached = (key, (groups, copies))
        return groups, copies

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
