"""Solver accuracy benchmark: every registered flowforge ODE solver against the anchors.

Protocol (../shared/benchmarks/gmm_configs.json): mixtures A and B (d=16, K=8); 2048 start
noises (seed 1234); error = mean over starts of ||x - x_ref|| / sqrt(d), x_ref from scipy's
DOP853 at rtol=atol=1e-11 (float64) of the exact field from the same start; NFE counted by a
wrapper. Everything in float64, one process, anchors side by side:

1. untuned flowforge: each registered fixed-step ODE solver from pure noise on its natural
   paths (cond_ot, vp_cosine) and grids (auto, uniform, logsnr, edm); best per NFE;
2. anchors: diffusers, k-diffusion, flow_matching (see anchors.py for their conventions);
3. same method, same grid, same start: each flowforge solver on its counterpart's exact steps;
4. tuned flowforge: `flowforge.tuning.tune_schedule` on 64 pilot noises (seed 7, disjoint from
   the 2048 evaluation noises) with a stated budget, evaluated on the 2048 noises.

    .venv/bin/python benchmarks/solvers.py            # both configs, prints tables, writes JSON
    .venv/bin/python benchmarks/solvers.py --configs A --nfe 5 10 --no-tune   # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
import warnings
from pathlib import Path

import torch
from _common import (
    VP,
    Counted,
    adaptive_solvers,
    best_nfe,
    create,
    error,
    fixed_step_ode_solvers,
    fmt,
    load_configs,
    markdown,
    mixture,
    reference,
    start_noise,
)
from anchors import COND_OT, COUNTERPARTS, Anchor, all_anchors, starts

import flowforge
from flowforge import registry
from flowforge.errors import FlowforgeError
from flowforge.tuning import tune_schedule

NFES = (3, 4, 5, 6, 8, 10, 15, 20)
PATHS = ("cond_ot", "vp_cosine")
GRIDS = ("auto", "uniform", "logsnr", "edm")
PILOTS, PILOT_SEED, TUNE_BUDGET, TUNE_TOP = 64, 7, 4000, 2


def ours(gm, x, solver, path, grid, nfe, t_span=None):
    """End state of a flowforge solve with exactly `nfe` calls of the exact velocity."""
    path_obj = registry.resolve("path", path)
    return flowforge.sample(
        gm.field(path_obj), x, path=path_obj, prediction="velocity", solver=solver, nfe=nfe,
        time_grid=grid, t_span=t_span,
    )  # fmt: skip


def run_untuned(gm, z, ref, solvers, nfes):
    """{solver: {budget: {"nfe", "error", "path", "grid", "all"}}}: best natural combination."""
    out = {}
    for name in solvers:
        solver = create(name)
        out[name] = {}
        for budget in nfes:
            nfe = best_nfe(solver, budget)
            if nfe is None:
                continue
            cells = {}
            for path in PATHS:
                for grid in GRIDS:
                    try:
                        cells[f"{path}/{grid}"] = error(ours(gm, z, solver, path, grid, nfe), ref)
                    except FlowforgeError:
                        cells[f"{path}/{grid}"] = math.nan
            finite = {k: v for k, v in cells.items() if not math.isnan(v)}
            key = min(finite, key=finite.get) if finite else None
            out[name][budget] = {
                "nfe": nfe, "error": finite.get(key, math.nan), "best": key, "all": cells,
                "auto_cond_ot": cells["cond_ot/auto"],
            }  # fmt: skip
    return out


def end_time(anchor: Anchor, steps: int) -> float:
    """The vp_cosine time where the anchor's solve of `steps` steps ends (1.0: the data); the
    error is taken against the reference there."""
    path, times = anchor.grid(steps)
    return float(times[-1]) if path is VP else 1.0


def run_anchors(gm, z, refs, anchors: list[Anchor], nfes):
    """{anchor: {budget: {"nfe", "error", "steps"}}} at the largest step count within budget."""
    out = {}
    for anchor in anchors:
        out[anchor.name] = {}
        for budget in nfes:
            steps = anchor.steps(budget)
            if steps < 1:
                continue
            t_end = end_time(anchor, steps)
            try:
                x, nfe = anchor.run(gm, z, steps)
                err = error(x, refs[(anchor.start, t_end)])
            except Exception as exc:  # an anchor's own failure is a result, not a crash
                nfe, err = None, math.nan
                print(f"  {anchor.name} at budget {budget}: {type(exc).__name__}: {exc}")
            out[anchor.name][budget] = {"nfe": nfe, "error": err, "steps": steps, "t_end": t_end}
    return out


def run_same_grid(gm, z, refs, anchors: dict[str, Anchor], solvers, nfes):
    """{solver: {anchor: {budget: error}}}: the flowforge solver on the anchor's exact steps."""
    out = {}
    for name in solvers:
        solver = create(name)
        for anchor_name in COUNTERPARTS.get(name, []):
            anchor = anchors[anchor_name]
            start = starts(z)[anchor.start]
            row = {}
            for budget in nfes:
                nfe = best_nfe(solver, budget)
                if nfe is None:
                    continue
                path, times = anchor.grid(solver.steps_for_nfe(nfe))
                t0, t1 = times[0], times[-1]
                # The start state in the anchor's coordinates (same log-SNR, sigma ratio), and
                # the end state back in vp_cosine coordinates (alpha ratio; 1 at the data).
                x_init = (
                    start.x * path.sigma(t0) / VP.sigma(torch.tensor(start.t, dtype=torch.float64))
                )
                t_end = end_time(anchor, solver.steps_for_nfe(nfe))
                try:
                    x = ours(gm, x_init, solver, path, times, nfe, (float(t0), float(t1)))
                    x = x * VP.alpha(torch.tensor(t_end, dtype=x.dtype)) / path.alpha(t1)
                    row[budget] = error(x, refs[(anchor.start, t_end)])
                except FlowforgeError:
                    row[budget] = math.nan
            out.setdefault(name, {})[anchor_name] = row
    return out


