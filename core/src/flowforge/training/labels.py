"""Class labels in training: drawn with the data, dropped to the null class, passed as `label=`.

Every objective that trains a class-conditional model (`Regression`, `Distillation`) shares
these: the model is called as `model(x_t, t, label=labels)`, and each label is replaced by the
null class `NULL_LABEL` (-1) with probability `label_dropout`, so one network learns the
conditional and the unconditional field that classifier-free guidance combines.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.training.objective import Network

NULL_LABEL = -1  # the label of "no class" for class-conditional models (CFG's unconditional call)


def check_labels(labels: Tensor | None, n: int) -> Tensor | None:
    """`labels` if they are `n` integers, one per data point; None stays None."""
    if labels is None:
        return None
    if labels.shape != (n,) or labels.is_floating_point():
        raise InvalidArgumentError(
            f"labels must be integers of shape ({n},), one per data point; got "
            f"{labels.dtype} of shape {tuple(labels.shape)}"
        )
    return labels


def check_dropout(p: float | None, labels: Tensor | None) -> float | None:
    """The label-dropout probability, or an error when there are no labels to drop."""
    if p is None:
        return None
    if labels is None:
        raise InvalidArgumentError(
            "a class-conditional model needs labels: the dataset has none; use a labelled "
            "dataset, or train an unconditional model"
        )
    if not 0 <= p < 1:
        raise InvalidArgumentError(f"label_dropout must be in [0, 1), got {p}")
    return float(p)


def drop_labels(
    labels: Tensor, dropout: float, n: int, generator: torch.Generator, part: slice | None
) -> Tensor:
    """`labels` of the rows `part` of a step's `n` samples, each replaced by `NULL_LABEL` with
    probability `dropout`: one draw of `n` uniforms from `generator` (for every part alike)."""
    drop = torch.rand(n, generator=generator, device=labels.device) < dropout
    drop = drop if part is None else drop[part]
    return torch.where(drop, torch.full_like(labels, NULL_LABEL), labels)


def with_label(network: Network, labels: Tensor) -> Network:
    """`network` called with the batch's class labels as the keyword `label`."""

    def call(x_t: Tensor, t: Tensor, **kwargs) -> Tensor:
        return network(x_t, t, label=labels, **kwargs)

    return call
