"""Forward operators for inverse problems."""

from flowforge.operators.base import Operator
from flowforge.operators.identity import Identity

__all__ = ["Identity", "Operator"]
