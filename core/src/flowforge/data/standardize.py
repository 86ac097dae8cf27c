"""Per-coordinate standardisation: train on unit-scale data, report everything in data units."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.errors import CheckpointError


@dataclass(frozen=True)
class Standardizer:
    """`z = (x - mean) / std` per coordinate; `mean, std` have shape `data_shape`.

    Fitted once on the train split and saved in every checkpoint, so a resumed run or a reloaded
    model maps between model space and data units exactly as training did.

    >>> st = Standardizer.fit(train)             # train (N, *data_shape)
    >>> x = st.decode(model_samples)             # back to data units
    """

    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, x: Tensor, min_std: float = 1e-6) -> Standardizer:
        """Mean and std of `x (N, *data_shape)` over the batch axis (std floored at `min_std`)."""
        return cls(x.mean(0), x.std(0).clamp_min(min_std))

    def encode(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x)) / self.std.to(x)

    def decode(self, z: Tensor) -> Tensor:
        return z * self.std.to(z) + self.mean.to(z)

    def log_abs_det(self) -> float:
        """log |dz/dx| = -sum(log std): add it to a model-space log-density to get data units."""
        return float(-torch.log(self.std.double()).sum())

    def state_dict(self) -> dict[str, Tensor]:
        return {"mean": self.mean.clone(), "std": self.std.clone()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> Standardizer:
        try:
            return cls(state["mean"], state["std"])
        except (KeyError, TypeError) as err:
            raise CheckpointError(f"checkpoint has no valid standardizer entry ({err})") from None
