"""The network of the product state: one equivariant trunk, position output and type/charge logits.

`ProductField(state, t, properties=None)` reads the product state (`flowforge_molecules.product`)
as the trunk's input: positions as coordinates, one-hots of the type and charge tokens (the mask
token included) as invariant node features, and returns one prediction per key, as the core
mixed sampler and `ProductObjective` call it: `{"pos": (B, N, 3)` prediction of the pos path's
kind, zero-centroid; `"atom_type": (B, N, K')`, `"charge": (B, N, C')` clean-token logits}.
The logits come from the trunk's invariant node features, so they are invariant to rotations,
reflections and translations and permute with the atoms; the positions are equivariant.
A trunk built with `self_condition` also takes `self_cond`, the layout of
`flowforge_molecules.product_self_conditioning.product_estimate` (None: zeros).

>>> field = ProductField(build_egnn(EGNNParams(), num_features=enc.num_features), *enc.num_states)
>>> out = field(x_t, t)                     # {"pos", "atom_type", "charge"}
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowforge.errors import InvalidArgumentError
from flowforge_molecules.models.field import MoleculeField


class ProductField(nn.Module):
    """Wrap a `MoleculeField` (EGNN or e3nn trunk) built for `3 + type_states + charge_states`
    features into a network on product states (see the module docstring)."""

    def __init__(self, field: MoleculeField, type_states: int, charge_states: int):
        super().__init__()
        if field.num_features != 3 + type_states + charge_states:
            raise InvalidArgumentError(
                f"the trunk reads {field.num_features} features per atom; the product state "
                f"needs 3 + {type_states} + {charge_states}: build it with "
                "num_features=ProductEncoding.num_features"
            )
        self.field = field
        self.type_states = type_states
        self.charge_states = charge_states
        self.num_properties = field.num_properties
        self.self_conditioning = field.self_conditioning

    def forward(
        self,
        state: dict[str, Tensor],
        t: Tensor,
        properties: Tensor | None = None,
        self_cond: Tensor | None = None,
    ) -> dict[str, Tensor]:
        pos = state["pos"]
        types = F.one_hot(state["atom_type"], self.type_states).to(pos.dtype)
        charges = F.one_hot(state["charge"], self.charge_states).to(pos.dtype)
        x = torch.cat([pos, types, charges], -1)
        out = self.field(x, t, mask=state["mask"], properties=properties, self_cond=self_cond)
        k = 3 + self.type_states
        return {"pos": out[..., :3], "atom_type": out[..., 3:k], "charge": out[..., k:]}
