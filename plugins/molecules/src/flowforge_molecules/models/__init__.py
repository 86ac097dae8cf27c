"""Equivariant networks for molecules and their registered factories (`egnn`, `tensor_product`).

Factories take their pydantic `Params` and the context a molecule task supplies:
`num_features` (of the encoded state) and `num_properties` (0: unconditional).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from flowforge.errors import InvalidArgumentError
from flowforge_molecules.models.egnn import EGNN
from flowforge_molecules.models.field import Backbone, MoleculeField
from flowforge_molecules.models.tensor_product import TensorProductNet


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")

    layers: Annotated[int, Field(ge=1, description="message-passing layers")] = 9
    time_embed_dim: Annotated[int, Field(ge=2, multiple_of=2)] = 32
    property_embed_dim: Annotated[
        int, Field(ge=1, description="size of the property-conditioning embedding")
    ] = 32
    norm: Annotated[
        float, Field(gt=0, description="messages are summed and divided by this (EDM: 1)")
    ] = 1.0
    self_condition: bool = Field(
        False,
        description="take the model's own data estimate as an extra input; train with "
        "train.self_condition: true",
    )


class EGNNParams(_Common):
    """Parameters of the `egnn` model (EDM on QM9: 9 layers, 256 hidden)."""

    hidden: Annotated[int, Field(ge=1, description="hidden features per atom")] = 256


class TensorProductParams(_Common):
    """Parameters of the `tensor_product` (e3nn) model."""

    layers: Annotated[int, Field(ge=1, description="message-passing layers")] = 4
    scalars: Annotated[int, Field(ge=1, description="scalar (0e) channels per atom")] = 64
    vectors: Annotated[int, Field(ge=1, description="vector (1o) channels per atom")] = 16
    cutoff: Annotated[float, Field(gt=0, description="range of the radial basis (Angstrom)")] = 10.0


def _field(
    params: _Common,
    backbone: Callable[[int, int, int], Backbone],
    data_shape: tuple[int, ...] | None,
    num_features: int | None,
    num_properties: int,
) -> MoleculeField:
    """The `MoleculeField` around `backbone` for the task's feature and property counts."""
    features = num_features if num_features is not None else (data_shape or (0, 0))[-1]
    if features < 4:
        raise InvalidArgumentError(
            f"molecule models need encoded states (B, N, 3 + features), got {features} "
            "features per atom; use them with the `molecules` task"
        )
    return MoleculeField(
        features,
        backbone,
        params.time_embed_dim,
        num_properties,
        params.property_embed_dim,
        params.self_condition,
    )


def build_egnn(
    params: EGNNParams,
    *,
    data_shape: tuple[int, ...] | None = None,
    num_features: int | None = None,
    num_properties: int = 0,
) -> MoleculeField:
    """Factory of the registered `egnn` model."""

    def backbone(d_in: int, d_out: int, edge_dim: int) -> EGNN:
        return EGNN(d_in, d_out, params.hidden, params.layers, edge_dim, params.norm)

    return _field(params, backbone, data_shape, num_features, num_properties)


def build_tensor_product(
    params: TensorProductParams,
    *,
    data_shape: tuple[int, ...] | None = None,
    num_features: int | None = None,
    num_properties: int = 0,
) -> MoleculeField:
    """Factory of the registered `tensor_product` model."""

    def backbone(d_in: int, d_out: int, edge_dim: int) -> TensorProductNet:
        return TensorProductNet(
            d_in,
            d_out,
            params.scalars,
            params.vectors,
            params.layers,
            edge_dim,
            params.norm,
            cutoff=params.cutoff,
        )

    return _field(params, backbone, data_shape, num_features, num_properties)


__all__ = [
    "EGNN",
    "EGNNParams",
    "MoleculeField",
    "TensorProductNet",
    "TensorProductParams",
    "build_egnn",
    "build_tensor_product",
]