def run_adaptive(gm, z, ref, tolerances=(1e-2, 1e-3, 1e-4, 1e-5)):
    """{sampler: {tol: {"nfe", "error"}}}: flowforge's adaptive solvers and torchdiffeq's dopri5.

    From pure noise on cond_ot; flowforge controls the error per sample, torchdiffeq on the
    whole batch (its norm mixes samples), so at one tolerance their NFE differ.
    """
    from flow_matching.solver import ODESolver

    out = {}
    for name in adaptive_solvers():
        out[f"ff.{name}"] = {}
        for tol in tolerances:
            solver = registry.create("solver", name, rtol=tol, atol=tol)
            res = flowforge.sample(
                gm.field(COND_OT), z, path=COND_OT, prediction="velocity", solver=solver,
                nfe=None, return_trajectory=True,
            )  # fmt: skip
            out[f"ff.{name}"][tol] = {"nfe": res.nfe, "error": error(res.x, ref)}
    out["torchdiffeq.dopri5"] = {}
    for tol in tolerances:
        field = Counted(
            lambda x, t, **_: gm.predict(x, t.to(x).expand(x.shape[0]), COND_OT, "velocity")
        )
        x = ODESolver(velocity_model=field).sample(
            x_init=z, step_size=None, method="dopri5", atol=tol, rtol=tol,
            time_grid=torch.tensor([0.0, 1.0], dtype=torch.float64),
        )  # fmt: skip
        out["torchdiffeq.dopri5"][tol] = {"nfe": field.calls, "error": error(x, ref)}
    return out


def run_tuned(gm, z, ref, untuned, nfes, budget):
    """Tune the grid of the `TUNE_TOP` best untuned (solver, path, grid) per NFE; keep the best.

    The budget is split evenly between candidates (each pays its own reference solve); the
    winner is chosen by pilot error only, then evaluated on the 2048 evaluation noises.
    """
    pilot = start_noise(PILOTS, z.shape[1], PILOT_SEED)
    out = {}
    for b in nfes:
        ranked = sorted(
            ((cells[b]["error"], name, cells[b]) for name, cells in untuned.items() if b in cells),
            key=lambda r: (math.isnan(r[0]), r[0]),
        )[:TUNE_TOP]
        best = None
        for _, name, cell in ranked:
            path, grid = cell["best"].split("/")
            path_obj = registry.create("path", path)
            try:
                tuned = tune_schedule(
                    gm.field(path_obj), pilot, path=path_obj, prediction="velocity",
                    solver=create(name), nfe=cell["nfe"], budget=budget // len(ranked),
                    init_grid=grid,
                    reference_nfe=400, lr=0.05,
                )  # fmt: skip
            except FlowforgeError as exc:
                print(f"  tuning {name} at nfe {cell['nfe']}: {exc}")
                continue
            if best is None or tuned.error_after < best[0].error_after:
                best = (tuned, path, name)
        if best is None:
            continue
        tuned, path, name = best
        x = ours(gm, z, create(name), path, tuned.tensor(), tuned.nfe)
        out[b] = {
            "solver": name, "path": path, "nfe": tuned.nfe, "error": error(x, ref),
            "pilot_before": tuned.error_before, "pilot_after": tuned.error_after,
            "evaluations": tuned.evaluations, "budget": budget, "grid": list(tuned.grid),
        }  # fmt: skip
    return out


