"""flowforge: flow-matching and diffusion models as a working instrument for science.

import flowforge
x = flowforge.sample(model, torch.randn(64, 2), path="cond_ot", prediction="velocity",
                     solver="rk4", nfe=40)
z = flowforge.invert(model, x, path="cond_ot", prediction="velocity", solver="rk4", nfe=40)
logp = flowforge.log_likelihood(model, x, path="cond_ot", prediction="velocity")
"""

from flowforge import registry
from flowforge.driver import SampleResult, sample
from flowforge.errors import (
    CheckpointError,
    FlowforgeError,
    InvalidArgumentError,
    MissingDependencyError,
    NumericalError,
    PluginError,
    SpecError,
)
from flowforge.field import Prediction, VectorField
from flowforge.hookspecs import hookimpl
from flowforge.inversion import invert
from flowforge.likelihood import log_likelihood

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "FlowforgeError",
    "InvalidArgumentError",
    "MissingDependencyError",
    "NumericalError",
    "PluginError",
    "Prediction",
    "SampleResult",
    "SpecError",
    "VectorField",
    "__version__",
    "hookimpl",
    "invert",
    "log_likelihood",
    "registry",
    "sample",
]
