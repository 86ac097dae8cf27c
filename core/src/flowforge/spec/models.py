"""The experiment spec: pydantic models of a YAML spec's structure (stage one of validation).

Component sections (`task`, `data`, `path`, `model`, the train time sampler and coupling,
solvers, guidance, metrics, `operator`) name a registered component and carry its `params`;
stage two (`flowforge.spec.load`) validates those params with the component's own parameter
model, then asks the task whether the spec has the sections it needs. A component may be written
as a bare name: `path: cond_ot`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flowforge.grids import GRIDS, check_grid_name
from flowforge.paths.base import PREDICTIONS

Prediction = Literal[PREDICTIONS]  # type: ignore[valid-type]  # one list: flowforge.paths.base
Time = Annotated[float, Field(ge=0, le=1, description="0 = noise, 1 = data")]


class Strict(BaseModel):
    """Base of all spec sections: unknown keys are errors, and so are NaN and infinite numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ComponentRef(Strict):
    """A registered component by name, with its parameters (validated in stage two)."""

    name: Annotated[str, Field(min_length=1, description="registered component name")]
    params: dict[str, Any] = Field(default_factory=dict, description="the component's parameters")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict | BaseModel):
            return value
        raise ValueError(
            f"expected a registered name (e.g. `path: cond_ot`) or a mapping with `name` and "
            f"optional `params`, got {type(value).__name__}"
        )

    @field_validator("params", mode="before")
    @classmethod
    def _empty_params(cls, value: Any) -> Any:
        # `params:` with every entry commented out reads as null in YAML: no parameters.
        return {} if value is None else value


class ModelSpec(ComponentRef):
    """The network: a registered model factory, the prediction it makes, an optional checkpoint."""

    prediction: Prediction = "velocity"
    checkpoint: str | Annotated[list[str], Field(min_length=1)] | None = Field(
        None,
        description="load weights instead of training: a checkpoint file, a run directory (its "
        "newest checkpoint) or <output.dir>/<name> (the newest run of that name); a list of "
        "these: the mean of their EMA weights (checkpoints of one run)",
    )


Weighting = Literal["uniform", "snr", "min_snr", "edm"]


class LossSpec(Strict):
    """The regression objective: a weighting over time and an optional pseudo-Huber penalty.

    `uniform` is the plain mean squared error of the model's own prediction kind; the others
    weight the error of the implied data prediction by a function of the SNR, so they define the
    same objective whatever kind the model predicts (`flowforge.training.weighting`).
    """

    weighting: Weighting = Field(
        "uniform",
        description="uniform: plain MSE of the model's prediction kind; snr: SNR(t) on the "
        "data-prediction error (= noise MSE); min_snr: min(SNR, gamma) on it (Hang et al. 2023); "
        "edm: EDM's lambda(sigma) = 1/sigma^2 + 1/sigma_data^2 on it (Karras et al. 2022)",
    )
    gamma: Annotated[float, Field(gt=0, description="min_snr: the SNR cap")] = 5.0
    sigma_data: Annotated[
        float, Field(gt=0, description="edm: standard deviation of the data (per coordinate)")
    ] = 0.5
    huber_c: Annotated[
        float | None,
        Field(
            gt=0,
            description="pseudo-Huber constant c: each sample's loss is sqrt(e + c^2) - c of its "
            "mean squared error e (0.00054 in Song & Dhariwal 2023); null: squared error",
        ),
    ] = None


class ReflowSpec(Strict):
    """Reflow: the noise-data pairs a `reflow` stage generates with its parent and trains on.

    Each pair is standard Gaussian noise `x_0` and the end `x_1` of the parent's probability-flow
    ODE started from it (with `solver` in `nfe` evaluations); the student regresses the path
    between the fixed pairs (rectified flow, Liu et al. 2023; Rectified Diffusion, Wang et al.
    2024, for any affine path).
    """

    pairs: Annotated[int, Field(ge=1, description="noise-data pairs generated with the parent")] = (
        10000
    )
    solver: ComponentRef = Field(
        default_factory=lambda: ComponentRef(name="rk4"),
        description="a registered ODE solver that generates the pairs",
    )
    nfe: Annotated[int, Field(ge=1, description="parent evaluations per generated pair")] = 40
    batch_size: Annotated[int, Field(ge=1, description="pairs generated per batch")] = 4096


