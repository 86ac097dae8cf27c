"""Guidance for discrete samplers: CFG on logits, SVDD with a reward, infilling."""

from flowforge.discrete.guidance.base import DiscreteGuidance
from flowforge.discrete.guidance.cfg import DiscreteCFG
from flowforge.discrete.guidance.infill import Infill
from flowforge.discrete.guidance.svdd import SVDD

__all__ = ["SVDD", "DiscreteCFG", "DiscreteGuidance", "Infill"]
