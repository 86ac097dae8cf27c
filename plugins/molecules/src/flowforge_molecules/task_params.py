"""Parameters of the `molecules` task (its `task.params` in a spec)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from flowforge.spec.models import ComponentRef


class RegressorSpec(BaseModel):
    """The invariant property regressor: guidance signal and property-MAE judge."""

    model_config = ConfigDict(extra="forbid")

    steps: Annotated[int, Field(ge=0, description="training steps (0: untrained)")] = 2000
    batch_size: Annotated[int, Field(ge=1)] = 128
    lr: Annotated[float, Field(gt=0, le=1)] = 5e-4
    hidden: Annotated[int, Field(ge=1)] = 128
    layers: Annotated[int, Field(ge=1)] = 6


class LossWeights(BaseModel):
    """Weights of the product-state loss terms (`state: product`)."""

    model_config = ConfigDict(extra="forbid")

    pos: Annotated[float, Field(ge=0, description="position regression (per coordinate)")] = 1.0
    atom_type: Annotated[float, Field(ge=0, description="atom-type loss (nats per atom)")] = 1.0
    charge: Annotated[float, Field(ge=0, description="formal-charge loss (nats per atom)")] = 1.0


class MoleculesParams(BaseModel):
    """What the `molecules` task trains, targets and evaluates."""

    model_config = ConfigDict(extra="forbid")

    properties: list[str] = Field(
        default_factory=list,
        description="properties to target (QM9: alpha, gap, homo, lumo, mu, Cv): the generator "
        "is conditioned on them (condition: true) and/or guided by the regressor (guidance "
        "`classifier`), and property_mae scores them; empty: unconditional",
    )
    condition: bool = Field(
        True, description="train the generator conditioned on `properties` (classifier-free)"
    )
    cond_drop: Annotated[
        float, Field(ge=0, le=1, description="probability of training with the null condition")
    ] = 0.1
    protocol: Literal["edm", "full"] = Field(
        "edm",
        description="edm: with properties, the regressor trains on one half of the training "
        "split (Da) and the generator on the other (Db), as in EDM; full: both on all of it",
    )
    targets: dict[str, float] | None = Field(
        None,
        description="fixed property targets in data units; null: drawn with the atom counts "
        "from the generator's training molecules (EDM)",
    )
    state: Literal["product", "onehot"] = Field(
        "product",
        description="product: the spec's path on positions and a discrete path on atom types "
        "and charges (core sample_mixed); onehot: EDM-style, one Gaussian path on positions and "
        "scaled type/charge one-hots (any core solver and guidance)",
    )
    discrete_path: Literal["masked", "uniform"] = Field(
        "masked", description="state: product: the path of atom types and charges"
    )
    discrete_solver: ComponentRef = Field(
        default_factory=lambda: ComponentRef(name="ancestral"),
        description="state: product: the discrete solver of types and charges (ancestral, "
        "tau_leaping, ctmc_euler; params temperature and eta); sample.solver moves the positions "
        "and must make one evaluation per step (euler, ddim, dpm_solver_pp, unipc; euler_maruyama "
        "and reverse_sde only with train.coupling: independent)",
    )
    discrete_loss: Literal["elbo", "cross_entropy"] = Field(
        "elbo",
        description="state: product, masked path: the ELBO integrand (MDLM) or the plain "
        "cross-entropy of the masked tokens",
    )
    loss_weights: LossWeights = Field(default_factory=LossWeights)
    size_batches: bool = Field(
        False,
        description="draw each training batch from one atom count and cut it to that width "
        "(each molecule as likely as before; about 0.4 of the pair work on QM9, ~3x faster "
        "steps on CPU)",
    )
    n_atoms: Annotated[
        int | None, Field(ge=1, description="atoms per molecule; null: the training histogram")
    ] = None
    type_scale: Annotated[
        float, Field(gt=0, description="state: onehot: scale of the type one-hots")
    ] = 0.25
    charge_scale: Annotated[
        float, Field(gt=0, description="state: onehot: scale of the formal-charge one-hots")
    ] = 0.25
    regressor: RegressorSpec = Field(default_factory=RegressorSpec)
    depictions: Annotated[
        int, Field(ge=0, description="valid samples drawn in plots/molecules.png")
    ] = 24
