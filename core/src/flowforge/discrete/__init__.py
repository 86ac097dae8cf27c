"""Discrete diffusion: masked (absorbing) and uniform paths on token states, CTMC solvers with
the RADD/MDLM cache, the continuous-time ELBO and exact any-order likelihoods, discrete guidance,
and product paths for states that mix continuous and discrete keys.

>>> path = MaskedPath(vocab_size=96)
>>> objective = DiscreteDiffusion(path, tokens)                     # train with core's Trainer
>>> out = sample(model, path.source((16, 128), gen, "cpu"), path=path, solver="mdlm_cached",
...              nfe=128, generator=gen)
>>> nll_bound(model, test_tokens, path, num_timesteps=8, generator=gen).bits_per_token
"""

from flowforge.discrete.driver import DiscreteSampleResult, sample, time_independent
from flowforge.discrete.dynamics import DiscreteDynamics
from flowforge.discrete.guidance import SVDD, DiscreteCFG, DiscreteGuidance, Infill
from flowforge.discrete.likelihood import NLLBound, any_order_nll, nll_bound, random_orders
from flowforge.discrete.losses import diffusion_loss, token_nll
from flowforge.discrete.mixed import sample_mixed
from flowforge.discrete.objective import DiscreteDiffusion
from flowforge.discrete.paths import DiscretePath, MaskedPath, UniformPath
from flowforge.discrete.product import ProductPath
from flowforge.discrete.schedules import Geometric, LogLinear, NoiseSchedule
from flowforge.discrete.solvers import (
    Ancestral,
    CTMCEuler,
    DiscreteSolver,
    MDLMCached,
    TauLeaping,
    inverse_cdf,
)
from flowforge.discrete.subs import clean_log_probs

__all__ = [
    "SVDD",
    "Ancestral",
    "CTMCEuler",
    "DiscreteCFG",
    "DiscreteDiffusion",
    "DiscreteDynamics",
    "DiscreteGuidance",
    "DiscretePath",
    "DiscreteSampleResult",
    "DiscreteSolver",
    "Geometric",
    "Infill",
    "LogLinear",
    "MDLMCached",
    "MaskedPath",
    "NLLBound",
    "NoiseSchedule",
    "ProductPath",
    "TauLeaping",
    "UniformPath",
    "any_order_nll",
    "clean_log_probs",
    "diffusion_loss",
    "inverse_cdf",
    "nll_bound",
    "random_orders",
    "sample",
    "sample_mixed",
    "time_independent",
    "token_nll",
]
