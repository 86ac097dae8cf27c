"""The training loop: an objective's batches, AdamW, clipping, accumulation, EMA, resumable state.

A step draws its whole batch from the objective (`Objective.draw`, the one place where a step's
batch and randomness are produced), splits it into `train.grad_accumulation` micro-batches whose
gradients add up to the whole batch's, clips, and takes a fused AdamW step, a learning-rate
schedule step and an EMA update. Every random draw comes from one dedicated `torch.Generator`,
and `state_dict` holds it with the model, EMA, optimizer, scheduler, step counter and the global
RNGs, so on CPU a run resumed from any checkpoint is bit-exact with an uninterrupted one.

No host synchronisation per step: the loss, the NaN/Inf verdict and the counters stay on the
device. A step whose loss or gradient is not finite is skipped on the device (fused AdamW's
`found_inf`, the mechanism of `torch.amp.GradScaler`): the weights keep their values, so the
EMA, which averages them in after every step, stays finite without a mask of its own. The host
reads the counters every `min(log_every, max_nonfinite)` steps: to log the mean loss and to stop
once `train.max_nonfinite` steps in a row were skipped.

With `train.skip_spikes = k`, a finite step whose loss or gradient norm (before clipping) is
above k times the running mean of the accepted steps' (about the last 100) is skipped the same
way and counted apart: one outlier batch (a heavy-tailed loss weight, a rare input the network
blows up on) then never reaches the weights or Adam's moments, which a clipped gradient still
would: clipping bounds the step's norm, not the share of it that lands on a few weights, and
Adam rescales those by their own small history.

Drawing ahead (CUDA, `train.draw_ahead`, off by default): once a step's kernels are queued,
the next step's batch is drawn on a side stream, so host work inside a draw (an OT coupling's
assignments, its host reads) runs while the GPU trains instead of between steps. The generator
advances in the same order, so the batches are the same; a checkpoint holds the generator's
state from before the batch drawn ahead, which a resumed run draws again.

Data-parallel (`torchrun`, or any initialised process group: `flowforge.distributed`): every
process draws the same whole batch from an identical generator and keeps its own rows
(`Objective.draw(part=...)`), the model is wrapped in `DistributedDataParallel`, which averages
the gradients across processes after the last micro-batch's backward pass (earlier ones run
under `no_sync`), and the logged loss is averaged too. So `W` processes take the steps one
process takes on the same global batch, up to float rounding, and keep identical generators,
weights and counters: the main process alone logs and writes checkpoints, and every process can
resume from them.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from flowforge.distributed.world import World, current
from flowforge.errors import CheckpointError, InvalidArgumentError, NumericalError
from flowforge.spec.models import TrainSpec
from flowforge.training import rng
from flowforge.training.ema import EMA
from flowforge.training.lr_schedule import lr_factor
from flowforge.training.network import Network, check_bf16
from flowforge.training.objective import Batch, Objective, split_batch

# Device-side counters, one float64 vector so that reading them is one host transfer.
_LOSS_SUM, _LOSS_STEPS, _SKIPPED, _STREAK = range(4)
# The spike guard's device state: spikes skipped, running means of the accepted steps' loss and
# gradient norm, accepted steps, spikes in the current run of skipped steps.
_SPIKES, _MEAN_LOSS, _MEAN_NORM, _SEEN, _STREAK_SPIKES = range(5)
_SPIKE_MEAN_RATE = 0.01  # the running mean's weight of each accepted step (about 100 steps)


@dataclass(frozen=True)
class _Ahead:
    """A batch drawn before its step, and the trainer generator's state before that draw."""

    before: Tensor
    batch: Batch


@dataclass(frozen=True)
class TrainSummary:
    """What `Trainer.fit` did: final step, last logged loss, NaN/Inf steps skipped,
    interruption, time, and spikes skipped (`train.skip_spikes`)."""

    step: int
    loss: float | None
    nonfinite: int
    interrupted: bool
    seconds: float
    spikes: int = 0


