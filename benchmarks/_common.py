"""Shared pieces of the solver benchmarks: the public mixtures, exact fields, references, tables.

Every anchor library parametrises noise differently; all of them are driven here by the exact
`GaussianMixture` field, converted to what each library's model returns:

- flowforge: any affine path and prediction, through `GaussianMixture.field(path, kind)`;
- diffusers VP schedulers: epsilon at `x_vp = alpha x_1 + s x_0` with Karras sigma `s / alpha`;
- k-diffusion: the denoiser `D(x_ve, sigma) = E[x_1 | x_1 + sigma x_0 = x_ve]`;
- flow_matching / diffusers flow-match: rectified-flow velocities.

A VP or VE state at Karras sigma `s` is a `vp_cosine` state at the time with log-SNR
`-2 log s` (same alpha and sigma up to the VE scale `sqrt(1 + s^2)`), so one exact field serves all.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.integrate import solve_ivp
from torch import Tensor

from flowforge import registry
from flowforge.errors import InvalidArgumentError
from flowforge.paths import VPCosine
from flowforge.solvers import ODE, SDE, Adaptive, Solver
from flowforge.targets import GaussianMixture

F64 = torch.float64
ROOT = Path(__file__).resolve().parents[1]
# The public protocol files; FLOWFORGE_BENCH_SHARED points elsewhere (e.g. a copy on a GPU host).
SHARED = Path(os.environ.get("FLOWFORGE_BENCH_SHARED", ROOT.parent / "shared" / "benchmarks"))
CACHE = Path.home() / ".cache" / "flowforge-bench"
VP = VPCosine()
# Stable Diffusion's scaled-linear betas (0.00085 -> 0.012, 1000 steps): the anchors' VP set-up.
VP_SIGMA_MAX, VP_SIGMA_MIN = 14.614641, 0.029168


def load_configs(file: Path | None = None) -> dict[str, dict]:
    """The public mixture configurations (`gmm_configs.json`), keyed by name (A, B)."""
    return json.loads((file or SHARED / "gmm_configs.json").read_text())["configs"]


def mixture(config: dict) -> GaussianMixture:
    """The config's exact mixture (isotropic stds per component)."""
    return GaussianMixture(config["means"], config["stds"], config["weights"])


def start_noise(n: int, d: int, seed: int = 1234) -> Tensor:
    """`n` standard normal start noises `(n, d)` in float64 (the protocol's 2048, seed 1234)."""
    return torch.randn(n, d, dtype=F64, generator=torch.Generator().manual_seed(seed))


def t_of_sigma(sigma: Tensor | float) -> Tensor:
    """The `vp_cosine` time whose sigma/alpha equals the Karras `sigma` (0 gives t = 1)."""
    sigma = torch.as_tensor(sigma, dtype=F64)
    return torch.where(
        sigma > 0, VP.t_from_log_snr(-2.0 * torch.log(sigma)), torch.ones_like(sigma)
    )


def vp_scale(sigma: Tensor | float) -> Tensor:
    """`alpha = 1 / sqrt(1 + sigma^2)`: a VE state times this is the VP state."""
    return 1.0 / torch.sqrt(1.0 + torch.as_tensor(sigma, dtype=F64) ** 2)


def reference(
    gm: GaussianMixture, x_start: Tensor, t_start: float, t_ends: Sequence[float], rtol=1e-11
) -> dict[float, Tensor]:
    """High-precision states at each of `t_ends` from `x_start` at `vp_cosine` time `t_start`.

    scipy's DOP853 at rtol=atol=1e-11 in float64 on the whole batch (the protocol's reference);
    one integration serves every end time. Cached on disk (`CACHE`), keyed by the inputs.
    """
    ends = sorted(set(t_ends))
    key = hashlib.sha256(
        b"".join(v.numpy().tobytes() for v in (gm.means, gm.stds, gm.weights, x_start))
        + repr((t_start, ends, rtol)).encode()
    ).hexdigest()[:24]
    file = CACHE / f"reference-{key}.pt"
    if file.is_file():
        return torch.load(file)
    shape = x_start.shape

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(y).reshape(shape)
        tt = torch.full((shape[0],), t, dtype=F64)
        return gm.predict(x, tt, VP, "velocity").reshape(-1).numpy()

    y0 = x_start.reshape(-1).numpy()
    sol = solve_ivp(
        rhs, (t_start, ends[-1]), y0, method="DOP853", rtol=rtol, atol=rtol, t_eval=ends
    )
    out = {t: torch.from_numpy(sol.y[:, i]).reshape(shape) for i, t in enumerate(ends)}
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(out, file)
    return out


