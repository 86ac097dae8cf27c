"""The molecule vector field: an equivariant backbone on the encoded state, with conditioning.

`MoleculeField(x_t (B, N, F), t (B,), mask=None, properties=None, self_cond=None)` returns the
prediction `(B, N, F)` (velocity, data, noise or score, as trained). The backbone reads the
positions as coordinates and everything else (type and charge features, the time embedding, the
property embedding, the self-conditioning estimate's features) as invariant node features; the
estimate's positions enter as invariant edge distances. The output is projected to the state's
subspace: zero-centroid positions, zeros on padding.

Property conditioning: `properties (B, P)` standardised values; a row of NaN, or None for the
whole batch, is the null condition (a learned embedding), which classifier-free guidance calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor, nn

from flowforge.models.time_embedding import SinusoidalTimeEmbedding
from flowforge_molecules.com import remove_com


class Backbone(Protocol):
    """`(x (B, N, 3), h (B, N, d_in), mask (B, N), edge_attr (B, N, N, E))` -> `(x_out, h_out)`."""

    def __call__(
        self, x: Tensor, h: Tensor, mask: Tensor, edge_attr: Tensor
    ) -> tuple[Tensor, Tensor]: ...


class MoleculeField(nn.Module):
    """Wraps an equivariant `backbone` into a flowforge vector field on molecule states.

    `backbone_factory(d_in, d_out, edge_dim) -> nn.Module` builds the backbone for the feature
    sizes this wrapper feeds it.
    """

    def __init__(
        self,
        num_features: int,
        backbone_factory: Callable[[int, int, int], Backbone],
        time_embed_dim: int = 32,
        num_properties: int = 0,
        property_embed_dim: int = 32,
        self_condition: bool = False,
    ):
        super().__init__()
        self.num_features = num_features
        self.self_conditioning = self_condition
        self.num_properties = num_properties
        feat = num_features - 3
        self.time = SinusoidalTimeEmbedding(time_embed_dim)
        d_in = feat * (2 if self_condition else 1) + time_embed_dim
        if num_properties:
            self.properties = nn.Linear(num_properties, property_embed_dim)
            self.null = nn.Parameter(torch.zeros(property_embed_dim))
            d_in += property_embed_dim
        edge_dim = 1 if self_condition else 0
        self.backbone = backbone_factory(d_in, feat, edge_dim)

    def _conditioning(self, properties: Tensor | None, batch: int, like: Tensor) -> Tensor:
        null = self.null.to(like.dtype).expand(batch, -1)
        if properties is None:
            return null
        props = properties.to(like.dtype)
        is_null = torch.isnan(props).any(-1, keepdim=True)
        emb = self.properties(torch.nan_to_num(props))
        return torch.where(is_null, null, emb)

    def forward(
        self,
        x_t: Tensor,
        t: Tensor,
        mask: Tensor | None = None,
        properties: Tensor | None = None,
        self_cond: Tensor | None = None,
    ) -> Tensor:
        b, n, _ = x_t.shape
        if mask is None:
            mask = torch.ones(b, n, dtype=torch.bool, device=x_t.device)
        mask = mask.bool()
        node = mask.to(x_t.dtype).unsqueeze(-1)
        pos = remove_com(x_t[..., :3], mask)
        parts = [x_t[..., 3:]]
        edges = x_t.new_zeros(b, n, n, 0)
        if self.self_conditioning:
            est = torch.zeros_like(x_t) if self_cond is None else self_cond.to(x_t.dtype)
            parts.append(est[..., 3:])
            sc = est[..., :3]
            edges = ((sc[:, :, None] - sc[:, None, :]) ** 2).sum(-1, keepdim=True)
        emb = self.time(t.reshape(-1).expand(b) if t.numel() == 1 else t).to(x_t.dtype)
        parts.append(emb[:, None, :].expand(b, n, -1))
        if self.num_properties:
            cond = self._conditioning(properties, b, x_t)
            parts.append(cond[:, None, :].expand(b, n, -1))
        h = torch.cat(parts, -1) * node
        x_out, h_out = self.backbone(pos, h, mask, edges)
        vel = remove_com(x_out - pos, mask)
        return torch.cat([vel, h_out * node], -1)
