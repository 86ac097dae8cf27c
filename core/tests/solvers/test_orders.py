"""Observed orders of the exponential solvers' non-default settings.

`core/tests/test_convergence.py` checks every registered solver at its default parameters; here
every order and variant, on cond_ot and vp_cosine (pure-noise start, data end: the end-point
rules) and edm (finite ends, a strongly non-uniform noise schedule), with the uniform-in-t grid.
The reference-faithful variants (`variable="lambda"`, ipndm's "rho") are checked on their own
grids in `test_reference_variants.py`.
"""

from __future__ import annotations

import pytest

from flowforge import registry
from flowforge.testing.convergence import observed_order

PATHS = ["cond_ot", "vp_cosine", "edm"]
SETTINGS = [
    ("dpm_solver", {"order": 1}),
    ("dpm_solver", {"order": 2}),
    ("dpm_solver_pp", {"order": 2}),
    ("dpm_solver_pp", {"order": 3}),
    ("unipc", {"order": 2}),
    ("unipc", {"order": 2, "variant": "bh1"}),
    ("unipc", {"order": 3, "variant": "bh1"}),
    ("unipc", {"order": 2, "corrector": False}),
    ("unipc", {"order": 3, "corrector": False}),
    ("deis", {"order": 1}),
    ("deis", {"order": 2}),
    ("ipndm", {"order": 2}),
    ("ipndm", {"order": 3}),
    ("dpm_solver_pp_hb", {"beta": 0.5}),
    ("dpm_solver_pp_hb", {"beta": 1.0}),
    ("dpm_solver_pp_ghb", {"beta": 0.8}),
    ("dpm_solver_pp_ghb", {"beta": 0.9}),
]
# EDM's time is Karras' rho = 7 schedule: near sigma_min its steps stay large relative to
# sigma up to ~100 steps, so some settings reach their asymptotic slope only beyond 96 steps.
LONG = [24, 48, 96, 192]
STEPS = {
    ("unipc", "bh1", 3, "edm"): LONG,
    ("unipc", None, 3, "edm"): LONG,
    ("ipndm", None, 3, "edm"): LONG,
}


@pytest.mark.parametrize("path_name", PATHS)
@pytest.mark.parametrize(("name", "params"), SETTINGS, ids=lambda v: str(v))
def test_observed_order(name, params, path_name):
    solver = registry.create("solver", name, **params)
    key = (name, params.get("variant"), solver.order, path_name)
    slope, errors = observed_order(solver, path_name, steps=STEPS.get(key))
    assert abs(slope - solver.order) < 0.3, (
        f"{name}{params} on {path_name}: observed {slope:.2f}, claimed {solver.order}; {errors}"
    )
