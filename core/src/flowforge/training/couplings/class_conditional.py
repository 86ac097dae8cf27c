"""Class-conditional minibatch OT: optimal pairs, but only within each condition label."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.training.couplings.assignment import assignment
from flowforge.training.couplings.base import Coupled, Coupling, squared_distances
from flowforge.training.couplings.exact_ot import check_batch


@dataclass(frozen=True)
class ClassConditionalOT(Coupling):
    """Exact OT within each label: data of class `c` is paired only with noise drawn at the
    batch positions of class `c`.

    For a conditional model the noise must not carry information across conditions: pairing a
    class-`c` point with noise chosen among all classes would make the noise depend on other
    classes' data. The noise at the positions of one class is an i.i.d. sample on its own, so
    each class gets its own exact assignment (`assignment`, on the CPU).

    >>> batch = ClassConditionalOT().pair(x_0, x_1, generator=gen, labels=y)
    """

    needs_labels: ClassVar[bool] = True

    max_batch: Annotated[
        int, Field(ge=1, description="largest batch solved exactly (O(B^3) on the CPU)")
    ] = 512

    def pair(
        self,
        x_0: Tensor,
        x_1: Tensor,
        *,
        generator: torch.Generator,
        labels: Tensor | None = None,
    ) -> Coupled:
        if labels is None or labels.shape != (x_1.shape[0],):
            got = "none" if labels is None else f"shape {tuple(labels.shape)}"
            raise InvalidArgumentError(
                f"train.coupling class_conditional needs one integer label per data point "
                f"({x_1.shape[0]},), got {got}; use a dataset with labels, or exact_ot"
            )
        check_batch(x_1.shape[0], self.max_batch, "class_conditional")
        with torch.no_grad():
            cost = squared_distances(x_1, x_0)
            host_labels = labels.detach().cpu()
            perm = torch.arange(x_1.shape[0], device=x_1.device)
            for label in torch.unique(host_labels):
                idx = torch.nonzero(host_labels == label).squeeze(1).to(x_1.device)
                perm[idx] = idx[assignment(cost[idx][:, idx])]
        return Coupled(x_0[perm], x_1)
