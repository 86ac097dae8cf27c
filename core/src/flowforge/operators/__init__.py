"""Forward operators for inverse problems `y = A x + noise`: one module per operator.

Every operator has `forward`, `adjoint` and a Gaussian noise model (`simulate`,
`log_likelihood`); those with an SVD (`SVDOperator`: identity, mask, blur, downsample, mri,
dense) add `pinv`, `project_nullspace`, `gram_solve` and `marginal_log_likelihood`.
`Rescaled` (not registered) views an operator from rescaled coordinates, such as the
standardised space a model samples in.
"""

from flowforge.operators.base import Operator
from flowforge.operators.blur import Blur, BlurParams, gaussian_kernel, hartley
from flowforge.operators.compose import Compose, ComposeParams
from flowforge.operators.dense import Dense, DenseParams, gaussian_matrix
from flowforge.operators.downsample import Downsample, DownsampleParams
from flowforge.operators.identity import Identity
from flowforge.operators.mask import Mask, MaskParams, box_mask, random_mask
from flowforge.operators.mri import MRI, MRIParams, cartesian_mask
from flowforge.operators.rescaled import Rescaled
from flowforge.operators.svd import SVDOperator

__all__ = [
    "MRI",
    "Blur",
    "BlurParams",
    "Compose",
    "ComposeParams",
    "Dense",
    "DenseParams",
    "Downsample",
    "DownsampleParams",
    "Identity",
    "MRIParams",
    "Mask",
    "MaskParams",
    "Operator",
    "Rescaled",
    "SVDOperator",
    "box_mask",
    "cartesian_mask",
    "gaussian_kernel",
    "gaussian_matrix",
    "hartley",
    "random_mask",
]
