"""Registered molecule metrics, computed on a `MoleculeMetricContext` by the `molecules` task."""

from flowforge_molecules.metrics.context import MoleculeMetricContext
from flowforge_molecules.metrics.registered import FCDMetric, PropertyMAE, Stability, Validity

__all__ = ["FCDMetric", "MoleculeMetricContext", "PropertyMAE", "Stability", "Validity"]
