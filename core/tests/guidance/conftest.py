"""Fixtures of the guidance tests: inverse problems whose posterior is known exactly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from flowforge.testing.posterior import PosteriorProblem, mixture_problem


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Many small solves: intra-op threads only add overhead on a shared machine."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@pytest.fixture(scope="module", params=["mask", "dense"])
def problem(request) -> PosteriorProblem:
    """d = 16, noise std 0.1, a 50% mask or a dense (8, 16) Gaussian matrix."""
    return mixture_problem(request.param)
