"""Loss weightings over time: one objective, whatever prediction kind the model makes.

On an affine path an error `e_k` in a prediction of kind `k` at `(x_t, t)` is an error
`c_k(t) e_k` in the implied data prediction, with `c_k = d x_1 / d pred_k`: data 1,
noise `-sigma/alpha`, score `sigma^2/alpha`, velocity `-sigma/(alpha sigma' - sigma alpha')`.
A weighting is a weight `w(t)` on the data-prediction squared error, so a model of kind `k` is
weighted by `w(t) c_k(t)^2`: the weighted loss is the same function of the model for every kind.

- `snr`: `w = SNR = alpha^2/sigma^2`, i.e. the plain noise-prediction MSE (DDPM's loss).
- `min_snr`: `w = min(SNR, gamma)` (Hang et al. 2023, "Efficient diffusion training via Min-SNR").
- `edm`: `w = 1/sigma_edm^2 + 1/sigma_data^2` with `sigma_edm = sigma/alpha`, EDM's
  `lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2` (Karras et al. 2022).
- `uniform` is not of this form: it is the plain MSE of the model's own kind (weight 1).
"""

from __future__ import annotations

from typing import get_args

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import AffinePath, check_prediction
from flowforge.spec.models import LossSpec, Weighting

WEIGHTINGS: tuple[str, ...] = get_args(Weighting)

# alpha and sigma are floored here (in float64) so that the weights take their limits at the
# ends of a path (alpha = 0 at the noise end of cond_ot, sigma = 0 at its data end) instead of
# 0 * inf = NaN; where a weight truly diverges (snr on a data model at sigma = 0) it stays huge.
_FLOOR = 1e-30


def data_error_scale(path: AffinePath, prediction: str, t: Tensor) -> Tensor:
    """`|d x_1 / d pred|` at `t (B,)`: how an error in `prediction` scales into the data error."""
    check_prediction(prediction)
    t = t.double()
    a, s = path.alpha(t).clamp_min(_FLOOR), path.sigma(t).clamp_min(_FLOOR)
    if prediction == "data":
        return torch.ones_like(t)
    if prediction == "noise":
        return s / a
    if prediction == "score":
        return s * s / a
    det = (a * path.d_sigma(t) - s * path.d_alpha(t)).abs()
    return s / det


def data_weight(path: AffinePath, t: Tensor, loss: LossSpec) -> Tensor:
    """The weight `w(t) (B,)`, float64, on the data-prediction squared error (not `uniform`)."""
    t = t.double()
    a, s = path.alpha(t).clamp_min(_FLOOR), path.sigma(t).clamp_min(_FLOOR)
    snr = (a / s) ** 2
    if loss.weighting == "snr":
        return snr
    if loss.weighting == "min_snr":
        return snr.clamp_max(loss.gamma)
    if loss.weighting == "edm":
        return snr + 1.0 / loss.sigma_data**2
    raise InvalidArgumentError(
        f"loss.weighting {loss.weighting!r} has no data-space weight; use one of "
        f"{', '.join(w for w in WEIGHTINGS if w != 'uniform')}"
    )


def loss_weight(path: AffinePath, prediction: str, t: Tensor, loss: LossSpec) -> Tensor | None:
    """Per-sample weight `(B,)` on the squared error of a `prediction` model; None if uniform."""
    if loss.weighting == "uniform":
        return None
    return data_weight(path, t, loss) * data_error_scale(path, prediction, t) ** 2
