"""`gram_norm`: the largest eigenvalue of `A^T A` by power iteration, against exact values."""

from __future__ import annotations

import pytest
import torch

from flowforge.guidance.linalg import gram_norm
from flowforge.operators import Dense, Downsample, Mask, gaussian_matrix, random_mask


@pytest.mark.parametrize(
    ("op", "shape", "exact"),
    [
        (Mask(random_mask((16,), 0.5, torch.Generator().manual_seed(0)), (16,)), (16,), 1.0),
        (Downsample(2, (1, 8, 8)), (1, 8, 8), 0.25),  # means of 2x2 blocks: A A^T = I / 4
        (Downsample(4, (1, 8, 8)), (1, 8, 8), 1 / 16),
    ],
)
def test_known_operators(op, shape, exact):
    like = torch.zeros(2, *shape, dtype=torch.float64)
    value = float(gram_norm(lambda v: op.adjoint(op.forward(v)), like))
    assert value == pytest.approx(exact, rel=1e-6)


def test_dense_matrix_matches_its_spectrum():
    w = gaussian_matrix(8, 16, torch.Generator().manual_seed(3))
    op = Dense(w, (16,))
    exact = float(torch.linalg.eigvalsh(w.T.double() @ w.double()).max())
    like = torch.zeros(1, 16, dtype=torch.float64)
    value = float(gram_norm(lambda v: op.adjoint(op.forward(v)), like, iters=200))
    assert value == pytest.approx(exact, rel=1e-4)