def tables(name, untuned, anchors, same, tuned, adaptive, nfes, budget) -> str:
    """The markdown report of one configuration."""
    head = ["sampler", *[f"NFE≤{b}" for b in nfes]]
    parts = [f"## Config {name}"]

    def row(label, cells, key="error"):
        vals = []
        for b in nfes:
            c = cells.get(b)
            if c is None:
                vals.append("—")
                continue
            v = c if isinstance(c, float) else c[key]
            used = None if isinstance(c, float) else c.get("nfe")
            short = "†" not in label and not isinstance(c, float) and c.get("t_end", 1.0) < 1.0
            vals.append(fmt(v) + (f" ({used})" if used not in (None, b) else "") + "†" * short)
        return [label, *vals]

    rows = [row(f"ff.{s} (best path/grid)", c) for s, c in untuned.items()]
    rows += [row(f"ff.{s} (cond_ot, auto)", c, "auto_cond_ot") for s, c in untuned.items()]
    rows += [row(a, c) for a, c in anchors.items()]
    parts += ["### Error from pure noise (flowforge) / anchors' own start", markdown(head, rows)]

    rows = []
    for s, per_anchor in same.items():
        for a, cells in per_anchor.items():
            rows.append(row(f"ff.{s} on {a}'s grid", cells))
            rows.append(row(f"  {a}", anchors[a]))
    parts += ["### Same method, same grid, same start", markdown(head, rows)]

    def best_of(results):
        cells = {}
        for b in nfes:
            cands = [
                (c[b]["error"], n)
                for n, c in results.items()
                if b in c and not math.isnan(c[b]["error"])
            ]
            cells[b] = min(cands) if cands else (math.nan, "—")
        return cells

    # Anchors that stop at sigma_min (†: every solve, or the cells marked) are compared with the
    # exact state there, not the data, and left out of the best anchor.
    to_data = {
        name: {b: c for b, c in cells.items() if c.get("t_end", 1.0) == 1.0}
        for name, cells in anchors.items()
        if "†" not in name
    }
    bu, ba = best_of(untuned), best_of(to_data)
    rows = []
    for b in nfes:
        t = tuned.get(b)
        ratio = ba[b][0] / t["error"] if t else math.nan
        rows.append([
            b, f"{fmt(bu[b][0])} ({bu[b][1]})", f"{fmt(ba[b][0])} ({ba[b][1]})",
            f"{ba[b][0] / bu[b][0]:.2f}x",
            f"{fmt(t['error'])} ({t['solver']}, {t['path']}, nfe {t['nfe']})" if t else "—",
            f"{ratio:.2f}x" if t else "—",
        ])  # fmt: skip
    parts += [
        "### Best per NFE budget",
        markdown(
            ["NFE", "best untuned flowforge", "best anchor", "anchor/untuned",
             f"best tuned flowforge (budget {budget} evals on {PILOTS} pilots per NFE)",
             "anchor/tuned"],
            rows,
        ),
    ]  # fmt: skip
    tols = sorted({tol for cells in adaptive.values() for tol in cells}, reverse=True)
    rows = [
        [n, *(f"{fmt(c[t]['error'])} ({c[t]['nfe']})" if t in c else "—" for t in tols)]
        for n, c in adaptive.items()
    ]
    parts += [
        "### Adaptive solvers: error (NFE used) at rtol = atol",
        markdown(["solver", *(f"{t:g}" for t in tols)], rows),
    ]
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["A", "B"])
    parser.add_argument("--nfe", nargs="+", type=int, default=list(NFES))
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--no-tune", action="store_true")
    parser.add_argument("--budget", type=int, default=TUNE_BUDGET)
    parser.add_argument("--tune-nfe", nargs="+", type=int, help="default: every --nfe")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("solvers.json"))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", FutureWarning)
    solvers = fixed_step_ode_solvers()
    anchors = all_anchors()
    by_name = {a.name: a for a in anchors}
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} thr.",
        "torch": torch.__version__, "solvers": solvers, "configs": {},
    }  # fmt: skip
    print(f"flowforge solvers: {', '.join(solvers)}")
    for name in args.configs:
        start_time = time.perf_counter()
        cfg = load_configs()[name]
        gm = mixture(cfg)
        z = start_noise(args.samples, cfg["d"])
        refs = {}
        for s in starts(z).values():
            # Every end time of the grids of the anchors from this start at the step counts run
            # (diffusers' DDIM ends short of the data at some): one integration serves all.
            ends = {1.0} | {
                end_time(a, n)
                for a in anchors
                if a.start == s.name
                for n in {*map(a.steps, args.nfe), *args.nfe}
                if n > 0
            }
            for t_end, x_ref in reference(gm, s.x, s.t, ends).items():
                refs[(s.name, t_end)] = x_ref
        print(f"(config {name}: references in {time.perf_counter() - start_time:.0f} s)")
        untuned = run_untuned(gm, z, refs[("noise", 1.0)], solvers, args.nfe)
        print(f"(config {name}: untuned done at {time.perf_counter() - start_time:.0f} s)")
        anchor_res = run_anchors(gm, z, refs, anchors, args.nfe)
        same = run_same_grid(gm, z, refs, by_name, solvers, args.nfe)
        print(f"(config {name}: anchors done at {time.perf_counter() - start_time:.0f} s)")
        tuned = (
            {}
            if args.no_tune
            else run_tuned(
                gm, z, refs[("noise", 1.0)], untuned, args.tune_nfe or args.nfe, args.budget
            )
        )
        adaptive = run_adaptive(gm, z, refs[("noise", 1.0)])
        report = tables(name, untuned, anchor_res, same, tuned, adaptive, args.nfe, args.budget)
        print(report)
        print(f"(config {name}: {time.perf_counter() - start_time:.0f} s)")
        result["configs"][name] = {
            "untuned": untuned, "anchors": anchor_res, "same_grid": same, "tuned": tuned,
            "adaptive": adaptive,
            "markdown": report,
        }  # fmt: skip
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
