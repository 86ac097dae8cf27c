"""Self-conditioning on the product state: the network also reads its own previous estimate.

The estimate is laid out as the trunk's input `(B, N, 3 + K' + C')`: the data estimate of the
positions (through the positions' path) and the clean-token probabilities of the atom types and
charges (a zero column for the mask token of the masked path). `MoleculeField` reads its
positions as pairwise distances and the rest as node features. Training
(`ProductObjective(self_condition=True)`) gives half the molecules the estimate of a first pass
without gradients, as core `flowforge.training.self_conditioning` does for one tensor; sampling
(`SelfConditionedProduct`) gives each call the estimate of the call before it (zeros first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from flowforge.discrete import clean_log_probs
from flowforge_molecules.product import DISCRETE_KEYS, ProductEncoding


def product_estimate(
    out: Mapping[str, Tensor],
    state: Mapping[str, Tensor],
    t: Tensor,
    encoding: ProductEncoding,
    prediction: str,
) -> Tensor:
    """The self-conditioning input `(B, N, 3 + K' + C')` from one network output `out` at
    `state`, time `t (B,)`: data positions and clean-token probabilities, zero on padding."""
    pos = encoding.pos_path.convert(
        out["pos"].to(state["pos"].dtype), prediction, "data", state["pos"], t
    )
    parts = [pos]
    for key in DISCRETE_KEYS:
        path = encoding.path.paths[key]
        probs = clean_log_probs(out[key], state[key], path).exp().to(pos.dtype)
        parts.append(F.pad(probs, (0, path.num_states - path.vocab)))
    real = state["mask"].unsqueeze(-1).to(pos.dtype)
    return torch.cat(parts, -1) * real


class SelfConditionedProduct:
    """A self-conditioned `ProductField` as the model of `sample_mixed`: every call gets the
    previous call's `product_estimate` (the first call of a solve none, read as zeros).

    Stateful: build one per solve (`sample_product` does).
    """

    def __init__(
        self, model: Callable[..., Mapping[str, Tensor]], encoding: ProductEncoding, prediction: str
    ):
        self.model, self.encoding, self.prediction = model, encoding, prediction
        self._estimate: Tensor | None = None

    def __call__(self, state: dict[str, Tensor], t: Tensor, **cond: Any) -> Mapping[str, Tensor]:
        out = self.model(state, t, self_cond=self._estimate, **cond)
        self._estimate = product_estimate(out, state, t, self.encoding, self.prediction)
        return out
