"""The coupling contract: pairs keep the data, draw noise from the batch, and weigh sensibly."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.testing.contracts.base import Contract
from flowforge.testing.require import require
from flowforge.training.couplings import Coupled, Coupling

F64 = torch.float64


def source_rows(paired: Tensor, x_0: Tensor) -> Tensor:
    """For each row of `paired`, the index of the identical row of `x_0` (-1 if none)."""
    same = (paired.flatten(1)[:, None, :] == x_0.flatten(1)[None, :, :]).all(-1)
    return torch.where(
        same.any(1), same.float().argmax(1), torch.full_like(same[:, 0], -1, dtype=torch.long)
    )


class CouplingContract(Contract):
    """Contract for `flowforge.training.couplings.Coupling`, on states `(B, 3, 2)`.

    Checks: `x_1` comes back unchanged (labels and masks stay aligned); every paired noise row
    is a row of the given noise; weights, if any, are positive, finite and have mean 1; the
    dtype is kept; the result depends only on the generator; a coupling that needs labels
    pairs within each label and refuses a batch without labels.

        class TestMyCoupling(CouplingContract):
            name = "my_coupling"
    """

    kind = "coupling"
    batch: ClassVar[int] = 24
    shape: ClassVar[tuple[int, ...]] = (3, 2)

    def _batch(self, dtype=F64, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
        gen = torch.Generator().manual_seed(seed)
        x_0 = torch.randn(self.batch, *self.shape, generator=gen, dtype=dtype)
        labels = torch.arange(self.batch) % 3
        x_1 = 2.0 * labels.to(dtype).reshape(-1, *[1] * len(self.shape)) + torch.randn(
            self.batch, *self.shape, generator=gen, dtype=dtype
        )
        return x_0, x_1, labels

    def _pair(self, coupling: Coupling, x_0, x_1, labels, seed: int = 0) -> Coupled:
        return coupling.pair(x_0, x_1, generator=torch.Generator().manual_seed(seed), labels=labels)

    @pytest.mark.parametrize("dtype", [torch.float32, F64])
    def test_keeps_data_and_draws_noise_from_the_batch(self, component: Coupling, dtype):
        x_0, x_1, labels = self._batch(dtype)
        out = self._pair(component, x_0, x_1, labels)
        require(torch.equal(out.x_1, x_1), "a coupling must not change the data side")
        require(
            out.x_0.shape == x_0.shape and out.x_0.dtype == dtype,
            "expected out.x_0.shape == x_0.shape and out.x_0.dtype == dtype",
        )
        require((source_rows(out.x_0, x_0) >= 0).all(), "paired noise must be rows of x_0")

    def test_weights_are_positive_with_mean_one(self, component: Coupling):
        x_0, x_1, labels = self._batch()
        weight = self._pair(component, x_0, x_1, labels).weight
        if weight is None:
            pytest.skip(f"{type(component).__name__} does not weigh pairs")
        require(weight.shape == (self.batch,), "expected weight.shape == (self.batch,)")
        require(
            torch.isfinite(weight).all() and (weight > 0).all(),
            "expected torch.isfinite(weight).all() and (weight > 0).all()",
        )
        require(
            float(weight.mean()) == pytest.approx(1.0, abs=1e-6),
            "expected float(weight.mean()) == pytest.approx(1.0, abs=1e-6)",
        )

    def test_depends_only_on_the_generator(self, component: Coupling):
        x_0, x_1, labels = self._batch()
        a, b = (self._pair(component, x_0, x_1, labels, seed=3) for _ in range(2))
        require(torch.equal(a.x_0, b.x_0), "expected torch.equal(a.x_0, b.x_0)")
        require(
            (a.weight is None) == (b.weight is None),
            "expected (a.weight is None) == (b.weight is None)",
        )
        if a.weight is not None:
            require(torch.equal(a.weight, b.weight), "expected torch.equal(a.weight, b.weight)")

    def test_labels(self, component: Coupling):
        if not component.needs_labels:
            pytest.skip(f"{type(component).__name__} does not use labels")
        x_0, x_1, labels = self._batch()
        out = self._pair(component, x_0, x_1, labels)
        require(
            torch.equal(labels[source_rows(out.x_0, x_0)], labels),
            "expected torch.equal(labels[source_rows(out.x_0, x_0)], labels)",
        )
        with pytest.raises(InvalidArgumentError, match="label"):
            self._pair(component, x_0, x_1, None)