def error(x: Tensor, ref: Tensor) -> float:
    """Mean over samples of `||x - ref|| / sqrt(d)`; NaN when the solve blew up."""
    value = float(((x - ref).square().mean(dim=1)).sqrt().mean())
    return value if math.isfinite(value) else math.nan


class Counted:
    """Wraps a callable and counts its calls (the protocol's NFE: counted, never inferred)."""

    def __init__(self, fn: Callable[..., Tensor]):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs) -> Tensor:
        self.calls += 1
        return self.fn(*args, **kwargs)


# Parameter variants benchmarked besides each solver's defaults (labels "name[key=value]").
# The reference-faithful variants (`variable="lambda"`, ipndm's "rho") are the anchors' methods
# with the anchors' arithmetic: `anchors.COUNTERPARTS` pairs them with the anchor they reproduce.
VARIANTS = {
    "dpm_solver": [{"order": 2}],
    "dpm_solver_pp": [
        {"order": 3},
        {"variable": "lambda"},
        {"order": 3, "variable": "lambda"},
        {"order": 3, "variable": "lambda", "reference": "k-diffusion"},
    ],
    "deis": [{"order": 2}, {"order": 2, "variable": "lambda"}],
    "ipndm": [{"variable": "rho"}],
    "unipc": [{"variant": "bh1"}, {"variable": "lambda"}],
}


def label(name: str, params: dict) -> str:
    """`name`, or `name[k=v,...]` for a parameter variant."""
    inner = ",".join(f"{k}={v}" for k, v in params.items())
    return f"{name}[{inner}]" if params else name


def create(solver_label: str) -> Solver:
    """The solver a label names: `dpm_solver_pp` or `dpm_solver_pp[order=3]`."""
    name, _, inner = solver_label.partition("[")
    params = {}
    for item in filter(None, inner.rstrip("]").split(",")):
        key, value = item.split("=")
        params[key] = int(value) if value.isdigit() else value
    return registry.create("solver", name, **params)


def fixed_step_ode_solvers() -> list[str]:
    """Labels of every registered fixed-step ODE solver and its `VARIANTS` (registry-driven)."""
    out = []
    for name in registry.names("solver"):
        s = registry.create("solver", name)
        if isinstance(s, ODE) and not isinstance(s, Adaptive | SDE):
            out += [label(name, p) for p in [{}, *VARIANTS.get(name, [])]]
    return out


def adaptive_solvers() -> list[str]:
    return [
        n for n in registry.names("solver") if isinstance(registry.create("solver", n), Adaptive)
    ]


def best_nfe(solver: Solver, budget: int) -> int | None:
    """The largest nfe <= budget the solver accepts (None if none)."""
    for nfe in range(budget, 0, -1):
        try:
            solver.steps_for_nfe(nfe)
        except InvalidArgumentError:
            continue
        return nfe
    return None


def light_k_diffusion() -> types.ModuleType:
    """`k_diffusion.sampling` without k-diffusion's heavy package import.

    k-diffusion's `__init__` imports its training stack (torchvision, kornia, wandb, clip, ...);
    the samplers need only scipy, torchdiffeq, torchsde, tqdm and `utils.append_dims`. Install it
    with `pip install --no-deps k-diffusion==0.1.1.post1 torchsde tqdm` and load the module
    under a bare package whose `utils` holds just `append_dims` (the same 3-line helper).
    """
    if "k_diffusion.sampling" in sys.modules:
        return sys.modules["k_diffusion.sampling"]
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("k-diffusion is not installed: make bench installs it")
    package = types.ModuleType("k_diffusion")
    package.__path__ = list(spec.submodule_search_locations)
    utils = types.ModuleType("k_diffusion.utils")

    def append_dims(x: Tensor, target_dims: int) -> Tensor:
        return x[(...,) + (None,) * (target_dims - x.ndim)]

    utils.append_dims = append_dims
    package.utils = utils
    sys.modules.update({"k_diffusion": package, "k_diffusion.utils": utils})
    return importlib.import_module("k_diffusion.sampling")


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return "nan" if math.isnan(value) else f"{value:.2e}"


def markdown(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
