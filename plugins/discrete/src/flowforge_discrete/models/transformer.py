"""A small transformer over token sequences: bidirectional for diffusion, causal for the
autoregressive baseline; rotary or learned positions; optional time input.

`forward(x_t (B, L) int64, t (B,)) -> logits (B, L, vocab_size)`. Time enters as a sinusoidal
embedding through an MLP that modulates every block's norms (adaLN, as DiT); with
`time_input: false` the network has no time MLP (the norms' shift, scale and gate are then
learned constants) and sets `time_conditioned = False`, which the cached sampler requires (RADD);
every parameter is used, as data-parallel training requires. Built by `build_transformer(params,
data_shape=(L,), vocab_size=V, num_states=S, causal=False)`; the task passes the vocabulary.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch.nn import functional as F

from flowforge.errors import InvalidArgumentError
from flowforge.models.time_embedding import SinusoidalTimeEmbedding


class TransformerParams(BaseModel):
    """Width, depth, heads, positions and whether the model sees the time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: Annotated[int, Field(ge=8, description="model width")] = 128
    depth: Annotated[int, Field(ge=1, description="transformer blocks")] = 4
    heads: Annotated[int, Field(ge=1, description="attention heads (divide dim)")] = 4
    mlp_ratio: Annotated[float, Field(gt=0, description="hidden width of the MLP / dim")] = 4.0
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    positions: Literal["rotary", "learned"] = Field("rotary", description="position encoding")
    time_input: bool = Field(
        True, description="condition on t; false: time-independent (RADD; needed by mdlm_cached)"
    )


def _rotary(x: Tensor) -> Tensor:
    """Rotary position embedding of `x (B, H, L, D)` (D even), base 10000."""
    length, d = x.shape[-2], x.shape[-1]
    freq = 10000.0 ** (-torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)
    angle = torch.arange(length, device=x.device, dtype=torch.float32)[:, None] * freq[None]
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


class Block(nn.Module):
    """Pre-norm attention + MLP, norms modulated by the time embedding (shift, scale, gate), or by
    learned constants in a time-independent model."""

    def __init__(self, p: TransformerParams, causal: bool):
        super().__init__()
        self.heads, self.causal, self.rotary = p.heads, causal, p.positions == "rotary"
        self.norm1 = nn.LayerNorm(p.dim, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(p.dim, elementwise_affine=False)
        self.qkv = nn.Linear(p.dim, 3 * p.dim)
        self.proj = nn.Linear(p.dim, p.dim)
        hidden = int(p.dim * p.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(p.dim, hidden), nn.GELU(), nn.Linear(hidden, p.dim))
        self.mod = nn.Linear(p.dim, 6 * p.dim) if p.time_input else None
        self.static = None if p.time_input else nn.Parameter(torch.zeros(6 * p.dim))
        if self.mod is not None:
            nn.init.zeros_(self.mod.weight)
            nn.init.zeros_(self.mod.bias)
        self.drop = nn.Dropout(p.dropout)

    def forward(self, h: Tensor, c: Tensor | None) -> Tensor:
        mod = self.static[None, None] if self.mod is None else self.mod(c)[:, None]
        s1, g1, b1, s2, g2, b2 = mod.chunk(6, dim=-1)
        x = self.norm1(h) * (1 + s1) + b1
        batch, length, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        if self.rotary:
            q, k = _rotary(q), _rotary(k)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        h = h + (1 + g1) * self.drop(self.proj(a.transpose(1, 2).reshape(batch, length, dim)))
        x = self.norm2(h) * (1 + s2) + b2
        return h + (1 + g2) * self.drop(self.mlp(x))


class Transformer(nn.Module):
    """See the module docstring. `num_states` input ids (vocab + mask/BOS), `vocab_size` outputs."""

    def __init__(
        self,
        p: TransformerParams,
        length: int,
        vocab_size: int,
        num_states: int,
        causal: bool = False,
    ):
        super().__init__()
        if p.dim % p.heads or (p.dim // p.heads) % 2:
            raise InvalidArgumentError(
                f"model.params: dim ({p.dim}) must be a multiple of heads ({p.heads}) with an even "
                "head width"
            )
        self.params, self.length, self.causal = p, length, causal
        self.time_conditioned = p.time_input
        self.embed = nn.Embedding(num_states, p.dim)
        self.pos = nn.Parameter(torch.zeros(length, p.dim)) if p.positions == "learned" else None
        self.time = (
            nn.Sequential(
                SinusoidalTimeEmbedding(p.dim),
                nn.Linear(p.dim, p.dim),
                nn.SiLU(),
                nn.Linear(p.dim, p.dim),
            )
            if p.time_input
            else None
        )
        self.blocks = nn.ModuleList(Block(p, causal) for _ in range(p.depth))
        self.norm = nn.LayerNorm(p.dim)
        self.out = nn.Linear(p.dim, vocab_size)
        if self.pos is not None:
            nn.init.normal_(self.pos, std=0.02)

    def forward(self, x_t: Tensor, t: Tensor | None = None) -> Tensor:
        if x_t.ndim != 2 or x_t.is_floating_point():
            raise InvalidArgumentError(
                f"the transformer takes int64 tokens (B, L), got {x_t.dtype} {tuple(x_t.shape)}"
            )
        h = self.embed(x_t)
        if self.pos is not None:
            h = h + self.pos[: x_t.shape[1]]
        c = None
        if self.time is not None:
            if t is None:
                raise InvalidArgumentError(
                    "this transformer is time-conditioned (time_input: true): pass t (B,)"
                )
            c = self.time(t.float()).to(h.dtype)
        for block in self.blocks:
            h = block(h, c)
        return self.out(self.norm(h))


def build_transformer(
    params: TransformerParams,
    data_shape: tuple[int, ...] = (),
    vocab_size: int | None = None,
    num_states: int | None = None,
    causal: bool = False,
) -> Transformer:
    """The transformer for sequences of `data_shape = (L,)` over `vocab_size` tokens."""
    if vocab_size is None or len(data_shape) != 1:
        raise InvalidArgumentError(
            f"transformer models token sequences (L,) and needs vocab_size from a token dataset "
            f"(text, qm9_smiles, fasta); got data_shape {tuple(data_shape)}, "
            f"vocab_size {vocab_size}"
        )
    return Transformer(params, data_shape[0], vocab_size, num_states or vocab_size + 1, causal)
