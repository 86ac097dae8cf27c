"""Frechet ChemNet Distance (Preuer et al. 2018) with the ChemNet weights shipped in `fcd_torch`.

Shared by the plugins that generate molecules (as 3-D structures or as SMILES). Only ChemNet's
activations come from `fcd_torch`; the distance is `flowforge.metrics.frechet`'s, which does
not depend on the scipy version (fcd_torch 1.0.7's own passes an argument newer scipy rejects).

    features = chemnet()                # fails here, with the install hint, without fcd_torch
    fcd(generated_smiles, reference_smiles, features, "cuda")
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from flowforge.errors import MissingDependencyError
from flowforge.metrics.frechet import frechet_distance


def chemnet(install: str | None = None) -> Callable[[Sequence[str], str], Tensor]:
    """`features(smiles, device)`: ChemNet's penultimate activations `(N, 512)` of a list of
    SMILES (the network is loaded once per device). Fails at once when fcd_torch is missing,
    naming `install` as the fix (default: pip install fcd_torch)."""
    try:
        from fcd_torch import FCD
    except ImportError:
        raise MissingDependencyError("fcd_torch", "the FCD metric", install) from None
    if not hasattr(np, "row_stack"):  # fcd_torch 1.0.7 calls it; numpy 2.5 removed the alias
        np.row_stack = np.vstack
    model = functools.cache(lambda device: FCD(device=device, n_jobs=1, batch_size=512))
    return lambda smiles, device: torch.from_numpy(model(device).get_predictions(list(smiles)))


def fcd(
    generated: Sequence[str],
    reference: Sequence[str],
    features: Callable[[Sequence[str], str], Tensor],
    device: str = "cpu",
) -> float:
    """FCD between two lists of SMILES (lower is closer); NaN if either has fewer than two."""
    if len(generated) < 2 or len(reference) < 2:
        return float("nan")
    return frechet_distance(features(generated, device), features(reference, device))
