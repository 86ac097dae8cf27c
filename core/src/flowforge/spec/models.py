"""The experiment spec: pydantic models of a YAML spec's structure (stage one of validation).

Component sections (`data`, `path`, `model`, solvers, guidance, metrics) name a registered
component and carry its `params`; stage two (`flowforge.spec.load`) validates those params with
the component's own parameter model. A component may be written as a bare name: `path: cond_ot`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flowforge.paths.base import PREDICTIONS

Prediction = Literal["velocity", "data", "noise", "score"]


class Strict(BaseModel):
    """Base of all spec sections: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class ComponentRef(Strict):
    """A registered component by name, with its parameters (validated in stage two)."""

    name: Annotated[str, Field(min_length=1, description="registered component name")]
    params: dict[str, Any] = Field(default_factory=dict, description="the component's parameters")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class ModelSpec(ComponentRef):
    """The network: a registered model factory, the kind of prediction it makes, an optional checkpoint."""

    prediction: Prediction = "velocity"
    checkpoint: str | None = Field(None, description="load weights from this checkpoint instead of training")


class TrainSpec(Strict):
    """Optimisation settings."""

    steps: Annotated[int, Field(ge=0, description="optimizer steps (0: no training)")] = 2000
    batch_size: Annotated[int, Field(ge=1)] = 256
    lr: Annotated[float, Field(gt=0, le=1)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    ema_decay: Annotated[float, Field(ge=0, lt=1, description="0 disables EMA")] = 0.999
    grad_clip: Annotated[float | None, Field(gt=0, description="max gradient norm; null: no clipping")] = 1.0
    time_sampler: Literal["uniform"] = "uniform"
    checkpoint_every: Annotated[int, Field(ge=1)] = 500
    log_every: Annotated[int, Field(ge=1)] = 100


class SampleSpec(Strict):
    """Generation settings: any registered solver with an exact number of model calls."""

    solver: ComponentRef = Field(default_factory=lambda: ComponentRef(name="rk4"))
    nfe: Annotated[int, Field(ge=1, description="exact number of model evaluations")] = 40
    num_samples: Annotated[int, Field(ge=1)] = 2000
    batch_size: Annotated[int, Field(ge=1)] = 4096
    time_grid: Literal["auto", "uniform", "logsnr", "edm"] = "auto"
    t_span: tuple[float, float] | None = Field(None, description="(t0, t1); default: the path's")


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