class DistillSpec(Strict):
    """Progressive distillation (Salimans & Ho 2022) into the DDIM sampler of the `sample` section.

    The student takes `sample.nfe` DDIM steps on the grid of `sample.time_grid`. Round `r` of
    `rounds` trains a student of `sample.nfe * 2^(rounds - 1 - r)` steps, each step matching
    its teacher over the same interval: in the first round the parent sampled with
    `teacher_solver` in `teacher_nfe` evaluations over the whole span (split evenly among the
    round's intervals), afterwards the previous round's student taking two DDIM steps.
    """

    rounds: Annotated[int, Field(ge=1, le=12, description="halvings of the step count")] = 1
    teacher_solver: ComponentRef = Field(
        default_factory=lambda: ComponentRef(name="rk4"),
        description="a registered ODE solver: how the parent is solved in the first round",
    )
    teacher_nfe: Annotated[
        int,
        Field(
            ge=1,
            description="parent evaluations over the whole span in the first round, split "
            "evenly among its intervals (a multiple of their number)",
        ),
    ] = 64


Stage = Literal["fit", "reflow", "distill"]


class TrainSpec(Strict):
    """Optimisation settings, and how training draws times, pairs noise with data, and weighs.

    `stage` picks what is trained: `fit` learns from the data; `reflow` and `distill` start
    from the finished run named by `parent` (same data, path and model) and make it sample
    well in fewer steps.
    """

    steps: Annotated[int, Field(ge=0, description="optimizer steps (0: no training)")] = 2000
    batch_size: Annotated[int, Field(ge=1)] = 256
    grad_accumulation: Annotated[
        int,
        Field(
            ge=1,
            description="micro-batches per step: batch_size is split into this many and their "
            "gradients summed, so a step equals one step on the whole batch with less memory",
        ),
    ] = 1
    lr: Annotated[float, Field(gt=0, le=1)] = 1e-3
    lr_schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="learning-rate decay after warm-up: none, linear or cosine to 0"
    )
    lr_warmup: Annotated[
        int, Field(ge=0, description="steps of linear learning-rate warm-up from lr/lr_warmup")
    ] = 0
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    ema_decay: Annotated[float, Field(ge=0, lt=1, description="0 disables EMA")] = 0.999
    ema_warmup: Annotated[
        int,
        Field(
            ge=0,
            description="EMA warm-up: the n-th update uses decay min(ema_decay, (n - 1) / "
            "(n - 1 + ema_warmup)), so the initial weights do not linger; 0: ema_decay from the "
            "start",
        ),
    ] = 0
    grad_clip: Annotated[
        float | None, Field(gt=0, description="max gradient norm; null: no clipping")
    ] = 1.0
    precision: Literal["float32", "bf16"] = Field(
        "float32",
        description="bf16: the network runs under bfloat16 autocast (CUDA, and CPU where "
        "supported); weights, optimizer and loss stay float32",
    )
    compile: bool = Field(False, description="run the network through torch.compile")
    compile_mode: Literal["default", "reduce-overhead"] = Field(
        "default",
        description="with compile: 'reduce-overhead' replays the compiled forward and backward "
        "passes as CUDA graphs (one per input shape), for steps bound by the host launching "
        "many small kernels",
    )
    draw_ahead: bool = Field(
        False,
        description="CUDA: draw the next step's batch on a side stream while this step runs, "
        "so the draw's host work (e.g. an OT coupling's assignments) overlaps the GPU's (meant "
        "for steps the GPU bounds; no gain measured yet, docs/BENCHMARKS.md); the batches and "
        "checkpoints are those of drawing each batch in its own step",
    )
    self_condition: bool = Field(
        False,
        description="self-conditioning (Chen et al. 2022): with probability 1/2 the model also "
        "gets its own detached data estimate; the model must take it (mlp: self_condition)",
    )
    time_sampler: ComponentRef = Field(
        default_factory=lambda: ComponentRef(name="uniform"),
        description="a registered time sampler: how training times are drawn",
    )
    coupling: ComponentRef = Field(
        default_factory=lambda: ComponentRef(name="independent"),
        description="a registered coupling: how noise is paired with data in a batch",
    )
    loss: LossSpec = Field(default_factory=LossSpec)
    max_nonfinite: Annotated[
        int,
        Field(
            ge=1,
            description="stop after this many NaN/Inf steps in a row (each is skipped)",
        ),
    ] = 20
    skip_spikes: Annotated[
        float | None,
        Field(
            gt=1,
            description="skip (as a NaN step) a step whose loss or gradient norm is above this "
            "many times the running mean of the accepted steps', e.g. 10: an outlier batch "
            "then never reaches the weights or Adam's moments; counted apart, and in "
            "max_nonfinite's streak; null: off",
        ),
    ] = None
    checkpoint_every: Annotated[int, Field(ge=1)] = 500
    log_every: Annotated[int, Field(ge=1)] = 100
    eval_every: Annotated[
        int | None,
        Field(
            ge=1,
            description="sample and compute evaluate.metrics with the EMA weights every this "
            "many steps, into metrics.jsonl; null: only at the end",
        ),
    ] = None
    tensorboard: bool = Field(
        False, description="also log to <run>/tensorboard (needs the tensorboard package)"
    )
    stage: Stage = Field(
        "fit",
        description="fit: train on the data; reflow: retrain on noise-data pairs of the parent; "
        "distill: progressive distillation of the parent into sample.nfe DDIM steps",
    )
    parent: str | None = Field(
        None,
        description="reflow/distill: the finished run to start from: a run directory, "
        "<output.dir>/<name> (its newest run) or a spec file (the newest run of that spec)",
    )
    reflow: ReflowSpec | None = Field(None, description="stage reflow: how the pairs are made")
    distill: DistillSpec | None = Field(None, description="stage distill: rounds and teacher")

    @model_validator(mode="after")
    def _consistent(self) -> TrainSpec:
        if self.batch_size % self.grad_accumulation:
            raise ValueError(
                f"grad_accumulation ({self.grad_accumulation}) must divide batch_size "
                f"({self.batch_size}): each step splits the batch into equal micro-batches"
            )
        if self.compile_mode != "default" and not self.compile:
            raise ValueError(
                f"compile_mode {self.compile_mode!r} applies to a compiled network: set "
                "`compile: true` or remove `compile_mode`"
            )
        for stage in ("reflow", "distill"):
            if getattr(self, stage) is not None and self.stage != stage:
                raise ValueError(
                    f"`{stage}` settings are given but stage is {self.stage!r}: set "
                    f"`stage: {stage}` or remove `{stage}`"
                )
        if self.stage == "fit":
            if self.parent is not None:
                raise ValueError(
                    "`parent` is read only by stage reflow or distill: set `stage` or remove "
                    "`parent`"
                )
            return self
        if self.parent is None:
            raise ValueError(
                f"stage {self.stage!r} starts from a finished run: set `parent` to its run "
                "directory, <output.dir>/<name>, or its spec file"
            )
        if self.coupling.name != "independent":
            raise ValueError(
                f"stage {self.stage!r} fixes which noise goes with which data (coupling "
                f"{self.coupling.name!r} would re-pair them): remove `coupling`"
            )
        if self.stage == "reflow" and self.reflow is None:
            self.reflow = ReflowSpec()
        if self.stage == "distill":
            self.distill = self.distill or DistillSpec()
            if self.self_condition:
                raise ValueError(
                    "stage distill does not support self_condition: a student step has no "
                    "previous estimate to condition on; distill a model without it"
                )
            if self.steps % self.distill.rounds:
                raise ValueError(
                    f"steps ({self.steps}) must be a multiple of distill.rounds "
                    f"({self.distill.rounds}): every round trains as many steps"
                )
        return self


