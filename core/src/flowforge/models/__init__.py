"""Core models: small networks usable as vector fields for any path and prediction kind."""

from flowforge.models.mlp import MLP, MLPParams, build_mlp
from flowforge.models.time_embedding import SinusoidalTimeEmbedding

__all__ = ["MLP", "MLPParams", "SinusoidalTimeEmbedding", "build_mlp"]
