"""Guidance methods and their hook points (see `flowforge.guidance.base`)."""

from flowforge.guidance.base import Guidance

__all__ = ["Guidance"]
