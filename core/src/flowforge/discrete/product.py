"""Product paths over the named tensors of a structured state (continuous + discrete keys).

A structured state is a dict of tensors sharing the batch dimension, e.g. `{"pos": (B, N, 3),
"atom_type": (B, N), "mask": (B, N)}`. A `ProductPath` gives each key in `paths` its own path
(an affine Gaussian path for `pos`, a discrete path for `atom_type`), all at one shared time
`t (B,)`; keys without a path (`mask`) travel with the state unchanged. `mask` (bool, True on
real entries; any key name via `mask_key`) keeps padding out of the corruption.

>>> path = ProductPath({"pos": CondOT(), "atom_type": MaskedPath(vocab_size=5)})
>>> x_0 = path.source(x_1, generator=gen)          # Gaussian pos, all-mask atom types
>>> s = path.sample(x_0, x_1, t, generator=gen)    # {"pos": PathSample, "atom_type": ...}
>>> x_t = path.state(s, x_1)                       # the dict the model sees
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from flowforge.discrete.paths import DiscretePath
from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import Path, PathSample

State = dict[str, Tensor]


@dataclass(frozen=True)
class ProductPath(Path):
    """One path per key of a structured state, on a shared time (see the module docstring)."""

    paths: Mapping[str, Path]
    mask_key: str = "mask"
    _keys: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.paths:
            raise InvalidArgumentError("a product path needs at least one key with a path")
        object.__setattr__(self, "_keys", tuple(self.paths))

    @property
    def discrete_keys(self) -> tuple[str, ...]:
        return tuple(k for k in self._keys if isinstance(self.paths[k], DiscretePath))

    @property
    def continuous_keys(self) -> tuple[str, ...]:
        return tuple(k for k in self._keys if not isinstance(self.paths[k], DiscretePath))

    @property
    def t_span(self) -> tuple[float, float]:
        spans = [p.t_span for p in self.paths.values()]
        return max(s[0] for s in spans), min(s[1] for s in spans)

    def _check(self, state: Mapping[str, Tensor], name: str) -> None:
        missing = [k for k in self._keys if k not in state]
        if missing:
            raise InvalidArgumentError(
                f"{name} lacks the keys {missing} of the product path (it has {sorted(state)})"
            )

    def valid(self, state: Mapping[str, Tensor]) -> Tensor | None:
        """The padding mask `(B, N)` bool of the state (None when it has none)."""
        mask = state.get(self.mask_key)
        return None if mask is None else mask.bool()

    def source(self, x_1: Mapping[str, Tensor], generator: torch.Generator | None = None) -> State:
        """Noise shaped like `x_1`: standard normal for continuous keys, each discrete path's
        source for discrete keys; other keys (the mask) copied."""
        self._check(x_1, "x_1")
        out = dict(x_1)
        for k, p in self.paths.items():
            v = x_1[k]
            if isinstance(p, DiscretePath):
                out[k] = p.source(tuple(v.shape), generator, v.device)
            else:
                out[k] = torch.randn(v.shape, generator=generator, device=v.device, dtype=v.dtype)
        return out

    def sample(
        self,
        x_0: Mapping[str, Tensor],
        x_1: Mapping[str, Tensor],
        t: Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, PathSample]:
        """A `PathSample` per key with a path, all at `t (B,)`; padding keeps its data value."""
        self._check(x_0, "x_0")
        self._check(x_1, "x_1")
        valid = self.valid(x_1)
        out = {}
        for k, p in self.paths.items():
            if isinstance(p, DiscretePath):
                s = p.sample(x_0[k], x_1[k], t, generator=generator)
            else:
                s = p.sample(x_0[k], x_1[k], t)
            if valid is not None:
                keep = valid.reshape(valid.shape + (1,) * (s.x_t.ndim - valid.ndim))
                s = PathSample(
                    s.x_0,
                    s.x_1,
                    s.t,
                    torch.where(keep, s.x_t, x_1[k]),
                    torch.where(keep, s.dx_t, torch.zeros_like(s.dx_t)),
                )
            out[k] = s
        return out

    def state(self, samples: Mapping[str, PathSample], x_1: Mapping[str, Tensor]) -> State:
        """The model's input: each key's `x_t`, the other keys of `x_1` (the mask) unchanged."""
        return {**x_1, **{k: s.x_t for k, s in samples.items()}}
