"""Infilling: tokens clamped to given values (a prefix, a suffix, any set of positions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field, InstanceOf
from pydantic.json_schema import SkipJsonSchema
from torch import Tensor

from flowforge.discrete.guidance.base import DiscreteGuidance
from flowforge.errors import InvalidArgumentError


@dataclass(frozen=True)
class Infill(DiscreteGuidance):
    """Clamp known tokens: they are written into the start state and no step changes them.

    Give `prefix` and/or `suffix` token ids (the same for every sample), or in Python `tokens
    (B, L)` with `known (B, L)` bool for arbitrary positions. For the masked path the other
    tokens are drawn from the model conditioned on the clamped ones (SUBS carries them over).

    >>> Infill(prefix=[5, 9, 2])                                  # a prompt
    >>> Infill(tokens=template, known=template != path.mask_id)   # any positions
    """

    prefix: Annotated[tuple[int, ...], Field(description="token ids clamped at the start")] = ()
    suffix: Annotated[tuple[int, ...], Field(description="token ids clamped at the end")] = ()
    tokens: SkipJsonSchema[InstanceOf[Tensor] | None] = None
    known: SkipJsonSchema[InstanceOf[Tensor] | None] = None

    @property
    def needs(self) -> tuple[str, ...]:
        if self.prefix or self.suffix or self.known is not None:
            return ()
        return ("prefix, suffix or tokens with known",)

    def clamp(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """`(values, known)` broadcast to `x (B, L)`."""
        batch, length = x.shape
        if (self.tokens is None) != (self.known is None):
            raise InvalidArgumentError(
                "infill needs both tokens (B, L) and known (B, L), or neither"
            )
        if len(self.prefix) + len(self.suffix) > length:
            raise InvalidArgumentError(
                f"infill prefix ({len(self.prefix)}) and suffix ({len(self.suffix)}) are longer "
                f"than the sequences ({length})"
            )
        values, known = x.clone(), torch.zeros_like(x, dtype=torch.bool)
        if self.prefix:
            values[:, : len(self.prefix)] = torch.as_tensor(list(self.prefix), device=x.device)
            known[:, : len(self.prefix)] = True
        if self.suffix:
            values[:, length - len(self.suffix) :] = torch.as_tensor(
                list(self.suffix), device=x.device
            )
            known[:, length - len(self.suffix) :] = True
        if self.known is not None:
            k = self.known.to(x.device).bool().expand(batch, length)
            values = torch.where(k, self.tokens.to(x.device).expand(batch, length), values)
            known = known | k
        return values, known

    def prepare(self, x, dynamics):
        values, known = self.clamp(x)
        dynamics.frozen = known if dynamics.frozen is None else dynamics.frozen | known
        return torch.where(known, values, x)
