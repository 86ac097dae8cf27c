"""The product sampler, decoding and evaluator end to end, with an exact field instead of a
network: sampling the exact posterior of a few fixture molecules must give them back, stable."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from flowforge_molecules.metrics.stability import stability
from flowforge_molecules.product import DISCRETE_KEYS, ProductEncoding
from flowforge_molecules.product_sampling import sample_product

from flowforge.paths import CondOT


class ExactField(torch.nn.Module):
    """E[x_1 | x_t] over the molecules `data` (one atom count) for `cond_ot` positions and
    masked types/charges: velocity `(E[pos_1] - pos_t) / (1 - t)`, log-probabilities of the
    clean tokens. Unmasked tokens must match a molecule's; positions weigh it by the Gaussian
    likelihood of `pos_t` around `t pos_1`."""

    def __init__(self, data: dict[str, torch.Tensor], num_states: tuple[int, int]):
        super().__init__()
        self.data, self.num_states = data, dict(zip(DISCRETE_KEYS, num_states, strict=True))

    def forward(self, state, t, properties=None):
        x, s = state["pos"], t.reshape(-1, 1)
        x1 = self.data["pos"].to(x)
        d2 = ((x[:, None] - s[..., None, None] * x1[None]) ** 2).sum((-1, -2))
        logw = -d2 / (2 * (1 - s) ** 2).clamp_min(1e-12)
        for key, states in self.num_states.items():
            tok = state[key][:, None]
            ok = ((tok == self.data[key][None]) | (tok == states - 1)).all(-1)
            logw = logw.masked_fill(~ok, -torch.inf)
        w = torch.softmax(logw, 1)
        out = {"pos": (torch.einsum("bm,mnd->bnd", w, x1) - x) / (1 - s[..., None]).clamp_min(1e-6)}
        for key, states in self.num_states.items():
            p = torch.einsum("bm,mnk->bnk", w, F.one_hot(self.data[key], states).to(x))
            out[key] = torch.log(p + 1e-30)
        return out


@pytest.mark.parametrize("solver", ["euler", "dpm_solver_pp"])
def test_sampling_an_exact_field_gives_stable_molecules(fixture_dataset, float64, solver):
    state = fixture_dataset.states()["train"]
    enc = ProductEncoding(fixture_dataset.elements, CondOT(), "masked", fixture_dataset.charges)
    data = enc.encode(state)
    size = int(torch.mode(state.n_atoms).values)
    keep = state.n_atoms == size
    field = ExactField({k: v[keep] for k, v in data.items()}, enc.num_states)
    out = sample_product(
        field,
        enc,
        "velocity",
        torch.full((64,), size),
        solver=solver,
        discrete_solver="ancestral",
        nfe=50,
        max_atoms=state.mask.shape[1],
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
    )
    result = stability(out.to_lists(fixture_dataset.elements))
    assert result["atom_stability"] >= 0.97
    assert result["mol_stability"] >= 0.85
