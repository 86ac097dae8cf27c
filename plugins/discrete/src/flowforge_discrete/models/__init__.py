"""Sequence models: a small transformer (bidirectional or causal)."""

from flowforge_discrete.models.transformer import Transformer, TransformerParams, build_transformer

__all__ = ["Transformer", "TransformerParams", "build_transformer"]
