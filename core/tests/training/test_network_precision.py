"""`Network` under bf16 autocast returns predictions in their state's dtype, for plain tensors,
token states and the structured (dict) states of product paths."""

from __future__ import annotations

import torch
from torch import nn

from flowforge.training.network import Network


class Structured(nn.Module):
    """A position field and type logits on a dict state, as the molecules product path uses."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.emb = nn.Embedding(6, 5)

    def forward(self, x, t):
        return {"pos": self.lin(x["pos"]) * t[:, None, None], "atom_type": self.emb(x["atom_type"])}


def test_bf16_dict_state_comes_back_float32_and_close_to_float32_run():
    torch.manual_seed(0)
    model = Structured()
    state = {"pos": torch.randn(4, 7, 3), "atom_type": torch.randint(0, 6, (4, 7))}
    t = torch.rand(4)
    low, full = Network(model, "bf16")(state, t), Network(model, "float32")(state, t)
    assert {k: v.dtype for k, v in low.items()} == {
        "pos": torch.float32,
        "atom_type": torch.float32,
    }
    torch.testing.assert_close(low["pos"], full["pos"], rtol=2e-2, atol=2e-2)


def test_bf16_tensor_and_token_states():
    torch.manual_seed(0)
    lin, emb = nn.Linear(8, 8), nn.Embedding(10, 4)
    x = torch.randn(3, 8, dtype=torch.float64).float()
    assert Network(lambda x, t: lin(x), "bf16")(x, torch.rand(3)).dtype == torch.float32
    tokens = torch.randint(0, 10, (3, 5))
    assert Network(lambda x, t: emb(x), "bf16")(tokens, torch.rand(3)).dtype == torch.float32
