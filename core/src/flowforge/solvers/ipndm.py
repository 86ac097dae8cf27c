"""iPNDM: Adams-Bashforth on the noise (DDIM-ODE) form, up to fourth order, with a short warm-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from flowforge.solvers.base import Multistep
from flowforge.solvers.exponential import ExponentialSolver, Schedule, Weights, split_multistep


@dataclass(frozen=True)
class IPNDM(ExponentialSolver, Multistep):
    """Improved PNDM (Zhang & Chen 2023, "DEIS", App.; Liu et al. 2022, "PNDM"; as used by
    Zhou et al. 2024): linear multistep on the DDIM ODE `d(x/alpha)/d(sigma/alpha) = N`.

    PNDM warms up with Runge-Kutta steps (3 extra evaluations each); iPNDM starts with
    lower-order multistep steps instead, so nfe = steps. Its fixed Adams-Bashforth coefficients
    (1; 3/2, -1/2; 23/12, -16/12, 5/12; 55/24, -59/24, 37/24, -9/24) assume steps equal in
    sigma/alpha; here the coefficients are the exact variable-step Adams-Bashforth weights of
    the polynomial in nu = alpha/(alpha+sigma) (module `exponential`), so `order` holds on any
    grid. Warm-up: the first `order - 1` steps integrate the data form from t0 through all
    predictions so far, which keeps the full order (the paper's lower-order warm-up costs one
    order per missing node). The last step integrates the noise form to sigma/alpha = 0
    exactly (no special rule; the end point is never evaluated). The default grid is `edm`
    (Karras et al. 2022), the schedule iPNDM is usually run with.

    >>> flowforge.sample(model, noise, path="edm", prediction="data", solver="ipndm", nfe=10)
    """

    order: Annotated[int, Field(ge=1, le=4, description="multistep order (1-4)")] = 4
    name = "ipndm"
    default_grid = "edm"

    @property
    def width(self) -> int:
        return self.order

    def weights(self, schedule: Schedule) -> Weights:
        return split_multistep(schedule, self.order, "integrate_natural")
