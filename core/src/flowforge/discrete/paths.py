"""Discrete paths on token states `(B, L)`: masked (absorbing) and uniform corruption.

Both are mixture paths (Gat et al. 2024): each token of `x_t` is the data token `x_1` with
probability `alpha(t) = exp(-sigma(t))` and the source token `x_0` otherwise, independently.
The source is the absorbing token `mask_id = vocab_size` everywhere (`masked`) or uniform random
tokens (`uniform`). t=0 is noise, t=1 is data, as for every flowforge path.

>>> path = MaskedPath(vocab_size=64)
>>> x_t = path.corrupt(x_1, t, generator=gen)          # (B, L), masks where corrupted
>>> path.noise_schedule.elbo_weight(t)                       # 1 / (1 - t) for eps=0
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor

from flowforge.discrete.schedules import NoiseSchedule, make_schedule
from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import Path, PathSample
from flowforge.tensors import expand_like

Schedule = Literal["log_linear", "geometric"]


@dataclass(frozen=True)
class DiscretePath(Path):
    """Base of mixture paths over `vocab_size` tokens; subclasses choose the source `x_0`.

    `vocab_size` may be left None in a spec: the task fills it in from the dataset
    (`with_vocab`). `schedule`: `log_linear` (alpha = eps + (1-eps) t) or `geometric`
    (sigma = sigma_min^t sigma_max^(1-t)).
    """

    vocab_size: Annotated[
        int | None, Field(ge=1, description="number of data tokens (null: from the dataset)")
    ] = None
    schedule: Annotated[Schedule, Field(description="log_linear or geometric")] = "log_linear"
    eps: Annotated[float, Field(ge=0, lt=1, description="log_linear: alpha(0) = eps")] = 0.0
    sigma_min: Annotated[float, Field(gt=0, description="geometric: sigma(1)")] = 1e-4
    sigma_max: Annotated[float, Field(gt=0, description="geometric: sigma(0)")] = 20.0

    @property
    def noise_schedule(self) -> NoiseSchedule:
        """sigma(t), alpha(t) and the ELBO weight of this path."""
        return make_schedule(self.schedule, self.eps, self.sigma_min, self.sigma_max)

    def with_vocab(self, vocab_size: int) -> DiscretePath:
        """This path over `vocab_size` tokens (a given, different `vocab_size` is an error)."""
        if self.vocab_size not in (None, vocab_size):
            raise InvalidArgumentError(
                f"path.params.vocab_size is {self.vocab_size} but the data has {vocab_size} "
                "tokens: remove vocab_size from the path (it is read from the dataset)"
            )
        return dataclasses.replace(self, vocab_size=vocab_size)

    @property
    def vocab(self) -> int:
        if self.vocab_size is None:
            raise InvalidArgumentError(
                f"{type(self).__name__} needs vocab_size: give it, or call with_vocab(n)"
            )
        return self.vocab_size

    @property
    @abc.abstractmethod
    def num_states(self) -> int:
        """Token ids a state may hold (the model's input vocabulary)."""

    @abc.abstractmethod
    def source(self, shape: tuple[int, ...], generator: torch.Generator | None, device) -> Tensor:
        """Noise `x_0` of `shape`, int64, on `device`."""

    def keep(self, t: Tensor, shape: tuple[int, ...], generator=None, device=None) -> Tensor:
        """Bool `(B, ...)`: which tokens are still data at time `t (B,)`."""
        u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
        return u < expand_like(self.noise_schedule.alpha(t.double()), u)

    def corrupt(
        self,
        x_1: Tensor,
        t: Tensor,
        generator: torch.Generator | None = None,
        valid: Tensor | None = None,
    ) -> Tensor:
        """`x_t` from data `x_1 (B, L)` at `t (B,)`; `valid (B, L)`: False on padding (kept)."""
        x_0 = self.source(tuple(x_1.shape), generator, x_1.device)
        keep = self.keep(t, tuple(x_1.shape), generator, x_1.device)
        if valid is not None:
            keep = keep | ~valid
        return torch.where(keep, x_1, x_0)

    def sample(
        self, x_0: Tensor, x_1: Tensor, t: Tensor, generator: torch.Generator | None = None
    ) -> PathSample:
        """Each entry is `x_1` with probability alpha(t), else `x_0`; `dx_t` is the expected
        rate of change given both ends, `alpha'/(1-alpha) (x_1 - x_t)` (float)."""
        keep = self.keep(t, tuple(x_1.shape), generator, x_1.device)
        x_t = torch.where(keep, x_1, x_0)
        dtype = x_1.dtype if x_1.is_floating_point() else torch.float32
        rate = expand_like(self.noise_schedule.elbo_weight(t.double()), x_t).to(dtype)
        return PathSample(x_0, x_1, t, x_t, rate * (x_1.to(dtype) - x_t.to(dtype)))


@dataclass(frozen=True)
class MaskedPath(DiscretePath):
    """Absorbing (masked) diffusion: corrupted tokens become `mask_id = vocab_size`.

    The model's input has `vocab_size + 1` ids; it predicts logits of the clean token
    (`vocab_size` or `vocab_size + 1` columns: the mask column is dropped, SUBS).
    """

    @property
    def mask_id(self) -> int:
        return self.vocab

    @property
    def num_states(self) -> int:
        return self.vocab + 1

    def source(self, shape, generator, device) -> Tensor:
        return torch.full(shape, self.mask_id, dtype=torch.long, device=device)


@dataclass(frozen=True)
class UniformPath(DiscretePath):
    """Uniform diffusion: corrupted tokens are uniform random tokens (no extra id)."""

    @property
    def num_states(self) -> int:
        return self.vocab

    def source(self, shape, generator, device) -> Tensor:
        return torch.randint(0, self.vocab, shape, generator=generator, device=device)