class SampleSpec(Strict):
    """Generation settings: any registered solver with an exact number of model calls."""

    solver: ComponentRef = Field(default_factory=lambda: ComponentRef(name="rk4"))
    nfe: Annotated[int, Field(ge=1, description="exact number of model evaluations")] = 40
    num_samples: Annotated[int, Field(ge=1)] = 2000
    batch_size: Annotated[int, Field(ge=1)] = 4096
    time_grid: str = Field(
        "auto",
        description="auto (the path's recommended grid, uniform on cond_ot; else the "
        "solver's), uniform, logsnr, edm, or a grid saved by `flowforge tune` (a .json file, "
        "relative to the working directory) for this solver and nfe",
        json_schema_extra={"anyOf": [{"enum": list(GRIDS)}, {"pattern": r"\.json$"}]},
    )
    t_span: tuple[Time, Time] | None = Field(None, description="(t0, t1); default: the path's")

    @field_validator("time_grid")
    @classmethod
    def _known_grid(cls, value: str) -> str:
        return check_grid_name(value)

    @field_validator("t_span")
    @classmethod
    def _distinct_ends(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] == value[1]:
            raise ValueError(f"t0 and t1 must differ (got {value[0]} for both)")
        return value


class EvaluateSpec(Strict):
    """Metrics computed on the samples and held-out data."""

    metrics: list[ComponentRef] = Field(default_factory=list)


