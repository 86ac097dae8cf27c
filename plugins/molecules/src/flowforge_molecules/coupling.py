"""Equivariant OT coupling: align each noise sample to its molecule by rotation and permutation.

The noise prior is invariant to rotations of the positions and to permutations of the atoms, so
replacing a noise sample by `R P x_0` (any proper rotation `R`, atom permutation `P`) leaves it a
sample of the prior. Choosing the `R, P` that minimise `||R P x_0 - x_1||^2` shortens and
straightens the conditional paths (Klein et al. 2023, "Equivariant flow matching"; Song et al.
2023, EquiFM). We alternate the two exact sub-problems: the optimal permutation for a fixed
rotation (Hungarian algorithm, within groups when atoms carry fixed elements) and the optimal
rotation for a fixed permutation (Kabsch), starting from the identity, and keep each molecule's
best pair seen, so the result is never costlier than the independent pair.

The whole batch is aligned at once, on the tensors' device: costs, rotations (batched SVD) and
transport costs are batched tensor operations, and only the assignment runs per molecule on the
host (SciPy's C Hungarian on its real atoms, the cost matrices copied over once per
alternation), some 20-40 microseconds per QM9 molecule and alternation.
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

# added to the cost of pairing atoms of different groups: far above any real cost, so a
# Hungarian solution never pays it when the groups' counts agree
_CROSS_GROUP = 1e12


def kabsch(a: Tensor, b: Tensor) -> Tensor:
    """Proper rotations `R (B, d, d)` minimising `sum_i ||R a_i - b_i||^2` for centred
    `a, b (B, n, d)` (padding rows zero, so they add nothing)."""
    u, _, vt = torch.linalg.svd(a.mT @ b)
    d = torch.sign(torch.linalg.det(vt.mT @ u.mT))
    fix = torch.ones(a.shape[0], a.shape[-1], dtype=a.dtype, device=a.device)
    fix[:, -1] = torch.where(d == 0, 1.0, d)
    return vt.mT @ (fix[:, :, None] * u.mT)


def _gather(x: Tensor, perm: Tensor) -> Tensor:
    return torch.gather(x, 1, perm[..., None].expand(-1, -1, x.shape[-1]))


def transport_cost(x0: Tensor, x1: Tensor, perm: Tensor, rot: Tensor) -> Tensor:
    """`||R x0[perm, :d] - x1[:, :d]||^2 + ||x0[perm, d:] - x1[:, d:]||^2` per molecule `(B,)`
    for `x0, x1 (B, n, F)` (padding rows zero in both), `perm (B, n)`, `rot (B, d, d)`."""
    d = rot.shape[-1]
    p = _gather(x0, perm)
    moved = p[..., :d] @ rot.mT
    return ((moved - x1[..., :d]) ** 2).sum((1, 2)) + ((p[..., d:] - x1[..., d:]) ** 2).sum((1, 2))


def _sq_dist(a: Tensor, b: Tensor) -> Tensor:
    """`||a_i - b_j||^2 (B, n, n)` of `a, b (B, n, d)`, from the differences (the matrix-product
    shortcut's cancellation errors would reach the small costs the assignment compares)."""
    return ((a[:, :, None, :] - b[:, None, :, :]) ** 2).sum(-1)


def _check_groups(groups0: Tensor, groups1: Tensor, mask: Tensor) -> None:
    """Raise unless each molecule has as many noise as data atoms in every group."""
    for b in range(len(mask)):
        g0, g1 = groups0[b][mask[b]], groups1[b][mask[b]]
        for g in torch.cat([g0, g1]).unique().tolist():
            n0, n1 = int((g0 == g).sum()), int((g1 == g).sum())
            if n0 != n1:
                raise InvalidArgumentError(
                    f"equivariant OT within elements: element {g} has {n1} atoms in the data "
                    f"and {n0} in the noise of molecule {b}; pair molecules with the same "
                    "composition"
                )


def _assign(cost: np.ndarray, reals: list[np.ndarray]) -> np.ndarray:
    """`perm (B, N)`: data atom i paired with noise atom perm[i], optimal over each molecule's
    real atoms (`reals[b]`, their indices); padding atoms stay where they are."""
    b, n, _ = cost.shape
    perm = np.tile(np.arange(n), (b, 1))
    for i, real in enumerate(reals):
        k = len(real)
        if k < 2:
            continue
        if real[-1] == k - 1:  # the usual padding, real atoms first: a slice, no gather
            perm[i, :k] = linear_sum_assignment(cost[i, :k, :k])[1]
        else:
            rows, cols = linear_sum_assignment(cost[i][np.ix_(real, real)])
            perm[i, real[rows]] = real[cols]
    return perm


def align(
    x0: Tensor,
    x1: Tensor,
    mask: Tensor,
    groups0: Tensor | None = None,
    groups1: Tensor | None = None,
    iterations: int = 2,
) -> tuple[Tensor, Tensor]:
    """`(perm (B, N), R (B, 3, 3))` lowering `transport_cost(x0, x1, perm, R)` per molecule.

    `x0, x1 (B, N, F)`: positions (first 3 features, centred) and other features; `mask (B, N)`
    the real atoms; `groups0, groups1 (B, N)` int: atoms pair only within their group
    (element). Alternates the optimal permutation and the optimal rotation `iterations` times
    and returns each molecule's cheapest pair (the identity included). Runs on the tensors'
    device; only the cost matrices visit the host, for the assignment.
    """
    keep = mask[..., None]
    x0, x1 = x0 * keep, x1 * keep
    b, n, f = x0.shape
    d = min(3, f)  # position dimensions (3 for molecules; fewer for plain point clouds)
    reals = [np.flatnonzero(m) for m in mask.cpu().numpy()]
    fixed = _sq_dist(x1[..., d:], x0[..., d:]) if f > d else 0.0
    if groups0 is not None and groups1 is not None:
        _check_groups(groups0, groups1, mask)
        fixed = fixed + _CROSS_GROUP * (groups1[:, :, None] != groups0[:, None, :])
    perm = torch.arange(n, device=x0.device).expand(b, n)
    rot = torch.eye(d, dtype=x0.dtype, device=x0.device).expand(b, d, d)
    best = transport_cost(x0, x1, perm, rot)
    for _ in range(iterations):
        cost = _sq_dist(x1[..., :d], x0[..., :d] @ rot.mT) + fixed
        new_perm = torch.from_numpy(_assign(cost.cpu().double().numpy(), reals)).to(x0.device)
        new_rot = kabsch(_gather(x0[..., :d], new_perm), x1[..., :d])
        # the permutation step alone never raises the cost; the rotation step may not help
        for cand in (rot, new_rot):
            value = transport_cost(x0, x1, new_perm, cand)
            better = value < best - 1e-9 * best.abs().clamp_min(1.0)
            perm = torch.where(better[:, None], new_perm, perm)
            rot = torch.where(better[:, None, None], cand, rot)
            best = torch.where(better, value, best)
    return perm, rot


def atom_mask(x_1: Tensor) -> Tensor:
    """Real atoms of encoded states `(B, N, F)`: those with a non-zero type/charge block (a
    state without such a block has none, and its noise is left as drawn)."""
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
        int,
        Field(
            ge=1,
            le=50,
            description="alternations of Hungarian and Kabsch steps (QM9: 1 gets 92% of the "
            "cost cut of 10, 2 gets 97%)",
        ),
    ] = 2

    def pair(
        self,
        x_0: Tensor,
        x_1: Tensor,
        *,
        generator: torch.Generator,
        labels: Tensor | None = None,
    ) -> Coupled:
        check_pairable(x_0, x_1)
        mask = atom_mask(x_1)
        dtype = torch.promote_types(x_0.dtype, torch.float32)
        a, b = x_0.detach().to(dtype), x_1.detach().to(dtype)
        perm, rot = align(a, b, mask, iterations=self.iterations)
        moved, d = _gather(a, perm), rot.shape[-1]
        moved = torch.cat([moved[..., :d] @ rot.mT, moved[..., d:]], -1)
        return Coupled(torch.where(mask[..., None], moved, a).to(x_0.dtype), x_1)
