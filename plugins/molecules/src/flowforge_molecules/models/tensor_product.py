"""An E(3)-equivariant tensor-product network (e3nn) on dense, masked molecular graphs.

Node features carry scalars (0e) and vectors (1o). Each layer sends messages
`TP(h_j, Y(r_ij); w(|r_ij|, edge invariants))`: a fully connected tensor product of the
neighbour's features with the spherical harmonics of the relative position, its weights made by
an MLP from a Gaussian basis of the distance (Thomas et al. 2018; Geiger & Smidt 2022). Gated
nonlinearities keep equivariance; the output vector channel is the position update. Parity is
respected throughout, so the network is equivariant to reflections as well as rotations.
"""

from __future__ import annotations

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import Tensor, nn

from flowforge_molecules.models.graph import dense_masks


class GaussianBasis(nn.Module):
    """`d (...) -> (..., num)`: Gaussians centred on `[0, cutoff]`."""

    def __init__(self, num: int, cutoff: float):
        super().__init__()
        self.register_buffer("centres", torch.linspace(0.0, cutoff, num), persistent=False)
        self.width = cutoff / num

    def forward(self, d: Tensor) -> Tensor:
        return torch.exp(-(((d[..., None] - self.centres.to(d.dtype)) / self.width) ** 2))


class TPLayer(nn.Module):
    """One message-passing layer: tensor-product messages, mean aggregation, gated update."""

    def __init__(self, hidden: o3.Irreps, scalars: int, vectors: int, edge_dim: int, basis: int):
        super().__init__()
        self.sh_irreps = o3.Irreps("0e + 1o")
        self.gate = Gate(
            f"{scalars}x0e",
            [nn.functional.silu],
            f"{vectors}x0e",
            [torch.sigmoid],
            f"{vectors}x1o",
        )
        self.tp = o3.FullyConnectedTensorProduct(
            hidden, self.sh_irreps, self.gate.irreps_in, shared_weights=False
        )
        self.radial = nn.Sequential(
            nn.Linear(basis + edge_dim, 64), nn.SiLU(), nn.Linear(64, self.tp.weight_numel)
        )
        self.self_interaction = o3.Linear(hidden, self.gate.irreps_in)

    def forward(
        self, h: Tensor, sh: Tensor, radial_in: Tensor, edge_mask: Tensor, norm: float
    ) -> Tensor:
        n = h.shape[1]
        hj = h[:, None, :, :].expand(-1, n, -1, -1)
        w = self.radial(radial_in)
        msg = self.tp(hj, sh, w) * edge_mask
        agg = msg.sum(2) / norm
        return h + self.gate(agg + self.self_interaction(h))


class TensorProductNet(nn.Module):
    """Stack of `TPLayer`s: `(x (B, N, 3), h (B, N, d_in), mask, edge_attr (B, N, N, E))` ->
    `(x_out (B, N, 3), h_out (B, N, d_out))`, the same interface as `EGNN`."""

    def __init__(
        self,
        d_in: int,
        d_out: int,
        scalars: int,
        vectors: int,
        layers: int,
        edge_dim: int,
        norm: float,
        basis: int = 16,
        cutoff: float = 10.0,
    ):
        super().__init__()
        self.hidden = o3.Irreps(f"{scalars}x0e + {vectors}x1o")
        self.embed = o3.Linear(o3.Irreps(f"{d_in}x0e"), self.hidden)
        self.basis = GaussianBasis(basis, cutoff)
        self.layers = nn.ModuleList(
            TPLayer(self.hidden, scalars, vectors, edge_dim, basis) for _ in range(layers)
        )
        self.out_vec = o3.Linear(self.hidden, o3.Irreps("1x1o"))
        self.out_scalar = o3.Linear(self.hidden, o3.Irreps(f"{d_out}x0e"))
        self.norm = norm

    def forward(
        self, x: Tensor, h: Tensor, mask: Tensor, edge_attr: Tensor
    ) -> tuple[Tensor, Tensor]:
        node, edge_mask = dense_masks(mask, x.dtype)
        r = x[:, :, None, :] - x[:, None, :, :]
        d = torch.sqrt((r**2).sum(-1) + 1e-12)
        sh = o3.spherical_harmonics(
            "0e + 1o", r / d[..., None], normalize=False, normalization="component"
        )
        radial_in = torch.cat([self.basis(d), edge_attr], -1)
        h = self.embed(h) * node
        for layer in self.layers:
            h = layer(h, sh, radial_in, edge_mask, self.norm) * node
        return x + self.out_vec(h) * node, self.out_scalar(h) * node
