"""Training on the product path: regression on positions plus the discrete loss on types/charges.

A step draws molecules, times, zero-centroid position noise and the discrete corruption of the
whole batch from the trainer's generator (so data-parallel parts together make one process's
batch), pairs position noise with data (`train.coupling`, e.g. `equivariant_ot`, per part), and
drops the property condition of a fraction of the samples (classifier-free guidance). Per
molecule the loss is

    w_pos * MSE(pos prediction) + w_type * L(atom_type) + w_charge * L(charge)

with the MSE over the real atoms' coordinates (spec loss weighting applies) and L, per real atom,
either the masked path's continuous-time ELBO integrand (`elbo`, MDLM) or the plain cross-entropy
of the corrupted tokens (`cross_entropy`, as FlowMol and SemlaFlow train); the uniform path always
uses the cross-entropy over every atom.

With `self_condition`, half the molecules (drawn with the batch) are predicted a second time
given the detached estimate of a first pass (`product_self_conditioning`); the loss is the second
pass's.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from flowforge.discrete import MaskedPath, clean_log_probs, diffusion_loss, token_nll
from flowforge.paths.base import check_prediction
from flowforge.spec.models import LossSpec
from flowforge.training.couplings.base import Coupling
from flowforge.training.losses import regression_target
from flowforge.training.objective import Batch, Network, Objective
from flowforge.training.self_conditioning import draw_mask, on_own_estimate
from flowforge.training.time_samplers.base import TimeSampler
from flowforge.training.time_samplers.uniform import Uniform
from flowforge_molecules.objective import masked_error
from flowforge_molecules.product import DISCRETE_KEYS, ProductEncoding, State
from flowforge_molecules.product_self_conditioning import product_estimate
from flowforge_molecules.size_batches import SizeBatches, draw_rows

DiscreteLoss = Literal["elbo", "cross_entropy"]


class ProductObjective(Objective):
    """Train a `ProductField` on product states `data` (`ProductEncoding.encode` of the set).

    `weights`: `{"pos", "atom_type", "charge"}` loss weights. `properties (M, P)`: standardised
    conditions (None: unconditional), each dropped to NaN (the null condition) with probability
    `cond_drop`. `t_span`: training times (default: the path's, ending 1e-4 short of the data,
    where the ELBO weight 1/(1-t) diverges while nothing is masked). `size_batches`: each batch
    of one atom count, cut to that width (`flowforge_molecules.size_batches`; about 0.4 of the
    pair work on QM9). `self_condition`: train a `ProductField` whose trunk takes its own
    estimate (see the module docstring).

    >>> objective = ProductObjective(enc, "velocity", enc.encode(train_state))
    >>> Trainer(ProductField(trunk, *enc.num_states), objective, spec.train, generator=g).fit()
    """

    def __init__(
        self,
        encoding: ProductEncoding,
        prediction: str,
        data: State,
        *,
        properties: Tensor | None = None,
        cond_drop: float = 0.1,
        weights: dict[str, float] | None = None,
        discrete_loss: DiscreteLoss = "elbo",
        loss: LossSpec | None = None,
        time_sampler: TimeSampler | None = None,
        coupling: Coupling | None = None,
        t_span: tuple[float, float] | None = None,
        size_batches: bool = False,
        self_condition: bool = False,
    ):
        self.encoding = encoding
        self.path = encoding.path
        self.pos_path = encoding.pos_path
        self.prediction = check_prediction(prediction)
        self.data = data
        self.properties = properties
        self.cond_drop = cond_drop
        self.weights = {"pos": 1.0, "atom_type": 1.0, "charge": 1.0, **(weights or {})}
        self.discrete_loss = discrete_loss
        self.loss_spec = loss or LossSpec()
        self.time_sampler = time_sampler or Uniform()
        self.coupling = coupling
        lo, hi = self.path.t_span if t_span is None else t_span
        self.t_span = (lo, min(hi, 1.0 - 1e-4))
        self.sizes = SizeBatches(data["mask"]) if size_batches else None
        self.self_condition = self_condition

    def draw(self, n: int, generator: torch.Generator, part: slice | None = None) -> Batch:
        """Indices, times, noise, discrete corruption and condition drops for all `n` samples,
        in that order, then the rows of `part`; the coupling pairs those rows among themselves."""
        rows = slice(None) if part is None else part
        idx, x_1 = draw_rows(self.data, n, generator, self.sizes)
        t = self.time_sampler.sample(
            n, self.pos_path, generator=generator, like=x_1["pos"], t_span=self.t_span
        )
        x_0 = self.encoding.source(x_1["mask"], generator)
        corrupted = self.path.sample(x_0, x_1, t, generator=generator)
        batch: Batch = {
            "t": t[rows],
            "mask": x_1["mask"][rows],
            "pos_1": x_1["pos"][rows],
            "pos_0": self._pair(x_0["pos"][rows], x_1["pos"][rows], x_1["mask"][rows], generator),
        }
        for k in DISCRETE_KEYS:
            batch[f"{k}_1"] = x_1[k][rows]
            batch[f"{k}_t"] = corrupted[k].x_t[rows]
        if self.properties is not None:
            props = self.properties[idx]
            drop = torch.rand(n, generator=generator, device=props.device) < self.cond_drop
            batch["properties"] = torch.where(drop[:, None], torch.nan, props)[rows]
        if self.self_condition:
            batch["self_cond"] = draw_mask(n, generator, t.device)[rows]
        return batch

    def _pair(self, pos_0: Tensor, pos_1: Tensor, mask: Tensor, generator) -> Tensor:
        """Position noise re-paired by the coupling; a mask channel marks the real atoms (an
        `equivariant_ot` permutes and rotates noise within those)."""
        if self.coupling is None:
            return pos_0
        m = mask.unsqueeze(-1).to(pos_0.dtype)
        pairs = self.coupling.pair(
            torch.cat([pos_0, m], -1), torch.cat([pos_1, m], -1), generator=generator
        )
        return pairs.x_0[..., :3]

    def loss(self, network: Network, batch: Batch) -> Tensor:
        """Per-molecule weighted sum of the position and discrete losses `(B,)`."""
        mask, t = batch["mask"], batch["t"]
        sample = self.pos_path.sample(batch["pos_0"], batch["pos_1"], t)
        state = {"pos": sample.x_t, "mask": mask, **{k: batch[f"{k}_t"] for k in DISCRETE_KEYS}}
        cond = {"properties": batch["properties"]} if "properties" in batch else {}
        out = self._predict(network, state, t, cond, batch.get("self_cond"))
        target = regression_target(sample, self.pos_path, self.prediction)
        total = self.weights["pos"] * masked_error(
            out["pos"], target, mask, self.pos_path, self.prediction, t, self.loss_spec
        )
        atoms = mask.sum(1).clamp_min(1)
        for k in DISCRETE_KEYS:
            total = total + self.weights[k] * self.token_loss(k, out[k], batch, t) / atoms
        return total

    def _predict(
        self, network: Network, state: dict, t: Tensor, cond: dict, chosen: Tensor | None
    ) -> dict[str, Tensor]:
        """The network's output; with self-conditioning, given the detached estimate of a first
        pass for the `chosen (B,)` molecules and zeros for the others."""
        if chosen is None:
            return network(state, t, **cond)
        return on_own_estimate(
            lambda est: network(state, t, self_cond=est, **cond),
            lambda out: product_estimate(out, state, t, self.encoding, self.prediction),
            chosen,
        )

    def token_loss(self, key: str, logits: Tensor, batch: Batch, t: Tensor) -> Tensor:
        """The discrete loss of `key` per molecule `(B,)`, summed over its real atoms (nats)."""
        path = self.path.paths[key]
        x_1, x_t, mask = batch[f"{key}_1"], batch[f"{key}_t"], batch["mask"]
        log_p = clean_log_probs(logits, x_t, path)
        if self.discrete_loss == "elbo" or not isinstance(path, MaskedPath):
            return diffusion_loss(log_p, x_1, x_t, t, path, mask)
        counted = (x_t == path.mask_id) & mask
        return torch.where(counted, token_nll(log_p, x_1), torch.zeros_like(t[:, None])).sum(1)
