"""A time-conditioned MLP: the default vector field for low-dimensional data."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from flowforge.models.time_embedding import SinusoidalTimeEmbedding

ACTIVATIONS = {"silu": nn.SiLU, "gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}


class MLPParams(BaseModel):
    """Parameters of the `mlp` model."""

    model_config = ConfigDict(extra="forbid")

    width: Annotated[int, Field(ge=1, description="hidden units per layer")] = 128
    depth: Annotated[int, Field(ge=1, description="number of hidden layers")] = 3
    time_embed_dim: Annotated[
        int, Field(ge=2, multiple_of=2, description="size of the time embedding")
    ] = 32
    activation: Literal["silu", "gelu", "relu", "tanh"] = "silu"
    self_condition: bool = Field(
        False,
        description="take a self-conditioning input (a data estimate, concatenated to x_t); "
        "train it with train.self_condition: true",
    )


class MLP(nn.Module):
    """`(x_t (B, *data_shape), t (B,)) -> (B, *data_shape)`: an MLP on `[flatten(x_t), emb(t)]`.

    The output layer starts at zero, so an untrained model predicts 0 (a calm start for any
    prediction kind). With `self_condition=True` it opts in to self-conditioning
    (`flowforge.training.self_conditioning`): `forward(x_t, t, self_cond=estimate)` also reads a
    data estimate shaped like `x_t` (None: zeros).

    >>> model = MLP(data_dim=2, width=128, depth=3, time_embed_dim=32)
    >>> model(torch.randn(8, 2), torch.rand(8)).shape   # (8, 2)
    """

    def __init__(
        self,
        data_dim: int,
        width: int,
        depth: int,
        time_embed_dim: int,
        activation: str = "silu",
        self_condition: bool = False,
    ):
        super().__init__()
        self.self_conditioning = self_condition
        self.embed = SinusoidalTimeEmbedding(time_embed_dim)
        act = ACTIVATIONS[activation]
        layers: list[nn.Module] = []
        size = data_dim * (2 if self_condition else 1) + time_embed_dim
        for _ in range(depth):
            layers += [nn.Linear(size, width), act()]
            size = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(size, data_dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x_t: Tensor, t: Tensor, self_cond: Tensor | None = None) -> Tensor:
        parts = [x_t.reshape(x_t.shape[0], -1)]
        if self.self_conditioning:
            estimate = torch.zeros_like(x_t) if self_cond is None else self_cond.to(x_t.dtype)
            parts.append(estimate.reshape(x_t.shape[0], -1))
        h = torch.cat([*parts, self.embed(t).to(x_t.dtype)], dim=1)
        return self.head(self.body(h)).reshape(x_t.shape)


def build_mlp(params: MLPParams, *, data_shape: tuple[int, ...]) -> MLP:
    """Factory of the registered `mlp` model for data of shape `data_shape`."""
    return MLP(
        math.prod(data_shape),
        params.width,
        params.depth,
        params.time_embed_dim,
        params.activation,
        params.self_condition,
    )
