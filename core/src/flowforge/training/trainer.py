"""The training loop: regression on path samples, AdamW, gradient clipping, EMA, resumable state.

A step draws data, times (`train.time_sampler`) and noise, pairs noise with data
(`train.coupling`) and minimises the weighted regression loss (`train.loss`).
Every random draw of a step (data indices, times, noise, coupling) comes from one dedicated
`torch.Generator`, and `state_dict` holds it with the model, EMA, optimizer, step counter and the
global RNGs, so on CPU a run resumed from any checkpoint is bit-exact with an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from flowforge import registry
from flowforge.errors import CheckpointError, InvalidArgumentError, NumericalError
from flowforge.paths.base import AffinePath, check_prediction
from flowforge.spec.models import TrainSpec
from flowforge.training import rng
from flowforge.training.couplings.base import Coupling
from flowforge.training.ema import EMA
from flowforge.training.losses import regression_loss
from flowforge.training.time_samplers.base import TimeSampler

MAX_NONFINITE = 20


@dataclass(frozen=True)
class TrainSummary:
    """What `Trainer.fit` did: final step, last logged loss, skipped steps, interruption, time."""

    step: int
    loss: float | None
    nonfinite: int
    interrupted: bool
    seconds: float


class Trainer:
    """Trains `model` to predict `prediction` on `path` from data `(N, *data_shape)` in model space.

    A step draws a batch of data, `t` on `t_span` (default the path's) from the time sampler
    and Gaussian noise from `generator`, pairs them with the coupling and minimises
    `regression_loss` with `config.loss`. The time sampler and coupling are built from
    `config.time_sampler` / `config.coupling` unless given; `labels (N,)` (integer classes of
    the data) are needed by class-conditional couplings. A step whose loss or gradient is
    NaN/Inf is skipped and counted; `max_nonfinite` of them in a row raise `NumericalError`.

    >>> trainer = Trainer(model, CondOT(), "velocity", train_z, spec.train, generator=gen)
    >>> summary = trainer.fit(on_checkpoint=lambda step: ckpts.save(step, trainer.state_dict()))
    """

    def __init__(
        self,
        model: nn.Module,
        path: AffinePath,
        prediction: str,
        data: Tensor,
        config: TrainSpec,
        *,
        generator: torch.Generator,
        t_span: tuple[float, float] | None = None,
        max_nonfinite: int = MAX_NONFINITE,
        labels: Tensor | None = None,
        time_sampler: TimeSampler | None = None,
        coupling: Coupling | None = None,
    ):
        self.model = model
        self.path = path
        self.prediction = check_prediction(prediction)
        self.data = data
        self.config = config
        self.time_sampler = time_sampler or registry.create(
            "time_sampler", config.time_sampler.name, **config.time_sampler.params
        )
        self.coupling = coupling or registry.create(
            "coupling", config.coupling.name, **config.coupling.params
        )
        self.labels = self._check_labels(labels, data)
        self.generator = generator
        self.t_span = tuple(path.t_span if t_span is None else t_span)
        self.max_nonfinite = max_nonfinite
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.ema = EMA(model, config.ema_decay)
        self.step = 0
        self.nonfinite = 0
        self._nonfinite_run = 0
        self._window = [0.0, 0]

    def _check_labels(self, labels: Tensor | None, data: Tensor) -> Tensor | None:
        if labels is None:
            if self.coupling.needs_labels:
                raise InvalidArgumentError(
                    f"train.coupling {self.config.coupling.name!r} pairs noise and data within "
                    "each class, but the data has no labels; use a dataset with labels, or "
                    "train.coupling: exact_ot"
                )
            return None
        if labels.shape != (data.shape[0],) or labels.is_floating_point():
            raise InvalidArgumentError(
                f"labels must be integers of shape ({data.shape[0]},), one per data point; got "
                f"{labels.dtype} of shape {tuple(labels.shape)}"
            )
        return labels.to(data.device)

    def train_step(self) -> float | None:
        """One optimizer step; returns the loss, or None if it was skipped as non-finite."""
        batch = self.config.batch_size
        idx = torch.randint(
            0, self.data.shape[0], (batch,), generator=self.generator, device=self.data.device
        )
        x_1 = self.data[idx]
        t = self.time_sampler.sample(
            batch, self.path, generator=self.generator, like=x_1, t_span=self.t_span
        )
        x_0 = torch.randn(x_1.shape, generator=self.generator, device=x_1.device, dtype=x_1.dtype)
        labels = None if self.labels is None else self.labels[idx]
        pairs = self.coupling.pair(x_0, x_1, generator=self.generator, labels=labels)
        self.step += 1
        self.optimizer.zero_grad(set_to_none=True)
        loss = regression_loss(
            self.model,
            self.path,
            self.prediction,
            pairs.x_0,
            pairs.x_1,
            t,
            self.config.loss,
            pairs.weight,
        )
        value = float(loss.detach())
        if math.isfinite(value):
            loss.backward()
            if not self._gradients_finite():
                value = math.nan
        if not math.isfinite(value):
            self.optimizer.zero_grad(set_to_none=True)
            self._skip()
            return None
        self.optimizer.step()
        self.ema.update(self.model)
        self._nonfinite_run = 0
        self._window[0] += value
        self._window[1] += 1
        return value

    def _gradients_finite(self) -> bool:
        """Clip to `grad_clip` (if set) and report whether the total gradient norm is finite."""
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        return math.isfinite(float(norm))

    def _skip(self) -> None:
        self.nonfinite += 1
        self._nonfinite_run += 1
        if self._nonfinite_run >= self.max_nonfinite:
            raise NumericalError(
                f"training stopped at step {self.step}: the loss or its gradient was NaN/Inf in "
                f"{self._nonfinite_run} steps in a row ({self.nonfinite} in total). Usual fixes: "
                "lower train.lr, set train.grad_clip, predict 'velocity' or 'noise' instead of "
                "'score' (its target is unbounded where sigma(t) -> 0), or check the data for "
                "NaN/Inf."
            )

    def take_log(self) -> float | None:
        """Mean loss of the finite steps since the last call (None if there were none)."""
        total, count = self._window
        self._window = [0.0, 0]
        return total / count if count else None

    def fit(
        self,
        *,
        on_step: Callable[[int, float | None], None] | None = None,
        on_log: Callable[[dict[str, Any]], None] | None = None,
        on_checkpoint: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> TrainSummary:
        """Train until `config.steps`; checkpoint every `checkpoint_every` steps and at the end.

        `should_stop()` is checked before each step: when true, a checkpoint is written and the
        summary says `interrupted=True` (signal handlers use it for a clean Ctrl-C).
        """
        start, last = time.perf_counter(), None
        self.model.train()
        cfg = self.config
        while self.step < cfg.steps:
            if should_stop is not None and should_stop():
                if on_checkpoint is not None:
                    on_checkpoint(self.step)
                return TrainSummary(
                    self.step, last, self.nonfinite, True, time.perf_counter() - start
                )
            loss = self.train_step()
            if on_step is not None:
                on_step(self.step, loss)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                mean = self.take_log()
                last = mean if mean is not None else last
                if on_log is not None:
                    on_log({"step": self.step, "loss": mean, "nonfinite": self.nonfinite})
            if on_checkpoint is not None and (
                self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps
            ):
                on_checkpoint(self.step)
        return TrainSummary(self.step, last, self.nonfinite, False, time.perf_counter() - start)

    def state_dict(self) -> dict[str, Any]:
        """Everything a bit-exact resume needs, as tensors and plain values."""
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng.capture(self.generator),
            "nonfinite": [self.nonfinite, self._nonfinite_run],
            "loss_window": list(self._window),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict`; a checkpoint of another model raises `CheckpointError`."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.step = int(state["step"])
            self.nonfinite, self._nonfinite_run = (int(v) for v in state["nonfinite"])
            self._window = [float(state["loss_window"][0]), int(state["loss_window"][1])]
            self.ema.load_state_dict(state["ema"])
            rng.restore(self.generator, state["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise CheckpointError(
                f"the checkpoint does not match this model or trainer: {str(err).splitlines()[0]}. "
                "It was written by a run with a different model spec; resume that run's own spec "
                "or start a new run."
            ) from None
