"""DDNM: range-null space decomposition; its noisy variant DDNM+ scales the range part."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics
from flowforge.guidance.consistency import DataConsistency
from flowforge.guidance.measurement import Measurement
from flowforge.operators import SVDOperator
from flowforge.tensors import expand_like


@dataclass(frozen=True)
class DDNM(DataConsistency):
    """Denoising diffusion null-space model (Wang et al. 2023). Hook: after the step.

    The data estimate keeps its null-space part and takes its range part from `y`:

        D' = A^+ y + (I - A^+ A) D = D + A^+ (y - A D)                        (noiseless, eq. 13)
        D' = D + V diag(lambda_i / s_i) U^T (y - A D)                         (DDNM+, eq. 17)
        lambda_i = min(1, sigma' s_i / (alpha' sigma_y))

    then `x' <- x' + alpha' (D' - D)` (`flowforge.guidance.consistency`). DDNM+ limits the
    measurement noise that `A^+` carries into the state, `alpha' lambda_i sigma_y / s_i`, to the
    state's own noise level `sigma'` (the paper's condition, with DDIM's coefficients), so at
    the data end noisy measurements are no longer enforced. Noiseless, the returned sample
    satisfies `A x = y` exactly (to rounding) on paths that end at sigma = 0. The noisy variant
    needs an operator with an SVD (mask, blur, downsample, mri, dense, identity).

    Parameters: `scaled` (use DDNM+ when the operator has noise; False: plain projection).

    >>> flowforge.sample(model, noise, ..., solver="ddim", guidance=DDNM(measurement=m))
    """

    scaled: Annotated[
        bool, Field(description="DDNM+: scale the range correction when y is noisy")
    ] = True

    name = "ddnm"

    def correct(self, data: Tensor, t: Tensor, m: Measurement, dynamics: Dynamics) -> Tensor:
        if m.noise_std == 0 or not self.scaled:
            return data + m.pinv(m.residual(data))
        op = m.operator
        if not isinstance(op, SVDOperator):
            raise InvalidArgumentError(
                f"ddnm with a noisy measurement (DDNM+) scales the correction per singular "
                f"value, and {type(op).__name__} has no SVD: use dds (conjugate gradients), or "
                "ddnm with scaled=False"
            )
        z = op.vt(op.adjoint(m.residual(data)))  # diag(s) U^T (y - A D)
        s = op.singular_values(z)
        path = dynamics.path
        ratio = path.sigma(t) / (path.alpha(t) * m.noise_std)
        lam = (expand_like(ratio.to(z.dtype), z) * s).clamp(max=1.0)
        gain = torch.where(op.nonzero(z), lam / s.square(), torch.zeros_like(lam))
        return data + op.v(z * gain)
