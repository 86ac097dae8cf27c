"""Guidance methods and their hook points (see `flowforge.guidance.base`).

On the prediction: `CFG`, `Classifier`, `SelfGuidance`, `DPS`, `PiGDM`; after the step:
`DDNM`, `DDS`, `FlowChef`, `REDDiff`, `PnPFlow`; on the population: `SMC`. Posterior samplers
condition on a `Measurement` `y = A x + noise`.
"""

from flowforge.guidance.base import Guidance
from flowforge.guidance.cfg import CFG
from flowforge.guidance.classifier import Classifier
from flowforge.guidance.ddnm import DDNM
from flowforge.guidance.dds import DDS
from flowforge.guidance.dps import DPS
from flowforge.guidance.flowchef import FlowChef
from flowforge.guidance.measurement import Measurement
from flowforge.guidance.pigdm import PiGDM
from flowforge.guidance.pnp_flow import PnPFlow
from flowforge.guidance.posterior import PosteriorGuidance
from flowforge.guidance.red_diff import REDDiff
from flowforge.guidance.self_guidance import SelfGuidance
from flowforge.guidance.smc import SMC

__all__ = [
    "CFG",
    "DDNM",
    "DDS",
    "DPS",
    "SMC",
    "Classifier",
    "FlowChef",
    "Guidance",
    "Measurement",
    "PiGDM",
    "PnPFlow",
    "PosteriorGuidance",
    "REDDiff",
    "SelfGuidance",
]
