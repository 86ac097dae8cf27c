"""Progressive distillation (Salimans & Ho 2022) on any affine path and prediction kind.

The student is a `K`-step DDIM sampler on a grid `t_0 < ... < t_K`. DDIM carries the data and
noise estimates of `(x_s, s)` to the next time `u`:

    x_u = alpha(u) D + sigma(u) (x_s - alpha(s) D) / sigma(s),

so the data estimate `D` that lands exactly on a given `x_u` is

    D = (x_u - (sigma(u) / sigma(s)) x_s) / (alpha(u) - sigma(u) alpha(s) / sigma(s)).

Training draws data `x_1`, an interval `[s, u]` of the grid and noise, forms `x_s = alpha(s) x_1
+ sigma(s) x_0` (the marginal at `s`, which the teacher's ODE preserves), lets the teacher carry
`x_s` to `x_u`, and regresses the student's prediction at `(x_s, s)` on the `D` above,
converted to the student's prediction kind (with the spec's loss weighting and Huber option).
One student step then does what the teacher does over the whole interval.

Rounds halve the step count: round `r` of `R` trains on `grid` refined `R - 1 - r` times
(`refine`: midpoints in t), its teacher is the previous round's student taking two DDIM steps
(the refined grid's points), and the first round's teacher is the parent model solved with
any ODE solver. `R = 1` distils the parent directly into `K` steps.

A class-conditional model is distilled per class: each sample keeps its data point's label
(or the null class, with probability `label_dropout`), and teacher and student are both called
with it, so the student learns the conditional and the unconditional few-step maps at once
(classifier-free guidance still applies to it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.driver import sample
from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import AffinePath, check_prediction
from flowforge.solvers.base import Solver
from flowforge.spec.models import LossSpec
from flowforge.tensors import expand_like
from flowforge.training.labels import check_dropout, check_labels, drop_labels
from flowforge.training.losses import weighted_error
from flowforge.training.objective import Batch, Network, Objective
from flowforge.training.time_samplers.base import TimeSampler
from flowforge.training.time_samplers.uniform import Uniform


def refine(grid: Tensor, times: int = 1) -> Tensor:
    """`grid (K + 1,)` with the midpoint (in t) of every interval inserted, `times` times over.

    >>> refine(torch.tensor([0.0, 1.0]), 2)    # tensor([0.00, 0.25, 0.50, 0.75, 1.00])
    """
    for _ in range(times):
        mid = 0.5 * (grid[:-1] + grid[1:])
        grid = torch.cat([torch.stack([grid[:-1], mid], dim=1).reshape(-1), grid[-1:]])
    return grid


def ddim_data_target(path: AffinePath, x_s: Tensor, s: Tensor, x_u: Tensor, u: Tensor) -> Tensor:
    """The data estimate whose DDIM step from `(x_s, s)` lands on `x_u` at `u`; `(B, ...)`.

    `s, u (B,)` with `sigma(s) > 0` and a higher SNR at `u` than at `s`. The coefficients are
    computed in float64.
    """
    s64, u64 = s.double(), u.double()
    a_s, sig_s = path.alpha(s64), path.sigma(s64)
    a_u, sig_u = path.alpha(u64), path.sigma(u64)
    ratio = sig_u / sig_s
    scale = 1.0 / (a_u - ratio * a_s)
    c_u, c_s = expand_like(scale, x_u), expand_like(ratio * scale, x_s)
    return (c_u * x_u.double() - c_s * x_s.double()).to(x_s.dtype)


@dataclass(frozen=True)
class Teacher:
    """Carries `x_s` at `s (B,)` to `u (B,)`: the ODE of `field` solved by `solver` in `nfe`
    evaluations on a uniform grid of each interval; keywords (`label=`) go to every call.

    >>> teacher = Teacher(parent, CondOT(), "velocity", "rk4", 8)
    >>> x_u = teacher(x_s, s, u)
    """

    field: Callable[[Tensor, Tensor], Tensor]
    path: AffinePath
    prediction: str
    solver: str | Solver
    nfe: int

    @torch.no_grad()
    def __call__(self, x_s: Tensor, s: Tensor, u: Tensor, **cond: Tensor) -> Tensor:
        return sample(
            self.field,
            x_s,
            path=self.path,
            prediction=self.prediction,
            solver=self.solver,
            nfe=self.nfe,
            t_span=(s, u),
            time_grid="uniform",
            cond=cond or None,
            check_finite=False,
        )


class Distillation(Objective):
    """Train a student of `len(grid) - 1` DDIM steps on `grid` to match `teacher` per interval.

    `data (N, *data_shape)` in model space (on the training device); `grid (K + 1,)` increasing
    times; `loss` the weighting/Huber settings; `time_sampler`, drawing on [0, 1], picks the
    interval: interval k when its draw falls in [k/K, (k+1)/K) (uniform: each equally often).
    `labels (N,)` with `label_dropout`: distil a class-conditional model (module docstring);
    `label_dropout` None: the models never see labels.

    >>> objective = Distillation(teacher, path, "velocity", train_z, torch.tensor([0.0, 1.0]))
    """

    def __init__(
        self,
        teacher: Callable[[Tensor, Tensor, Tensor], Tensor],
        path: AffinePath,
        prediction: str,
        data: Tensor,
        grid: Tensor,
        *,
        loss: LossSpec | None = None,
        time_sampler: TimeSampler | None = None,
        labels: Tensor | None = None,
        label_dropout: float | None = None,
    ):
        if grid.ndim != 1 or grid.shape[0] < 2 or not bool((grid[1:] > grid[:-1]).all()):
            raise InvalidArgumentError(
                f"the student's grid must be increasing times (K + 1,), got {grid.tolist()}"
            )
        self.teacher = teacher
        self.path = path
        self.prediction = check_prediction(prediction)
        self.data = data
        self.grid = grid.to(device=data.device, dtype=data.dtype)
        self.loss_spec = loss or LossSpec()
        self.time_sampler = time_sampler or Uniform()
        labels = check_labels(labels, data.shape[0])
        self.labels = None if labels is None else labels.to(data.device)
        self.label_dropout = check_dropout(label_dropout, self.labels)

    @property
    def steps(self) -> int:
        return self.grid.shape[0] - 1

    def draw(self, n: int, generator: torch.Generator, part: slice | None = None) -> Batch:
        """Data indices, the interval of each sample, the noise, then the dropped labels, from
        `generator` (for all `n` samples, then cut to `part`)."""
        device = self.data.device
        rows = slice(None) if part is None else part
        idx = torch.randint(0, self.data.shape[0], (n,), generator=generator, device=device)
        x_1 = self.data[idx[rows]]
        v = self.time_sampler.sample(n, self.path, generator=generator, like=x_1, t_span=(0, 1))
        k = (v[rows] * self.steps).long().clamp(0, self.steps - 1)
        shape = (n, *x_1.shape[1:])
        x_0 = torch.randn(shape, generator=generator, device=device, dtype=x_1.dtype)[rows]
        batch = {"x_1": x_1, "x_0": x_0, "k": k}
        if self.label_dropout is not None:
            labels = self.labels[idx[rows]]
            batch["label"] = drop_labels(labels, self.label_dropout, n, generator, part)
        return batch

    def loss(self, network: Network, batch: Batch) -> Tensor:
        k = batch["k"]
        s, u = self.grid[k], self.grid[k + 1]
        x_s = self.path.sample(batch["x_0"], batch["x_1"], s).x_t
        cond = {"label": batch["label"]} if "label" in batch else {}
        with torch.no_grad():
            x_u = self.teacher(x_s, s, u, **cond)
            data = ddim_data_target(self.path, x_s, s, x_u, u)
            target = self.path.convert(data, "data", self.prediction, x_s, s)
        pred = network(x_s, s, **cond)
        return weighted_error(pred, target, self.path, self.prediction, s, self.loss_spec)
