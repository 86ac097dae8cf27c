"""The training objective of discrete diffusion, for the core `Trainer`.

A step draws sequences `x_1 (B, L)`, times (`train.time_sampler` on `t_span`) and the corruption
of every token, in that order, from the trainer's generator; the loss is the ELBO integrand of
`diffusion_loss` per sequence, divided by its number of real tokens, so the training loss is the
bound in nats per token (its mean over steps estimates the NLL bound of the training data).
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.discrete.losses import diffusion_loss
from flowforge.discrete.paths import DiscretePath
from flowforge.discrete.subs import clean_log_probs
from flowforge.errors import InvalidArgumentError
from flowforge.training.objective import Batch, Network, Objective
from flowforge.training.time_samplers.base import TimeSampler
from flowforge.training.time_samplers.uniform import Uniform


class DiscreteDiffusion(Objective):
    """Train a clean-token predictor on `data (N, L)` int64 tokens along a discrete `path`.

    `pad_id`: the padding token of the data (never corrupted, not scored), or None. `t_span`:
    where training times are drawn (default (0, 1 - 1e-4): at t -> 1 the log-linear weight
    1/(1-t) diverges while nothing is masked).

    >>> objective = DiscreteDiffusion(MaskedPath(vocab_size=96), tokens, pad_id=95)
    >>> Trainer(model, objective, spec.train, generator=gen).fit()
    """

    def __init__(
        self,
        path: DiscretePath,
        data: Tensor,
        *,
        pad_id: int | None = None,
        time_sampler: TimeSampler | None = None,
        t_span: tuple[float, float] = (0.0, 1.0 - 1e-4),
    ):
        if data.ndim != 2 or data.is_floating_point():
            raise InvalidArgumentError(
                f"discrete training data must be int64 tokens (N, L), got {data.dtype} "
                f"{tuple(data.shape)}"
            )
        if int(data.max()) >= path.vocab or int(data.min()) < 0:
            raise InvalidArgumentError(
                f"token ids must lie in [0, {path.vocab}) for path vocab_size {path.vocab}; the "
                f"data holds ids {int(data.min())}..{int(data.max())}"
            )
        self.path = path
        self.data = data
        self.pad_id = pad_id
        self.time_sampler = time_sampler or Uniform()
        self.t_span = t_span

    def draw(self, n: int, generator: torch.Generator, part: slice | None = None) -> Batch:
        """Indices, times, then the corruption of the whole batch; `part`: keep those rows
        (data-parallel training: every process draws alike and keeps its own)."""
        device = self.data.device
        idx = torch.randint(0, self.data.shape[0], (n,), generator=generator, device=device)
        x_1 = self.data[idx]
        like = torch.zeros((), device=device)
        t = self.time_sampler.sample(
            n, self.path, generator=generator, like=like, t_span=self.t_span
        )
        batch = {"x_1": x_1, "t": t, "x_t": self.path.corrupt(x_1, t, generator, self.valid(x_1))}
        return batch if part is None else {k: v[part] for k, v in batch.items()}

    def valid(self, x_1: Tensor) -> Tensor | None:
        """Bool `(B, L)`: the real tokens (None when the data has no padding)."""
        return None if self.pad_id is None else x_1 != self.pad_id

    def loss(self, network: Network, batch: Batch) -> Tensor:
        x_1, x_t, t = batch["x_1"], batch["x_t"], batch["t"]
        log_p = clean_log_probs(network(x_t, t), x_t, self.path)
        valid = self.valid(x_1)
        tokens = x_1.shape[1] if valid is None else valid.sum(dim=1).clamp_min(1)
        return diffusion_loss(log_p, x_1, x_t, t, self.path, valid) / tokens