class Trainer:
    """Trains `model` on `objective` as `config` (a spec's `train` section) says.

    `generator` (on the model's device) makes every random draw of training. `span = (start,
    end)`: the steps this trainer covers (default `(0, config.steps)`); the learning-rate
    schedule runs over them and `fit` stops at `end` (progressive distillation trains one round
    per span). `world`: the processes of a data-parallel run (default: the initialised process
    group, else one process); `config.batch_size` is the global batch, split evenly among them.

    >>> objective = Regression.from_spec(CondOT(), "velocity", train_z, spec.train)
    >>> trainer = Trainer(model, objective, spec.train, generator=gen)
    >>> summary = trainer.fit(on_checkpoint=lambda step: ckpts.save(step, trainer.state_dict()))
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        config: TrainSpec,
        *,
        generator: torch.Generator,
        span: tuple[int, int] | None = None,
        world: World | None = None,
    ):
        self.model = model
        self.objective = objective
        self.config = config
        self.generator = generator
        start, end = (0, config.steps) if span is None else span
        if not 0 <= start <= end:
            raise InvalidArgumentError(f"span must be (start, end) with 0 <= start <= end: {span}")
        self.span = (start, end)
        self.device = _device(model)
        if config.precision == "bf16":
            check_bf16(self.device)
        self.world = world or current()
        self.part = self._part(config)
        self.ddp = self._wrap(model)
        self.network = Network(
            self.ddp or model, config.precision, config.compile, config.compile_mode
        )
        self.params = [p for p in model.parameters() if p.requires_grad]
        # fused: a step flagged by `found_inf` is skipped on the device (no host sync)
        self.optimizer = torch.optim.AdamW(
            self.params, lr=config.lr, weight_decay=config.weight_decay, fused=True
        )
        factor = lr_factor(config.lr_schedule, config.lr_warmup, end - start)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.ema = EMA(model, config.ema_decay, config.ema_warmup)
        self._clip = config.grad_clip
        self.step = start
        self._tally = torch.zeros(4, dtype=torch.float64, device=self.device)
        # rows of `_count`'s update: [loss, 1, 0, 0] after a finite step, [0, 0, 1, 1] else
        const = [[1.0, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1]]
        self._unit, self._good, self._keep, self._bad = torch.tensor(
            const, dtype=torch.float64, device=self.device
        )
        self._found_inf = torch.zeros((), dtype=torch.float32, device=self.device)
        self._spikes = torch.zeros(5, dtype=torch.float64, device=self.device)
        use_side = config.draw_ahead and self.device.type == "cuda"
        self._side = torch.cuda.Stream(self.device) if use_side else None
        self._side_waited = False
        self._ahead: _Ahead | None = None

    def _part(self, config: TrainSpec) -> slice | None:
        """This process's rows of the global batch (None: all of them, one process)."""
        if not self.world.active:
            return None
        if "part" not in inspect.signature(self.objective.draw).parameters:
            raise InvalidArgumentError(
                f"{type(self.objective).__name__}.draw(n, generator) takes no `part`, so it "
                f"cannot be trained by {self.world.size} processes: add `part: slice | None = "
                "None` and return those rows of the batch drawn for all n samples "
                "(flowforge.training.Objective.draw), or train in one process"
            )
        part = self.world.batch_part(config.batch_size)
        local = part.stop - part.start
        if local % config.grad_accumulation:
            raise InvalidArgumentError(
                f"train.grad_accumulation ({config.grad_accumulation}) must divide each "
                f"process's share of the batch: train.batch_size {config.batch_size} / "
                f"{self.world.size} processes = {local}"
            )
        return part

    def _wrap(self, model: nn.Module) -> DistributedDataParallel | None:
        """`model` in `DistributedDataParallel` when several processes train it."""
        if not self.world.active:
            return None
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    # ---- one step -------------------------------------------------------------------------

    def draw_batch(self) -> Batch:
        """This process's rows of the next step's batch: every random draw of the step happens
        here (for the whole global batch, on every process)."""
        if self.part is None:
            return self.objective.draw(self.config.batch_size, self.generator)
        return self.objective.draw(self.config.batch_size, self.generator, part=self.part)

    def _take_batch(self) -> Batch:
        """This step's batch: the one drawn ahead on the side stream (made visible to the
        current stream, its memory kept until this stream is done with it), else drawn now."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return self.draw_batch()
        current = torch.cuda.current_stream(self.device)
        current.wait_stream(self._side)
        for value in ahead.batch.values():
            if isinstance(value, Tensor) and value.is_cuda:
                value.record_stream(current)
        return ahead.batch

    def _draw_next(self) -> None:
        """Draw the next step's batch on the side stream (CUDA with `train.draw_ahead`).

        The side stream waits for the current one only the first time, for tensors made
        before training (an objective's data); draws never read the trained model.
        """
        if self._side is None or self.step >= self.span[1]:
            return
        if not self._side_waited:
            self._side.wait_stream(torch.cuda.current_stream(self.device))
            self._side_waited = True
        before = self.generator.get_state()
        with torch.cuda.stream(self._side):
            self._ahead = _Ahead(before, self.draw_batch())

    def train_step(self) -> None:
        """One optimizer step on one batch; a non-finite step is skipped (on the device)."""
        batch = self._take_batch()
        self.step += 1
        loss = self.world.mean_(self._backward(batch))
        # The gradient of the whole batch is complete here (DDP averaged it across processes
        # in the last micro-batch's backward pass), so clipping sees the global gradient.
        norm = self._clip_gradients()
        ok = torch.isfinite(loss) & torch.isfinite(norm)
        if self.config.skip_spikes is not None:
            ok = self._calm(loss, norm, ok)
        # fused AdamW reads `found_inf` as torch.amp.GradScaler sets it: 1 skips the update
        # and the step count of every parameter, on the device
        self.optimizer.found_inf = torch.logical_not(ok, out=self._found_inf)
        self.optimizer.step()
        self.scheduler.step()
        self.ema.update(self.model, self.step - self.span[0])
        self._count(loss, ok)
        self._draw_next()

    def _backward(self, batch: Batch) -> Tensor:
        """Backpropagate the mean loss of `batch` micro-batch by micro-batch; returns it (0-d).

        The previous step's gradients are released after the first forward pass, just before
        the first backward pass (as in a plain `loss = ...; opt.zero_grad(); loss.backward()`
        loop), so the new gradients take over their blocks. Released before the forward pass,
        they leave on the CPU a free block at the top of glibc's heap that is trimmed and grown
        again every few steps: hundreds of page faults per step, paid inside the matrix
        products' first writes to their outputs.

        Data-parallel: gradients are averaged across processes only in the last micro-batch's
        backward pass (DDP's `no_sync` before it), so accumulation costs one exchange per step.
        """
        total = None
        micros = split_batch(batch, self.config.grad_accumulation)
        size = sum(next(iter(m.values())).shape[0] for m in micros)
        for i, micro in enumerate(micros):
            last = i == len(micros) - 1
            with contextlib.nullcontext() if self.ddp is None or last else self.ddp.no_sync():
                part = self.objective.loss(self.network, micro).sum() / size
                if i == 0:
                    self.optimizer.zero_grad(set_to_none=True)
                part.backward()
            total = part.detach() if total is None else total + part.detach()
        return total

    def _clip_gradients(self) -> Tensor:
        """The total gradient norm (0-d); gradients scaled down to `grad_clip` if it is set.

        As `torch.nn.utils.clip_grad_norm_`, but without its per-tensor device moves (no-ops
        that read as host copies to the CPU host-sync guard).
        """
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return torch.zeros((), device=self.device)
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        if self._clip is not None:
            scale = (self._clip / (norm + 1e-6)).clamp(max=1.0)
            torch._foreach_mul_(grads, scale)
        return norm

    def _calm(self, loss: Tensor, norm: Tensor, finite: Tensor) -> Tensor:
        """Whether a finite step's loss and gradient norm are within `skip_spikes` times the
        running means of the accepted steps' (the first step always is); counts a spike, or
        takes the step into the means."""
        spikes, seen = self._spikes[_SPIKES], self._spikes[_SEEN]
        means = self._spikes[_MEAN_LOSS : _MEAN_NORM + 1]
        values = torch.stack([loss.detach(), norm.detach()]).double()
        within = (values <= self.config.skip_spikes * means).all()
        calm = finite & ((seen == 0) | within)
        spike = finite & ~calm
        updated = torch.where(seen == 0, values, torch.lerp(means, values, _SPIKE_MEAN_RATE))
        in_streak = torch.where(calm, 0.0, self._spikes[_STREAK_SPIKES] + spike)
        self._spikes = torch.cat(
            [
                (spikes + spike)[None],
                torch.where(calm, updated, means),
                (seen + calm)[None],
                in_streak[None],
            ]
        )
        return calm

    def _count(self, loss: Tensor, ok: Tensor) -> None:
        """Add a step to the device counters: loss sum and steps of the log window, skipped
        steps, and the current run of skipped steps (reset by a finite one)."""
        # the sums of `tally * [1, 1, 1, bad] + [where(ok, loss, 0), ok, bad, bad]` in 5 kernels
        # (the products by 0 and 1 are exact, so the sums are the same floats)
        finite = torch.addcmul(
            torch.addcmul(self._good, loss.double(), self._unit), self._tally, self._keep
        )
        self._tally = torch.where(ok, finite, self._tally + self._bad)

    # ---- host reads -----------------------------------------------------------------------

    @property
    def nonfinite(self) -> int:
        """Steps skipped so far because their loss or gradient was NaN/Inf (host reads)."""
        return self._skipped()[0]

    @property
    def spikes(self) -> int:
        """Steps skipped so far as spikes (`train.skip_spikes`; a host read)."""
        return int(self._spikes[_SPIKES].item())

    def _skipped(self) -> tuple[int, int]:
        """(NaN/Inf steps, spikes) skipped so far: the tally counts both."""
        spikes = self.spikes
        return int(self._tally[_SKIPPED].item()) - spikes, spikes

    def check_streak(self) -> None:
        """Raise `NumericalError` if the last `max_nonfinite` or more steps were all skipped."""
        tally = self._tally.tolist()
        streak, total = int(tally[_STREAK]), int(tally[_SKIPPED])
        if streak < self.config.max_nonfinite:
            return
        guard = self._spikes.tolist()
        spikes = int(guard[_SPIKES])
        if guard[_STREAK_SPIKES]:
            raise NumericalError(
                f"training stopped at step {self.step}: {streak} steps in a row were skipped, as "
                f"NaN/Inf or as spikes of the loss or gradient norm above train.skip_spikes "
                f"({self.config.skip_spikes}) times their running means ({spikes} spikes, "
                f"{total - spikes} NaN/Inf in total; train.max_nonfinite is "
                f"{self.config.max_nonfinite}). A loss that "
                "rose for good (other data, a resumed run with another objective) is no spike: "
                "raise train.skip_spikes or set it to null; else lower train.lr."
            )
        hint = " or train.precision: float32" if self.config.precision == "bf16" else ""
        raise NumericalError(
            f"training stopped at step {self.step}: the loss or its gradient was NaN/Inf in "
            f"{streak} steps in a row ({total} in total; train.max_nonfinite is "
            f"{self.config.max_nonfinite}). Usual fixes: lower train.lr, set "
            f"train.grad_clip{hint}, predict 'velocity' or 'noise' instead of 'score' (its "
            "target is unbounded where sigma(t) -> 0), or check the data for NaN/Inf."
        )

    def take_log(self) -> float | None:
        """Mean loss of the finite steps since the last call (None if there were none)."""
        tally = self._tally.tolist()
        total, count = tally[_LOSS_SUM], tally[_LOSS_STEPS]
        self._tally[_LOSS_SUM : _LOSS_STEPS + 1] = 0.0
        return total / count if count else None

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # ---- the loop -------------------------------------------------------------------------

    def fit(
        self,
        *,
        on_step: Callable[[int], None] | None = None,
        on_log: Callable[[dict[str, Any]], None] | None = None,
        on_checkpoint: Callable[[int], None] | None = None,
        evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> TrainSummary:
        """Train to the end of the span; checkpoint every `checkpoint_every` steps and at the end.

        Every `log_every` steps `on_log` gets `{step, loss, nonfinite, lr}` (and `spikes` with
        `train.skip_spikes`); every `eval_every` steps (if set) `evaluate(model)` runs with the
        EMA weights in `model`, in eval mode and on forked RNGs (evaluation never changes
        training), and `on_log` gets its values as `eval/<name>`. `should_stop()` is checked
        before each step: when true, a checkpoint is written and the summary says
        `interrupted=True` (signal handlers use it for Ctrl-C).

        Data-parallel: `on_log` and `on_checkpoint` run in the main process only; `evaluate`
        runs in every process (it may sample across them); `should_stop` is agreed among the
        processes every `min(log_every, max_nonfinite)` steps (one small collective), so all of
        them stop after the same step.
        """
        start, last = time.perf_counter(), None
        cfg, end = self.config, self.span[1]
        check_every = min(cfg.log_every, cfg.max_nonfinite)
        if not self.world.is_main:
            on_log = on_checkpoint = None
        self.model.train()
        while self.step < end:
            if should_stop is not None and self._stop(should_stop, check_every):
                if on_checkpoint is not None:
                    on_checkpoint(self.step)
                return self._summary(last, True, start)
            self.train_step()
            if on_step is not None:
                on_step(self.step)
            final = self.step == end
            if self.step % check_every == 0 or final:
                self.check_streak()
            if self.step % cfg.log_every == 0 or final:
                mean = self.take_log()
                last = mean if mean is not None else last
                if on_log is not None:
                    nonfinite, spikes = self._skipped()
                    record = {"step": self.step, "loss": mean, "nonfinite": nonfinite}
                    if cfg.skip_spikes is not None:
                        record["spikes"] = spikes
                    on_log({**record, "lr": self.lr})
            if evaluate is not None and cfg.eval_every and self.step % cfg.eval_every == 0:
                values = self.evaluate(evaluate)
                if on_log is not None:
                    on_log({"step": self.step, **{f"eval/{k}": v for k, v in values.items()}})
            if on_checkpoint is not None and (self.step % cfg.checkpoint_every == 0 or final):
                on_checkpoint(self.step)
        return self._summary(last, False, start)

    def _stop(self, should_stop: Callable[[], bool], every: int) -> bool:
        """`should_stop()`, in every process alike: each step alone, every `every` steps when
        several processes must agree (a collective and a host read)."""
        if not self.world.active:
            return should_stop()
        return self.step % every == 0 and self.world.any(should_stop())

    def evaluate(self, fn: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
        """`fn(model)` with the EMA weights loaded, in eval mode, on forked global RNGs."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), self.ema.applied(self.model):
            self.model.eval()
            try:
                with torch.no_grad():
                    return fn(self.model)
            finally:
                self.model.train()

    def _summary(self, last: float | None, interrupted: bool, start: float) -> TrainSummary:
        seconds = time.perf_counter() - start
        nonfinite, spikes = self._skipped()
        return TrainSummary(self.step, last, nonfinite, interrupted, seconds, spikes)

    # ---- state ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything a bit-exact resume needs, as tensors and plain values."""
        loss_sum, loss_steps, skipped, streak = self._tally.tolist()
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": self._rng_state(),
            "nonfinite": [int(skipped), int(streak)],  # skipped: NaN/Inf and spikes
            "loss_window": [loss_sum, int(loss_steps)],
            "spikes": self._spikes.tolist(),
        }

    def _rng_state(self) -> dict[str, Any]:
        """`rng.capture` with the generator as it was before the batch drawn ahead, so that a
        resumed run draws that batch again."""
        state = rng.capture(self.generator)
        if self._ahead is not None:
            state["generator"] = self._ahead.before
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict`; a checkpoint of another model raises `CheckpointError`."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            step = int(state["step"])
            skipped, streak = (int(v) for v in state["nonfinite"])
            loss_sum, loss_steps = float(state["loss_window"][0]), int(state["loss_window"][1])
            # older checkpoints: no guard state, or none of the streak's spikes
            spikes = [float(v) for v in state.get("spikes", ())]
            spikes += [0.0] * (len(self._spikes) - len(spikes))
            self.ema.load_state_dict(state["ema"])
            rng.restore(self.generator, state["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise CheckpointError(
                f"the checkpoint does not match this model or trainer: {str(err).splitlines()[0]}. "
                "It was written by a run with a different model spec; resume that run's own spec "
                "or start a new run."
            ) from None
        if not self.span[0] <= step <= self.span[1]:
            raise CheckpointError(
                f"the checkpoint is at step {step}, outside the steps {self.span} of this "
                "trainer; it belongs to another run or stage"
            )
        self.step = step
        self._ahead = None
        values = [loss_sum, loss_steps, skipped, streak]
        self._tally = torch.tensor(values, dtype=torch.float64, device=self.device)
        self._spikes = torch.tensor(spikes, dtype=torch.float64, device=self.device)


def _device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    raise InvalidArgumentError("the model has no parameters to train")
