"""Per-step solver overhead on CPU: every registered flowforge solver and the anchors.

Protocol (../shared/benchmarks/anchors-solver-overhead.md): batch 256, d=16, float64, one
thread; a trivial field that returns a preallocated tensor; the whole sampling call (including
scheduler construction and set_timesteps for the anchors) is timed at two NFE budgets (about 20
and 60), the minimum of `--repeats` runs each; the slope between them is the cost per NFE, the
trivial field's own call cost is subtracted, and microseconds per step = per NFE x NFE per step.

Stochastic samplers are measured with each noise source (`noise="brownian_tree"`, the default,
and `noise="iid"`), next to k-diffusion's SDE samplers with its torchsde Brownian tree
(`BrownianTreeNoiseSampler`) and with its default `randn_like` noise, on the same trivial field;
a second table gives the ratios. The `noise[...]` rows time the noise alone, per step, as the
samplers draw it (`reverse_sde.noise_state`: the tree's increment, a step of the blocked iid
normals, which `predictor_corrector` also draws per Langevin iteration), and a third table
splits each sampler's step into noise and the rest (the step's arithmetic and the driver's
per-step work).

    .venv/bin/python benchmarks/overhead.py              # prints the tables, writes overhead.json
    .venv/bin/python benchmarks/overhead.py --clock cpu  # on a shared machine: thread CPU time
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from _common import VP_SIGMA_MAX, VP_SIGMA_MIN, best_nfe, light_k_diffusion, markdown
from anchors import SD_BETAS

import flowforge
from flowforge import registry
from flowforge.solvers import SDE, Adaptive
from flowforge.solvers.base import Discrete
from flowforge.solvers.reverse_sde import noise_state

BATCH, DIM, LOW, HIGH = 256, 16, 20, 60


class Trivial:
    """A field that costs (almost) nothing: returns a fixed tensor, counts its calls."""

    def __init__(self, out: torch.Tensor):
        self.out, self.calls = out, 0

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        self.calls += 1
        return self.out


# "wall": elapsed time (the protocol's); "cpu": this thread's CPU time, which leaves out the time
# other processes hold the core, for a shared machine (on an idle one the two agree).
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}
clock = CLOCKS["wall"]


def best_time(fn: Callable[[], int], repeats: int) -> tuple[float, int]:
    """(min seconds over `repeats` calls of `fn`, the NFE it reports)."""
    best, nfe = float("inf"), 0
    for _ in range(repeats):
        start = clock()
        nfe = fn()
        best = min(best, clock() - start)
    return best, nfe


def flowforge_runner(name: str, path: str, prediction: str, x, field: Trivial, **params):
    solver = registry.create("solver", name, **params)

    def at(budget: int) -> Callable[[], int]:
        nfe = best_nfe(solver, budget)
        grid = "auto"

        def run() -> int:
            field.calls = 0
            generator = torch.Generator().manual_seed(0)
            flowforge.sample(field, x, path=path, prediction=prediction, solver=solver, nfe=nfe,
                             time_grid=grid, generator=generator)  # fmt: skip
            return field.calls

        return run

    steps = solver.steps_for_nfe(best_nfe(solver, HIGH))
    return at, best_nfe(solver, HIGH) / steps


def diffusers_runner(cls_name: str, x, field: Trivial, **kwargs):
    import diffusers

    cls = getattr(diffusers, cls_name)
    betas = {} if "FlowMatch" in cls_name else SD_BETAS

    def at(budget: int) -> Callable[[], int]:
        def run() -> int:
            field.calls = 0
            sched = cls(**betas, **kwargs)
            sched.set_timesteps(budget)
            y = x
            for ts in sched.timesteps:
                y = sched.step(field(y, ts), ts, y).prev_sample
            return field.calls

        return run

    return at, 1.0


def k_runner(fn: str, x, field: Trivial, per_step: int, noise: str | None = None, **kwargs):
    """k-diffusion's sampler `fn`; `noise` "tree" (`BrownianTreeNoiseSampler`, torchsde) or
    "randn" (`default_noise_sampler`) for its SDE samplers, built per solve as they do."""
    k = light_k_diffusion()

    def at(budget: int) -> Callable[[], int]:
        steps = (budget + per_step - 1) // per_step

        def run() -> int:
            field.calls = 0
            sigmas = k.get_sigmas_karras(steps, VP_SIGMA_MIN, VP_SIGMA_MAX).to(x)
            extra = dict(kwargs)
            if noise == "tree":
                extra["noise_sampler"] = k.BrownianTreeNoiseSampler(x, VP_SIGMA_MIN, VP_SIGMA_MAX)
            elif noise == "randn":
                extra["noise_sampler"] = k.default_noise_sampler(x)
            getattr(k, fn)(field, x, sigmas, disable=True, **extra)
            return field.calls

        return run

    return at, float(per_step)


def fm_runner(method: str, x, field: Trivial, per_step: int):
    from flow_matching.solver import ODESolver

    def at(budget: int) -> Callable[[], int]:
        steps = budget // per_step

        def run() -> int:
            field.calls = 0
            grid = torch.linspace(0, 1, steps + 1, dtype=x.dtype)
            ODESolver(velocity_model=field).sample(x_init=x, step_size=None, method=method,
                                                   time_grid=grid)  # fmt: skip
            return field.calls

        return run

    return at, float(per_step)


# The noise rows: how the stochastic samplers draw per step (module `reverse_sde`).
NOISE_KINDS = {"brownian_tree": "the tree's increment", "iid": "a step of blocked iid normals"}


def noise_runner(kind: str, x):
    """The noise of a solve alone: `noise_state` of the samplers' default tree depth on a
    uniform grid, one draw per step."""
    depth = registry.create("solver", "reverse_sde").brownian_depth

    def at(steps: int) -> Callable[[], int]:
        grid = torch.linspace(0.0, 1.0, steps + 1, dtype=x.dtype)[:, None].expand(-1, x.shape[0])
        times = grid.unbind(0)

        def run() -> int:
            state = noise_state(kind, x, grid, torch.Generator().manual_seed(0), depth)
            for i in range(steps):
                _, state = state.draw(i, times[i + 1])
            return steps

        return run

    return at, 1.0


def noise_per_step(name: str, suffix: str, result: dict) -> float | None:
    """The noise a step of sampler `name` (row suffix `suffix`) draws, in µs, from the
    `ff.noise[...]` rows of `result`: its predictor's draw where eta > 0, and a step of blocked
    iid normals per Langevin iteration (`n_corrector`)."""
    solver = registry.create("solver", name, **NOISES[suffix][0])
    kind = getattr(solver, "noise", None)
    if kind is None or f"ff.noise[{kind}]" not in result:
        return None
    draws = result[f"ff.noise[{kind}]"]["us_per_step"] if solver.eta > 0 else 0.0
    return draws + getattr(solver, "n_corrector", 0) * result["ff.noise[iid]"]["us_per_step"]


def anchors(x, field):
    return {
        "diffusers.DDIM": ("diffusers", diffusers_runner("DDIMScheduler", x, field)),
        "diffusers.DPM++2M-Karras": ("diffusers", diffusers_runner(
            "DPMSolverMultistepScheduler", x, field, use_karras_sigmas=True)),
        "diffusers.UniPC-bh2": ("diffusers", diffusers_runner("UniPCMultistepScheduler", x, field)),
        "diffusers.DEIS-2": ("diffusers", diffusers_runner("DEISMultistepScheduler", x, field)),
        "diffusers.FlowMatchEuler": ("diffusers", diffusers_runner(
            "FlowMatchEulerDiscreteScheduler", x, field)),
        "k.euler": ("k-diffusion", k_runner("sample_euler", x, field, 1)),
        "k.heun": ("k-diffusion", k_runner("sample_heun", x, field, 2)),
        "k.dpmpp_2m": ("k-diffusion", k_runner("sample_dpmpp_2m", x, field, 1)),
        "k.dpmpp_2m_sde[tree]": ("k-diffusion", k_runner(
            "sample_dpmpp_2m_sde", x, field, 1, noise="tree")),
        "k.dpmpp_2m_sde[randn]": ("k-diffusion", k_runner(
            "sample_dpmpp_2m_sde", x, field, 1, noise="randn")),
        "k.euler_ancestral[tree]": ("k-diffusion", k_runner(
            "sample_euler_ancestral", x, field, 1, noise="tree")),
        "k.euler_ancestral[randn]": ("k-diffusion", k_runner(
            "sample_euler_ancestral", x, field, 1, noise="randn")),
        "fm.euler": ("flow_matching", fm_runner("euler", x, field, 1)),
        "fm.midpoint": ("flow_matching", fm_runner("midpoint", x, field, 2)),
        "fm.rk4": ("flow_matching", fm_runner("rk4", x, field, 4)),
    }  # fmt: skip


def measure(at, per_step: float, field: Trivial, call_cost: float, repeats: int) -> dict:
    """The slope between the two budgets; their runs alternate, so a busy spell of the machine
    slows both alike instead of one (the minimum of each is kept)."""
    runs, best, nfe = (at(LOW), at(HIGH)), [float("inf")] * 2, [0, 0]
    for _ in range(repeats):
        for i, run in enumerate(runs):
            t, nfe[i] = best_time(run, 1)
            best[i] = min(best[i], t)
    (t_lo, t_hi), (n_lo, n_hi) = best, nfe
    per_nfe = (t_hi - t_lo) / (n_hi - n_lo) - call_cost
    return {"us_per_nfe": per_nfe * 1e6, "us_per_step": per_nfe * per_step * 1e6,
            "nfe_per_step": per_step, "nfe": [n_lo, n_hi]}  # fmt: skip


# Row suffix: (solver parameters, label); stochastic samplers run with each noise source.
NOISES = {"": ({}, "sde, tree"), "[iid]": ({"noise": "iid"}, "sde, iid")}
ODE = {"": ({}, "ode")}
# The SDE ratios table: (k-diffusion anchor, flowforge sampler of the same kind and noise).
SDE_PAIRS = [
    ("k.dpmpp_2m_sde[tree]", "ff.dpm_solver_pp_sde"),
    ("k.dpmpp_2m_sde[randn]", "ff.dpm_solver_pp_sde[iid]"),
    ("k.euler_ancestral[tree]", "ff.reverse_sde"),
    ("k.euler_ancestral[randn]", "ff.reverse_sde[iid]"),
]


def sde_ratios(result: dict) -> list[list[str]]:
    """Rows of the SDE table: k-diffusion's and flowforge's µs per step (vp_cosine, data, the
    closest to k-diffusion's VE denoiser) and their ratio, for the pairs both runs measured."""
    rows = []
    for anchor, ours in SDE_PAIRS:
        if anchor in result and ours in result:
            a, b = result[anchor]["us_per_step"], result[ours]["vp_cosine/data"]["us_per_step"]
            rows.append([anchor, ours, f"{a:.1f}", f"{b:.1f}", f"{a / b:.1f}"])
    return rows


def noise_split(stochastic: list, result: dict) -> list[list[str]]:
    """Rows `(sampler, total, noise, total - noise)` in µs per step on vp_cosine/data."""
    rows = []
    for name, suffix in stochastic:
        drawn = noise_per_step(name, suffix, result)
        if drawn is not None:
            total = result[f"ff.{name}{suffix}"]["vp_cosine/data"]["us_per_step"]
            rows.append([f"ff.{name}{suffix}", f"{total:.1f}", f"{drawn:.1f}",
                         f"{total - drawn:.1f}"])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-anchors", action="store_true")
    parser.add_argument("--solvers", nargs="*", help="default: every registered solver")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("overhead.json"))
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall, or this thread's CPU time (shared machine)")  # fmt: skip
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    x = torch.randn(BATCH, DIM, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    field = Trivial(0.1 * x)
    start = clock()
    for _ in range(10000):
        field(x, None)
    call_cost = (clock() - start) / 10000
    rows, result, stochastic = [], {}, []
    names = args.solvers or registry.names("solver")
    for name in names:
        solver = registry.create("solver", name)
        if isinstance(solver, Adaptive | Discrete):  # own loop; discrete states
            continue
        for suffix, (params, kind) in (NOISES if isinstance(solver, SDE) else ODE).items():
            if isinstance(solver, SDE):
                stochastic.append((name, suffix))
            kinds = [("cond_ot", "velocity"), ("vp_cosine", "data")]
            cells = {}
            for path, pred in kinds:
                at, per_step = flowforge_runner(name, path, pred, x, field, **params)
                cells[f"{path}/{pred}"] = measure(at, per_step, field, call_cost, args.repeats)
            result[f"ff.{name}{suffix}"] = cells
            v, d = cells["cond_ot/velocity"], cells["vp_cosine/data"]
            rows.append(
                [
                    f"ff.{name}{suffix}",
                    f"flowforge ({kind})",
                    f"{v['us_per_nfe']:.1f}",
                    f"{v['us_per_step']:.1f}",
                    f"{d['us_per_step']:.1f}",
                    f"{v['nfe_per_step']:g}",
                ]
            )
    for kind in NOISE_KINDS if stochastic else ():
        at, per_step = noise_runner(kind, x)
        cell = measure(at, per_step, field, 0.0, args.repeats)
        result[f"ff.noise[{kind}]"] = {"us_per_step": cell["us_per_step"],
                                       "draw": NOISE_KINDS[kind]}  # fmt: skip
        rows.append([f"ff.noise[{kind}]", "flowforge (noise alone)", "",
                     *[f"{cell['us_per_step']:.1f}"] * 2, "0"])  # fmt: skip
    if not args.no_anchors:
        for name, (library, (at, per_step)) in anchors(x, field).items():
            cell = measure(at, per_step, field, call_cost, args.repeats)
            result[name] = cell
            rows.append([name, library, f"{cell['us_per_nfe']:.1f}", f"{cell['us_per_step']:.1f}",
                         "", f"{per_step:g}"])  # fmt: skip
    header = ["sampler", "library", "µs / NFE", "µs / step (cond_ot, velocity)",
              "µs / step (vp_cosine, data)", "NFE / step"]  # fmt: skip
    print(
        f"batch {BATCH}, d={DIM}, float64, 1 thread; slope between NFE ~{LOW} and ~{HIGH}, "
        f"min of {args.repeats} ({args.clock} clock); trivial-field call "
        f"({call_cost * 1e6:.2f} µs) subtracted"
    )
    print(markdown(header, rows))
    ratios = sde_ratios(result)
    if ratios:
        print("\nSDE samplers, µs per step (flowforge on vp_cosine/data):")
        print(markdown(["k-diffusion", "flowforge", "k µs / step", "ff µs / step", "k / ff"],
                       ratios))  # fmt: skip
    split = noise_split(stochastic, result)
    if split:
        print("\nSDE samplers, µs per step on vp_cosine/data: noise and the rest (step arithmetic "
              "and the driver's per-step work):")  # fmt: skip
        print(markdown(["sampler", "total", "noise", "total - noise"], split))
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
            "call_cost_us": call_cost * 1e6, "clock": args.clock,
            "repeats": args.repeats}  # fmt: skip
    args.out.write_text(json.dumps({"meta": meta, "results": result}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
