"""Flow matching on molecule states: the core regression loss, masked to the real atoms.

A step draws molecules, times, subspace noise (zero-centroid positions, zeros on padding), pairs
noise with data (`train.coupling`, e.g. `equivariant_ot`), drops the property condition of a
fraction of the samples (so one model serves classifier-free guidance), and regresses the model's
prediction on the path sample against its conditional target. The squared error is summed over
real atoms and divided by their number times the features, so padding neither counts nor dilutes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.paths.base import AffinePath, check_prediction
from flowforge.spec.models import LossSpec
from flowforge.training import self_conditioning
from flowforge.training.couplings.base import Coupling
from flowforge.training.losses import pseudo_huber, regression_target
from flowforge.training.objective import Batch, Network, Objective
from flowforge.training.time_samplers.base import TimeSampler
from flowforge.training.time_samplers.uniform import Uniform
from flowforge.training.weighting import loss_weight
from flowforge_molecules.encoding import OneHotEncoding
from flowforge_molecules.size_batches import SizeBatches, draw_rows


class MoleculeObjective(Objective):
    """Regress `prediction` on `path` from encoded molecules `data (M, N, F)` with `mask (M, N)`.

    `properties (M, P)`: standardised conditioning values (None: unconditional); each sample's
    condition is dropped (NaN, the null condition) with probability `cond_drop`. `size_batches`:
    each batch of one atom count, cut to that width (`flowforge_molecules.size_batches`).

    >>> objective = MoleculeObjective(CondOT(), "velocity", enc, x, mask, properties=y)
    >>> trainer = Trainer(model, objective, spec.train, generator=gen)
    """

    def __init__(
        self,
        path: AffinePath,
        prediction: str,
        encoding: OneHotEncoding,
        data: Tensor,
        mask: Tensor,
        *,
        properties: Tensor | None = None,
        cond_drop: float = 0.1,
        loss: LossSpec | None = None,
        time_sampler: TimeSampler | None = None,
        coupling: Coupling | None = None,
        self_condition: bool = False,
        size_batches: bool = False,
    ):
        self.path = path
        self.prediction = check_prediction(prediction)
        self.encoding = encoding
        self.data = data
        self.mask = mask
        self.properties = properties
        self.cond_drop = cond_drop
        self.loss_spec = loss or LossSpec()
        self.time_sampler = time_sampler or Uniform()
        self.coupling = coupling
        self.self_condition = self_condition
        self.sizes = SizeBatches(mask) if size_batches else None

    def draw(self, n: int, generator: torch.Generator, part: slice | None = None) -> Batch:
        """Indices, times, noise, the coupling, condition drops and the self-conditioning mask,
        in that order from `generator`. With `part` (data-parallel training) everything is
        drawn for all `n` samples and cut to those rows; the coupling pairs them among
        themselves (`equivariant_ot` aligns each molecule alone, so the parts still make up
        the whole batch)."""
        device = self.data.device
        rows = slice(None) if part is None else part
        idx, drawn = draw_rows({"x": self.data, "mask": self.mask}, n, generator, self.sizes)
        x_1, mask = drawn["x"], drawn["mask"]
        t = self.time_sampler.sample(n, self.path, generator=generator, like=x_1)[rows]
        x_0 = self.encoding.noise(mask, generator, x_1.dtype)[rows]
        x_1, mask = x_1[rows], mask[rows]
        if self.coupling is not None:
            x_0 = self.coupling.pair(x_0, x_1, generator=generator).x_0
        batch: Batch = {"x_1": x_1, "x_0": x_0, "t": t, "mask": mask}
        if self.properties is not None:
            props = self.properties[idx]
            drop = torch.rand(n, generator=generator, device=device) < self.cond_drop
            batch["properties"] = torch.where(drop[:, None], torch.nan, props)[rows]
        if self.self_condition:
            batch["self_cond"] = self_conditioning.draw_mask(n, generator, device)[rows]
        return batch

    def loss(self, network: Network, batch: Batch) -> Tensor:
        mask = batch["mask"]
        cond = {"mask": mask}
        if "properties" in batch:
            cond["properties"] = batch["properties"]

        def field(x_t: Tensor, t: Tensor, **kw) -> Tensor:
            return network(x_t, t, **cond, **kw)

        if self.self_condition:
            field = self_conditioning.self_conditioned_call(
                field, self.path, self.prediction, batch["self_cond"]
            )
        sample = self.path.sample(batch["x_0"], batch["x_1"], batch["t"])
        target = regression_target(sample, self.path, self.prediction)
        pred = field(sample.x_t, batch["t"])
        return masked_error(
            pred, target, mask, self.path, self.prediction, batch["t"], self.loss_spec
        )


def masked_error(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    path: AffinePath,
    prediction: str,
    t: Tensor,
    loss: LossSpec,
) -> Tensor:
    """Per-sample mean squared error over the real atoms `(B,)`, with the spec's weighting."""
    m = mask.to(pred.dtype).unsqueeze(-1)
    sq = (((pred - target) * m) ** 2).sum((1, 2))
    per = sq / (m.sum((1, 2)) * pred.shape[-1]).clamp_min(1.0)
    if loss.huber_c is not None:
        per = pseudo_huber(per, loss.huber_c)
    weight = loss_weight(path, prediction, t, loss)
    return per if weight is None else per * weight.to(per.dtype)