class SimulateSpec(Strict):
    """Measurements simulated from held-out data: `y = A x + noise` for `count` points of a split.

    The points are `split[index : index + count]`; the noise (the operator's `noise_std`) is
    drawn from `seed`, so the same spec always sees the same measurements.
    """

    split: Literal["test", "val"] = Field(
        "test", description="held-out split the signals x come from"
    )
    index: Annotated[int, Field(ge=0, description="first point of the split")] = 0
    count: Annotated[int, Field(ge=1, description="number of measurements")] = 1
    seed: Annotated[int, Field(ge=0, description="seed of the measurement noise")] = 0


class MeasurementSpec(Strict):
    """The observations of an inverse problem: a `.npy` file of `y`, or simulated from held-out
    data.

    `file` holds one measurement `(*measurement_shape)` or several `(M, *measurement_shape)`, in
    data units (relative paths: from the working directory); the ground truth is then unknown.
    `simulate` measures held-out points, which become the ground truth of the error metrics.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["file"], "properties": {"file": {"type": "string"}}},
                {"required": ["simulate"], "properties": {"simulate": {"type": "object"}}},
            ]
        }
    )

    file: str | None = Field(
        None,
        pattern=r"\.npy$",
        description="a .npy file of y: (*measurement_shape) or (M, *measurement_shape)",
    )
    simulate: SimulateSpec | None = Field(
        None, description="simulate y = A x + noise from held-out data"
    )

    @model_validator(mode="after")
    def _one_source(self) -> MeasurementSpec:
        if (self.file is None) == (self.simulate is None):
            given = "both" if self.file is not None else "neither"
            raise ValueError(
                f"give exactly one of `file` (a .npy of y) or `simulate` (from held-out data), "
                f"got {given}"
            )
        return self


class OutputSpec(Strict):
    """Where and what a run writes."""

    dir: str = Field("runs", description="root directory; a run writes <dir>/<name>/<timestamp>/")
    keep_checkpoints: Annotated[int, Field(ge=1)] = 3
    plots: bool = True


class ExperimentSpec(Strict):
    """A whole experiment: the task, data, path, model, training, sampling, guidance, evaluation,
    output; and for inverse problems the operator and the measurement.

    `task` picks what `flowforge run` does (default `generate`); `operator` and `measurement`
    belong to the `inverse_problem` task, which checks that they are given (and `generate` that
    they are not).
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]
    seed: Annotated[int, Field(ge=0)] = 0
    data: ComponentRef
    path: ComponentRef
    model: ModelSpec
    train: TrainSpec | None = Field(default_factory=TrainSpec)
    sample: SampleSpec = Field(default_factory=SampleSpec)
    guidance: list[ComponentRef] = Field(default_factory=list)
    task: ComponentRef = Field(
        default_factory=lambda: ComponentRef(name="generate"),
        description="a registered task: what `flowforge run` does (generate, inverse_problem)",
    )
    operator: ComponentRef | None = Field(
        None,
        description="inverse_problem: the registered operator A of y = A x + noise (its params "
        "include noise_std)",
    )
    measurement: MeasurementSpec | None = Field(
        None, description="inverse_problem: the measurements y, from a file or simulated"
    )
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)

    @model_validator(mode="after")
    def _stage_trains(self) -> ExperimentSpec:
        if self.train is not None and self.train.stage != "fit" and self.model.checkpoint:
            raise ValueError(
                f"model.checkpoint loads weights instead of training, so train.stage "
                f"{self.train.stage!r} would never run: remove model.checkpoint (the stage "
                "starts from train.parent) or set train.stage: fit"
            )
        return self
