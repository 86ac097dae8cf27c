"""The regression objective: flow matching / denoising on data, or on fixed noise-data pairs.

A step draws data `x_1`, times `t` (`train.time_sampler`) and Gaussian noise `x_0`, pairs
noise with data (`train.coupling`) and regresses the model's prediction on the path sample
`x_t = alpha(t) x_1 + sigma(t) x_0` against its conditional target (`regression_loss`).

With `label_dropout` set the model is class-conditional: it is called as
`model(x_t, t, label=labels)` with each label replaced by the null class `NULL_LABEL` (-1) with
that probability, so one network learns the conditional and the unconditional field that
classifier-free guidance (`flowforge.guidance.CFG`) combines.

With `noise` given the pairs are fixed instead: sample `i` is always `(noise[i], data[i])`.
That is reflow (rectified flow, Liu et al. 2023; Rectified Diffusion, Wang et al. 2024): the
pairs are the ends of a trained model's ODE, and regressing the path between them yields a
flow whose trajectories are straighter, for any affine path.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge import registry
from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import AffinePath, check_prediction
from flowforge.spec.models import LossSpec, TrainSpec
from flowforge.training import self_conditioning
from flowforge.training.couplings.base import Coupling
from flowforge.training.couplings.independent import Independent
from flowforge.training.labels import (
    NULL_LABEL,
    check_dropout,
    check_labels,
    drop_labels,
    with_label,
)
from flowforge.training.losses import per_sample_loss
from flowforge.training.objective import Batch, Network, Objective
from flowforge.training.time_samplers.base import TimeSampler
from flowforge.training.time_samplers.uniform import Uniform

__all__ = ["NULL_LABEL", "Regression"]


class Regression(Objective):
    """Regress `prediction` on `path` from `data (N, *data_shape)` (model space, on its device).

    `labels (N,)`: integer classes for class-conditional couplings. `noise (N, *data_shape)`:
    fixed standard-normal partners of the data (reflow); no coupling then applies.
    `t_span`: where times are drawn (default: the path's). `self_condition`: train a
    self-conditioned model (`flowforge.training.self_conditioning`). `coupling_name`: the
    coupling's registered name, for messages. `label_dropout`: train a class-conditional model
    on `labels` (see the module docstring); None: the model never sees labels.

    >>> objective = Regression(CondOT(), "velocity", data, coupling=ExactOT())
    >>> reflow = Regression(CondOT(), "velocity", generated, noise=their_noise)
    """

    def __init__(
        self,
        path: AffinePath,
        prediction: str,
        data: Tensor,
        *,
        loss: LossSpec | None = None,
        time_sampler: TimeSampler | None = None,
        coupling: Coupling | None = None,
        labels: Tensor | None = None,
        noise: Tensor | None = None,
        t_span: tuple[float, float] | None = None,
        self_condition: bool = False,
        coupling_name: str | None = None,
        label_dropout: float | None = None,
    ):
        self.path = path
        self.prediction = check_prediction(prediction)
        self.data = data
        self.loss_spec = loss or LossSpec()
        self.time_sampler = time_sampler or Uniform()
        self.coupling = coupling or Independent()
        self.coupling_name = coupling_name or type(self.coupling).__name__
        self.noise = self._check_noise(noise, data)
        self.labels = self._check_labels(labels, data)
        self.t_span = tuple(path.t_span if t_span is None else t_span)
        self.self_condition = self_condition
        self.label_dropout = check_dropout(label_dropout, self.labels)

    @classmethod
    def from_spec(
        cls,
        path: AffinePath,
        prediction: str,
        data: Tensor,
        config: TrainSpec,
        *,
        labels: Tensor | None = None,
        noise: Tensor | None = None,
        t_span: tuple[float, float] | None = None,
        label_dropout: float | None = None,
    ) -> Regression:
        """The objective `config` (a spec's `train` section) describes."""
        sampler = registry.create(
            "time_sampler", config.time_sampler.name, **config.time_sampler.params
        )
        coupling = registry.create("coupling", config.coupling.name, **config.coupling.params)
        return cls(
            path,
            prediction,
            data,
            loss=config.loss,
            time_sampler=sampler,
            coupling=coupling,
            labels=labels,
            noise=noise,
            t_span=t_span,
            self_condition=config.self_condition,
            coupling_name=config.coupling.name,
            label_dropout=label_dropout,
        )

    def _check_noise(self, noise: Tensor | None, data: Tensor) -> Tensor | None:
        if noise is None:
            return None
        if noise.shape != data.shape:
            raise InvalidArgumentError(
                f"fixed noise must be shaped like the data {tuple(data.shape)}, one partner per "
                f"point; got {tuple(noise.shape)}"
            )
        if not isinstance(self.coupling, Independent):
            raise InvalidArgumentError(
                f"train.coupling {self.coupling_name!r} would re-pair fixed noise-data "
                "pairs (reflow); use train.coupling: independent"
            )
        return noise.to(data.device)

    def _check_labels(self, labels: Tensor | None, data: Tensor) -> Tensor | None:
        if labels is None:
            if self.coupling.needs_labels:
                raise InvalidArgumentError(
                    f"train.coupling {self.coupling_name!r} pairs noise and data within "
                    "each class, but the data has no labels; use a dataset with labels, or "
                    "train.coupling: exact_ot"
                )
            return None
        return check_labels(labels, data.shape[0]).to(data.device)

    def draw(self, n: int, generator: torch.Generator, part: slice | None = None) -> Batch:
        """Data indices, times, noise (or the fixed partners), the coupling, the
        self-conditioning mask and the dropped labels, in that order from `generator`.

        With `part`, indices, times, noise, mask and label drops are drawn for all `n` samples
        and cut to `part`; the coupling then pairs the rows of `part` among themselves (each
        process of a data-parallel run solves OT on its own shard, as torchcfm does per GPU).
        """
        device = self.data.device

        def cut(v: Tensor) -> Tensor:
            return v if part is None else v[part]

        idx = cut(torch.randint(0, self.data.shape[0], (n,), generator=generator, device=device))
        x_1 = self.data[idx]
        t = self.time_sampler.sample(
            n, self.path, generator=generator, like=x_1, t_span=self.t_span
        )
        batch: Batch = {"x_1": x_1, "t": cut(t)}
        if self.noise is not None:
            batch["x_0"] = self.noise[idx]
        else:
            shape = (n, *x_1.shape[1:])
            x_0 = cut(torch.randn(shape, generator=generator, device=device, dtype=x_1.dtype))
            labels = None if self.labels is None else self.labels[idx]
            pairs = self.coupling.pair(x_0, x_1, generator=generator, labels=labels)
            batch.update(x_0=pairs.x_0, x_1=pairs.x_1)
            if pairs.weight is not None:
                batch["weight"] = pairs.weight
        if self.self_condition:
            batch["self_cond"] = cut(self_conditioning.draw_mask(n, generator, device))
        if self.label_dropout is not None:
            batch["label"] = drop_labels(self.labels[idx], self.label_dropout, n, generator, part)
        return batch

    def loss(self, network: Network, batch: Batch) -> Tensor:
        if "label" in batch:
            network = with_label(network, batch["label"])
        field = network
        if self.self_condition:
            field = self_conditioning.self_conditioned_call(
                network, self.path, self.prediction, batch["self_cond"]
            )
        per = per_sample_loss(
            field,
            self.path,
            self.prediction,
            batch["x_0"],
            batch["x_1"],
            batch["t"],
            self.loss_spec,
        )
        weight = batch.get("weight")
        return per if weight is None else per * weight.to(per.dtype)
