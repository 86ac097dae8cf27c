"""Frechet ChemNet Distance with the ChemNet weights that ship inside `fcd_torch`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flowforge.errors import MissingDependencyError


def fcd(generated: Sequence[str], reference: Sequence[str], device: str = "cpu") -> float:
    """FCD between two lists of SMILES (lower is closer); NaN if either has fewer than two."""
    try:
        from fcd_torch import FCD
    except ImportError:
        raise MissingDependencyError(
            "fcd_torch", "the FCD metric", "pip install fcd_torch"
        ) from None
    if len(generated) < 2 or len(reference) < 2:
        return float("nan")
    if not hasattr(np, "row_stack"):  # fcd_torch 1.0.7 calls it; numpy 2.5 removed the alias
        np.row_stack = np.vstack
    return float(FCD(device=device, n_jobs=1)(list(reference), list(generated)))
