"""The experiment spec: pydantic models of a YAML spec's structure (stage one of validation).

Component sections (`data`, `path`, `model`, the train time sampler and coupling, solvers,
guidance, metrics) name a registered component and carry its `params`; stage two
(`flowforge.spec.load`) validates those params with the component's own parameter model. A
component may be written as a bare name: `path: cond_ot`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    checkpoint: str | None = Field(
        None, description="load weights from this checkpoint instead of training"
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


class TrainSpec(Strict):
    """Optimisation settings, and how training draws times, pairs noise with data, and weighs."""

    steps: Annotated[int, Field(ge=0, description="optimizer steps (0: no training)")] = 2000
    batch_size: Annotated[int, Field(ge=1)] = 256
    lr: Annotated[float, Field(gt=0, le=1)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    ema_decay: Annotated[float, Field(ge=0, lt=1, description="0 disables EMA")] = 0.999
    grad_clip: Annotated[
        float | None, Field(gt=0, description="max gradient norm; null: no clipping")
    ] = 1.0
    time_sampler: ComponentRef = Field(
        default_factory=lambda: ComponentRef(name="uniform"),
        description="a registered time sampler: how training times are drawn",
    )
    coupling: ComponentRef = Field(
        default_factory=lambda: ComponentRef(name="independent"),
        description="a registered coupling: how noise is paired with data in a batch",
    )
    loss: LossSpec = Field(default_factory=LossSpec)
    checkpoint_every: Annotated[int, Field(ge=1)] = 500
    log_every: Annotated[int, Field(ge=1)] = 100


NAMED_GRIDS = ("auto", "uniform", "logsnr", "edm")


class SampleSpec(Strict):
    """Generation settings: any registered solver with an exact number of model calls."""

    solver: ComponentRef = Field(default_factory=lambda: ComponentRef(name="rk4"))
    nfe: Annotated[int, Field(ge=1, description="exact number of model evaluations")] = 40
    num_samples: Annotated[int, Field(ge=1)] = 2000
    batch_size: Annotated[int, Field(ge=1)] = 4096
    time_grid: str = Field(
        "auto",
        description="auto (the solver's choice), uniform, logsnr, edm, or a grid saved by "
        "`flowforge tune` (a .json file, relative to the working directory) for this solver "
        "and nfe",
        json_schema_extra={"anyOf": [{"enum": list(NAMED_GRIDS)}, {"pattern": r"\.json$"}]},
    )
    t_span: tuple[Time, Time] | None = Field(None, description="(t0, t1); default: the path's")

    @field_validator("time_grid")
    @classmethod
    def _known_grid(cls, value: str) -> str:
        if value not in NAMED_GRIDS and not value.endswith(".json"):
            raise ValueError(
                f"{value!r} is not a time grid: use one of {', '.join(NAMED_GRIDS)}, or the "
                "path of a .json grid saved by `flowforge tune`"
            )
        return value

    @field_validator("t_span")
    @classmethod
    def _distinct_ends(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] == value[1]:
            raise ValueError(f"t0 and t1 must differ (got {value[0]} for both)")
        return value


class EvaluateSpec(Strict):
    """Metrics computed on the samples and held-out data."""

    metrics: list[ComponentRef] = Field(default_factory=list)


class OutputSpec(Strict):
    """Where and what a run writes."""

    dir: str = Field("runs", description="root directory; a run writes <dir>/<name>/<timestamp>/")
    keep_checkpoints: Annotated[int, Field(ge=1)] = 3
    plots: bool = True


class ExperimentSpec(Strict):
    """A whole experiment: data, path, model, training, sampling, guidance, evaluation, output."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]
    seed: Annotated[int, Field(ge=0)] = 0
    data: ComponentRef
    path: ComponentRef
    model: ModelSpec
    train: TrainSpec | None = Field(default_factory=TrainSpec)
    sample: SampleSpec = Field(default_factory=SampleSpec)
    guidance: list[ComponentRef] = Field(default_factory=list)
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
