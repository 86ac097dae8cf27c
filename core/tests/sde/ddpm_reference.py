"""DDPM ancestral sampling written out step by step (Ho et al. 2020): the reference that the SDE
family's `eta = 1` sampler must reproduce, whatever its noise source."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor


def ddpm_chain(mixture, path, x: Tensor, grid: Tensor, normals: Callable[[int], Tensor]) -> Tensor:
    """Sample q(x_prev | x_t, x0 = D(x_t)) along `grid`; step n's standard normals `normals(n)`."""
    for n in range(len(grid) - 1):
        t, t_prev = grid[n].expand(x.shape[0]), grid[n + 1].expand(x.shape[0])
        abar, abar_prev = path.alpha(t)[:, None] ** 2, path.alpha(t_prev)[:, None] ** 2
        beta = 1 - abar / abar_prev
        x0 = mixture.predict(x, t, path, "data")
        mean = (abar_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - abar_prev) * x) / (1 - abar)
        x = mean + ((1 - abar_prev) / (1 - abar) * beta).sqrt() * normals(n)
    return x
