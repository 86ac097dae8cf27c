"""Equivariant OT coupling: align each noise sample to its molecule by rotation and permutation.

The noise prior is invariant to rotations of the positions and to permutations of the atoms, so
replacing a noise sample by `R P x_0` (any proper rotation `R`, atom permutation `P`) leaves it a
sample of the prior. Choosing the `R, P` that minimise `||R P x_0 - x_1||^2` shortens and
straightens the conditional paths (Klein et al. 2023, "Equivariant flow matching"; Song et al.
2023, EquiFM). We alternate the two exact sub-problems: the optimal permutation for a fixed
rotation (Hungarian algorithm, within groups when atoms carry fixed elements) and the optimal
rotation for a fixed permutation (Kabsch), starting from the identity. Each half-step can only
lower the cost, so the result is never costlier than the independent pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch
from pydantic import Field
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.training.couplings.base import Coupled, Coupling, check_pairable


def kabsch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The proper rotation `R (3, 3)` minimising `sum_i ||R a_i - b_i||^2` (centred `a, b`)."""
    h = a.T @ b
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def _assign(cost: np.ndarray, groups0: np.ndarray | None, groups1: np.ndarray | None):
    """`perm (n,)` with data atom i paired to noise atom perm[i], optimal within groups."""
    n = cost.shape[0]
    if groups0 is None:
        rows, cols = linear_sum_assignment(cost)
        perm = np.empty(n, dtype=np.int64)
        perm[rows] = cols
        return perm
    perm = np.empty(n, dtype=np.int64)
    for g in np.unique(groups1):
        i, j = np.flatnonzero(groups1 == g), np.flatnonzero(groups0 == g)
        if len(i) != len(j):
            raise InvalidArgumentError(
                f"equivariant OT within elements: element {g} has {len(i)} atoms in the data "
                f"and {len(j)} in the noise; pair molecules with the same composition"
            )
        rows, cols = linear_sum_assignment(cost[np.ix_(i, j)])
        perm[i[rows]] = j[cols]
    return perm


def align(
    x0: np.ndarray,
    x1: np.ndarray,
    groups0: np.ndarray | None = None,
    groups1: np.ndarray | None = None,
    iterations: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """`(perm, R)` minimising `||R x0[perm, :3] - x1[:, :3]||^2 + ||x0[perm, 3:] - x1[:, 3:]||^2`.

    `x0, x1 (n, F)`: one molecule's real atoms (positions centred). Alternates optimal
    permutation and optimal rotation; the cost never rises above the identity's.
    """
    n = x0.shape[0]
    perm, rot = np.arange(n), np.eye(3)
    best = transport_cost(x0, x1, perm, rot)
    for _ in range(iterations):
        moved = np.concatenate([x0[:, :3] @ rot.T, x0[:, 3:]], 1)
        cost = ((x1[:, None, :] - moved[None, :, :]) ** 2).sum(-1)
        new_perm = _assign(cost, groups0, groups1)
        new_rot = kabsch(x0[new_perm, :3], x1[:, :3])
        value = transport_cost(x0, x1, new_perm, new_rot)
        if value >= best - 1e-12:
            # the permutation step alone is never worse; keep it if the rotation did not help
            value_p = transport_cost(x0, x1, new_perm, rot)
            if value_p < best - 1e-12:
                perm, best = new_perm, value_p
            break
        perm, rot, best = new_perm, new_rot, value
    return perm, rot


def transport_cost(x0: np.ndarray, x1: np.ndarray, perm: np.ndarray, rot: np.ndarray) -> float:
    """`||R x0[perm, :3] - x1[:, :3]||^2 + ||x0[perm, 3:] - x1[:, 3:]||^2`."""
    p = x0[perm]
    return float(((p[:, :3] @ rot.T - x1[:, :3]) ** 2).sum() + ((p[:, 3:] - x1[:, 3:]) ** 2).sum())


def atom_mask(x_1: Tensor) -> Tensor:
    """Real atoms of encoded states `(B, N, F)`: those with a non-zero type/charge block."""
    return (x_1[..., 3:] != 0).any(-1)


@dataclass(frozen=True)
class EquivariantOT(Coupling):
    """Rotate and permute each noise molecule onto its data molecule (Kabsch + Hungarian).

    For encoded molecule states `(B, N, 3 + features)` (`flowforge_molecules.encoding`): the
    real atoms are those with non-zero features in `x_1`; noise rows are permuted within the
    molecule and its positions rotated, never exchanged between molecules, so the noise stays a
    sample of the (rotation- and permutation-invariant) prior. Unlike the core couplings, the
    paired noise rows are therefore rotated, permuted copies of the given rows.

    >>> batch = EquivariantOT().pair(x_0, x_1, generator=gen)
    """

    iterations: Annotated[
        int, Field(ge=1, le=50, description="alternations of Hungarian and Kabsch steps")
    ] = 4

    def pair(
        self,
        x_0: Tensor,
        x_1: Tensor,
        *,
        generator: torch.Generator,
        labels: Tensor | None = None,
    ) -> Coupled:
        check_pairable(x_0, x_1)
        mask = atom_mask(x_1).cpu().numpy()
        a = x_0.detach().cpu().double().numpy()
        b = x_1.detach().cpu().double().numpy()
        out = a.copy()
        for i in range(a.shape[0]):
            real = np.flatnonzero(mask[i])
            if len(real) < 2:
                continue
            perm, rot = align(a[i, real], b[i, real], iterations=self.iterations)
            moved = a[i, real][perm]
            moved[:, :3] = moved[:, :3] @ rot.T
            out[i, real] = moved
        return Coupled(torch.from_numpy(out).to(x_0), x_1)
