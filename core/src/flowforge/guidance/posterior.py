"""Base of the posterior samplers for `y = A x + noise`: the measurement they condition on.

A posterior guidance is configured by its hyperparameters (validated like any component's, so
it can be written in a spec) plus a `Measurement`, given in Python or bound later by a task
(`with_measurement`). Until a measurement is given, `needs` says so and the driver refuses to
start.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Self

from pydantic import InstanceOf
from pydantic.json_schema import SkipJsonSchema
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.guidance.base import Guidance
from flowforge.guidance.measurement import Measurement
from flowforge.paths.base import AffinePath


@dataclass(frozen=True)
class PosteriorGuidance(Guidance):
    """A guidance that samples `p(x | y)` for a `Measurement` `y = A x + noise`."""

    measurement: SkipJsonSchema[InstanceOf[Measurement] | None] = None

    name = "posterior guidance"  # each subclass: its registered name, for messages

    @property
    def needs(self) -> tuple[str, ...]:
        return ("measurement",) if self.measurement is None else ()

    def with_measurement(self, measurement: Measurement) -> Self:
        """The same guidance conditioned on `measurement`."""
        return dataclasses.replace(self, measurement=measurement)

    def given(self) -> Measurement:
        """The measurement, or an error saying how to give one."""
        if self.measurement is None:
            raise InvalidArgumentError(
                f"guidance {self.name!r} has no measurement: pass "
                "measurement=Measurement(operator, y) (flowforge.guidance.Measurement), or bind "
                "one with .with_measurement(m); in a spec, the inverse_problem task binds its "
                "measurement to every posterior guidance"
            )
        return self.measurement


def data_variance(path: AffinePath, t: Tensor, prior_var: float) -> Tensor:
    """`Var[x_1 | x_t]` per coordinate, `(B,)`, if the data were `N(m, prior_var I)`.

    `prior_var sigma^2 / (alpha^2 prior_var + sigma^2)`: PiGDM's `r_t^2` (Song et al. 2023,
    eq. 7) written for any affine path; `prior_var` at pure noise, 0 at the data.
    """
    a2, s2 = path.alpha(t).square(), path.sigma(t).square()
    return prior_var * s2 / (a2 * prior_var + s2)
