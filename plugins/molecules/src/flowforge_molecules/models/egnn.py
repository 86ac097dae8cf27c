"""E(n)-equivariant graph network (Satorras et al. 2021) on dense, masked, fully connected graphs.

Messages read invariants only (node features, squared distances, extra edge invariants), and
coordinates move along relative vectors `x_i - x_j` weighted by invariant scalars, so the output
positions rotate, reflect, translate and permute with the input; padding atoms neither send nor
receive messages. Plain torch: no scatter or cluster extensions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowforge_molecules.models.graph import dense_masks


def _mlp(d_in: int, d_hidden: int, d_out: int, final_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(d_in, d_hidden), nn.SiLU(), nn.Linear(d_hidden, d_out)]
    if final_act:
        layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class EGNNLayer(nn.Module):
    """One equivariant message-passing layer: `(x, h) -> (x', h')`.

    `x' = x + sum_j (x_i - x_j) / (|x_i - x_j| + 1) * phi_x(m_ij) / norm` (EDM's normalised,
    tanh-bounded update), `h' = h + phi_h(h_i, sum_j m_ij / norm)`.
    """

    def __init__(self, hidden: int, edge_dim: int, coords_range: float = 15.0, norm: float = 1.0):
        super().__init__()
        self.edge = _mlp(2 * hidden + 1 + edge_dim, hidden, hidden, final_act=True)
        self.gate = nn.Sequential(nn.Linear(hidden, 1), nn.Sigmoid())
        self.node = _mlp(2 * hidden, hidden, hidden)
        # no bias on the coordinate weight (as EDM): a bias is the same radial push on every
        # pair (at init up to 1/sqrt(hidden) * coords_range, about 1 A per neighbour and layer)
        self.coord = nn.Sequential(
            nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1, bias=False)
        )
        nn.init.xavier_uniform_(self.coord[-1].weight, gain=0.001)
        self.coords_range = coords_range
        self.norm = norm

    def _edge_input(self, h: Tensor, pair: Tensor) -> Tensor:
        """The edge MLP's first layer on `[h_i, h_j, pair_ij]` `(B, N, N, hidden)`, as the sum of
        its node parts (two products per atom, not per pair) and its pair part: the same
        weights and values, without the (2 hidden + 1 + E)-wide product per pair and the
        concatenated edge tensor it needs."""
        first = self.edge[0]
        k = h.shape[-1]
        w_i, w_j, w_pair = first.weight[:, :k], first.weight[:, k : 2 * k], first.weight[:, 2 * k :]
        node_i, node_j = F.linear(h, w_i), F.linear(h, w_j)
        return node_i[:, :, None] + node_j[:, None, :] + F.linear(pair, w_pair, first.bias)

    def forward(
        self, x: Tensor, h: Tensor, edge_mask: Tensor, edge_attr: Tensor
    ) -> tuple[Tensor, Tensor]:
        diff = x[:, :, None, :] - x[:, None, :, :]
        d2 = (diff**2).sum(-1, keepdim=True)
        m = self.edge[1:](self._edge_input(h, torch.cat([d2, edge_attr], -1)))
        m = m * self.gate(m) * edge_mask
        agg = m.sum(2) / self.norm
        h = h + self.node(torch.cat([h, agg], -1))
        unit = diff / (torch.sqrt(d2 + 1e-8) + 1.0)
        step = torch.tanh(self.coord(m)) * self.coords_range
        x = x + (unit * step * edge_mask).sum(2) / self.norm
        return x, h


class EGNN(nn.Module):
    """A stack of `EGNNLayer`s with input and output embeddings of the node features.

    `forward(x (B, N, 3), h (B, N, d_in), mask (B, N), edge_attr (B, N, N, E))` ->
    `(x_out (B, N, 3), h_out (B, N, d_out))`; padding rows are returned as they came in.
    """

    def __init__(self, d_in: int, d_out: int, hidden: int, layers: int, edge_dim: int, norm: float):
        super().__init__()
        self.embed = nn.Linear(d_in, hidden)
        self.layers = nn.ModuleList(
            EGNNLayer(hidden, edge_dim + 1, norm=norm) for _ in range(layers)
        )
        self.out = nn.Linear(hidden, d_out)

    def forward(
        self, x: Tensor, h: Tensor, mask: Tensor, edge_attr: Tensor
    ) -> tuple[Tensor, Tensor]:
        node, edge_mask = dense_masks(mask, x.dtype)
        d0 = ((x[:, :, None] - x[:, None, :]) ** 2).sum(-1, keepdim=True)
        edge_attr = torch.cat([edge_attr, d0], -1)
        h = self.embed(h) * node
        for layer in self.layers:
            x, h = layer(x, h, edge_mask, edge_attr)
            h = h * node
        return x * node, self.out(h) * node
