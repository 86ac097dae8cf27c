"""A solve with the solver's precomputed fast path against the same solve through a guidance
hook that converts every prediction, which forces the plain (converting) step."""

from __future__ import annotations

import torch

import flowforge
from flowforge.guidance import Guidance


class AsData(Guidance):
    """Hands the solver the same prediction as a data prediction (another kind than the
    model's), so the step converts it as it is instead of using its precomputed coefficients."""

    def on_prediction(self, pred, dynamics):
        return pred.with_value(pred.data, "data")


def assert_fast_step_is_the_plain_step(field, x: torch.Tensor, **kw) -> None:
    """`flowforge.sample(field, x, **kw)` with and without `AsData`, the same seed: equal up to
    rounding."""
    fast = flowforge.sample(field, x, generator=torch.Generator().manual_seed(1), **kw)
    plain = flowforge.sample(
        field, x, guidance=AsData(), generator=torch.Generator().manual_seed(1), **kw
    )
    torch.testing.assert_close(fast, plain, rtol=1e-10, atol=1e-10)
