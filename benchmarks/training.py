"""Training throughput: the trainer against a bare PyTorch loop, GPU Sinkhorn against POT's CPU
solver, the cost of every coupling, and data-parallel scaling.

(a) `overhead`: flowforge's `Trainer.fit` and a hand-written loop train the same MLP on the same
    Gaussian-mixture data with the same batch, precision, AdamW (fused), gradient clipping and
    EMA; samples per second of each (best of `--repeats` alternating runs) and their ratio
    (goal: at least 0.90), the median of the paired runs' ratios, and each run's minor page
    faults per step.
(b) `sinkhorn`: one entropic OT coupling of a batch (`--ot-batch` noises and data points in
    `--ot-dim` dimensions, standard Gaussians): flowforge's `sinkhorn` coupling on `--device`
    against POT's `ot.sinkhorn` on the CPU with the same regularisation and iterations, and
    against torchcfm's `OTPlanSampler("sinkhorn").sample_plan` (cost on the device, plan by POT
    on the CPU to convergence, pairs drawn by numpy: the torchcfm approach). The two plans are
    compared entry by entry.
(c) `couplings`: milliseconds per batch of every coupling at the same sizes (the exact
    assignments at their limit of 512), and on a GPU whether the device-side ones ran without a
    host synchronisation.
(d) `ddp`: the trainer on one process (GPU 0), then on `--ddp` processes (NCCL on GPUs, gloo on
    the CPU) with the same per-process batch; scaling efficiency = throughput of N processes /
    (N x throughput of one) (goal: at least 0.90 with a model that saturates a GPU).

    python benchmarks/training.py --device cpu --tiny          # CPU smoke run, well under a minute
    python benchmarks/training.py --device cuda --parts overhead,sinkhorn,couplings
    python benchmarks/training.py --device cuda --parts ddp --ddp 2 --width 4096 --depth 8 ...
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import resource
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from flowforge.distributed import current, spawn
from flowforge.models import MLP
from flowforge.paths import CondOT
from flowforge.spec.models import TrainSpec
from flowforge.targets import GaussianMixture
from flowforge.training import Regression, Trainer
from flowforge.training.couplings import (
    ClassConditionalOT,
    ExactOT,
    Independent,
    Sinkhorn,
    WeightedCFM,
    sinkhorn_log_plan,
    squared_distances,
)

LR, EMA_DECAY, CLIP = 1e-4, 0.999, 1.0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def mixture_data(n: int, dim: int, device: torch.device) -> Tensor:
    """`n` points of an 8-component Gaussian mixture in `dim` dimensions (fixed seed)."""
    gen = torch.Generator().manual_seed(0)
    means = 2.0 * torch.randn(8, dim, generator=gen, dtype=torch.float64)
    data = GaussianMixture(means, 0.5).sample(n, generator=gen)
    return data.to(device=device, dtype=torch.float32)


def make_model(args: argparse.Namespace, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    return MLP(args.dim, args.width, args.depth, 64).to(device)


def train_config(args: argparse.Namespace, steps: int, batch: int) -> TrainSpec:
    return TrainSpec(
        steps=steps,
        batch_size=batch,
        lr=LR,
        ema_decay=EMA_DECAY,
        grad_clip=CLIP,
        precision=args.precision,
        log_every=100,
        checkpoint_every=10**9,
    )


# ---- (a) trainer vs bare loop -------------------------------------------------------------


def trainer_rate(model: nn.Module, data: Tensor, args, batch: int, device) -> float:
    """Samples per second of `Trainer.fit` after `--warmup` steps (every process alike)."""
    config = train_config(args, args.warmup + args.steps, batch)
    objective = Regression(CondOT(), "velocity", data)
    gen = torch.Generator(device=device).manual_seed(0)
    trainer = Trainer(model, objective, config, generator=gen)
    marks: dict[str, float] = {}

    def on_step(step: int) -> None:
        if step == args.warmup:
            sync(device)
            marks["start"] = time.perf_counter()

    trainer.fit(on_step=on_step)
    sync(device)
    return args.steps * batch / (time.perf_counter() - marks["start"])


def bare_rate(model: nn.Module, data: Tensor, args, batch: int, device) -> float:
    """The same training written as a plain loop: cond-OT flow matching, uniform times,
    fused AdamW, norm clipping, EMA; samples per second after `--warmup` steps."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0, fused=True)  # the trainer's default
    ema = [p.detach().clone() for p in params]
    gen = torch.Generator(device=device).manual_seed(0)
    bf16 = args.precision == "bf16"

    def step() -> None:
        idx = torch.randint(0, data.shape[0], (batch,), generator=gen, device=device)
        x_1 = data[idx]
        t = torch.rand(batch, generator=gen, device=device)
        x_0 = torch.randn(x_1.shape, generator=gen, device=device)
        x_t = t[:, None] * x_1 + (1 - t[:, None]) * x_0
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            pred = model(x_t, t)
        loss = (pred.float() - (x_1 - x_0)).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP, foreach=True)
        opt.step()
        torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - EMA_DECAY)

    for _ in range(args.warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync(device)
    return args.steps * batch / (time.perf_counter() - start)


def minor_faults() -> int:
    """Minor page faults of this process so far: memory the kernel maps in on first touch."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def overhead(args, device: torch.device) -> dict:
    """Alternating runs of both loops; besides the best-of ratio, the median of the paired
    ratios, and each run's minor page faults per step (the host allocator returning memory to
    the kernel and faulting it back in shows up as slower matrix products, not as extra ops)."""
    data = mixture_data(args.data, args.dim, device)
    base = make_model(args, device)
    runs: dict[str, tuple[list[float], list[float]]] = {"bare": ([], []), "trainer": ([], [])}
    for _ in range(args.repeats):
        for name, rate in (("bare", bare_rate), ("trainer", trainer_rate)):
            before = minor_faults()
            runs[name][0].append(rate(copy.deepcopy(base), data, args, args.batch, device))
            runs[name][1].append((minor_faults() - before) / (args.warmup + args.steps))
    (trainer, trainer_faults), (bare, bare_faults) = runs["trainer"], runs["bare"]
    best_t, best_b = max(trainer), max(bare)
    return {
        "trainer_samples_per_s": best_t,
        "bare_samples_per_s": best_b,
        "ratio": best_t / best_b,
        "ratio_median": statistics.median(t / b for t, b in zip(trainer, bare, strict=True)),
        "trainer_runs": trainer,
        "bare_runs": bare,
        "trainer_faults_per_step": trainer_faults,
        "bare_faults_per_step": bare_faults,
    }


# ---- (b) Sinkhorn -------------------------------------------------------------------------


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of `fn()` over `repeats` calls after one warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sinkhorn(args, device: torch.device) -> dict:
    import numpy as np
    import ot
    from torchcfm.optimal_transport import OTPlanSampler

    gen = torch.Generator(device=device).manual_seed(0)
    n, d, eps, iters = args.ot_batch, args.ot_dim, args.ot_eps, args.ot_iters
    x_0 = torch.randn(n, d, generator=gen, device=device)
    x_1 = torch.randn(n, d, generator=gen, device=device)
    ours = Sinkhorn(eps=eps, iters=iters)
    early = Sinkhorn(eps=eps, iters=iters, tol=1e-3)
    out = {
        "flowforge_ms": 1e3
        * timed(lambda: ours.pair(x_0, x_1, generator=gen), device, args.ot_repeats),
        "flowforge_tol_ms": 1e3
        * timed(lambda: early.pair(x_0, x_1, generator=gen), device, args.ot_repeats),
    }
    cost = squared_distances(x_1, x_0)
    reg = eps * float(cost.mean())  # the same entropic problem: eps relative to the mean cost
    cost_np = cost.cpu().numpy()
    a = b = np.full(n, 1.0 / n)

    def pot_fixed() -> np.ndarray:
        return ot.sinkhorn(a, b, cost_np, reg, numItermax=iters, stopThr=0.0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # POT warns when stopped at numItermax on purpose
        out["pot_cpu_ms"] = 1e3 * timed(pot_fixed, torch.device("cpu"), args.ot_repeats)
        sampler = OTPlanSampler("sinkhorn", reg=reg)
        out["torchcfm_ms"] = 1e3 * timed(
            lambda: sampler.sample_plan(x_0, x_1), device, max(1, args.ot_repeats // 3)
        )
        # the plans of the two solvers on the same cost, in float64
        mine = sinkhorn_log_plan(cost.double().cpu(), eps, iters=iters).exp().numpy()
        theirs = ot.sinkhorn(a, b, cost.double().cpu().numpy(), reg, numItermax=iters, stopThr=0.0)
    out["plan_max_abs_diff_x_n2"] = float(np.abs(mine - theirs).max() * n * n)
    out["speedup_vs_pot"] = out["pot_cpu_ms"] / out["flowforge_ms"]
    out["speedup_vs_torchcfm"] = out["torchcfm_ms"] / out["flowforge_ms"]
    return out


def couplings(args, device: torch.device) -> dict:
    """Milliseconds per batch of every coupling at `--ot-batch` x `--ot-dim` (the exact
    assignments at their limit of 512), and whether the device-side ones ran without a host
    synchronisation (`torch.cuda.set_sync_debug_mode("error")`)."""
    gen = torch.Generator(device=device).manual_seed(0)
    n, exact_n = args.ot_batch, min(args.ot_batch, 512)
    x_0 = torch.randn(n, args.ot_dim, generator=gen, device=device)
    x_1 = torch.randn(n, args.ot_dim, generator=gen, device=device)
    labels = torch.randint(0, 10, (n,), generator=gen, device=device)
    on_device = {
        "independent": (Independent(), n),
        "wcfm": (WeightedCFM(eps=0.5), n),
        "sinkhorn": (Sinkhorn(eps=args.ot_eps, iters=args.ot_iters), n),
        "sinkhorn_tol": (Sinkhorn(eps=args.ot_eps, iters=args.ot_iters, tol=1e-3), n),
    }
    host = {"exact_ot": (ExactOT(), exact_n), "class_conditional": (ClassConditionalOT(), exact_n)}
    out: dict = {"batch": n, "exact_batch": exact_n, "dim": args.ot_dim}
    for name, (coupling, m) in {**on_device, **host}.items():

        def call(c=coupling, m=m) -> object:
            return c.pair(x_0[:m], x_1[:m], generator=gen, labels=labels[:m])

        out[f"{name}_ms"] = 1e3 * timed(call, device, args.ot_repeats)
        if device.type == "cuda" and name in on_device:
            torch.cuda.set_sync_debug_mode("error")
            try:
                call()
                out[f"{name}_no_host_sync"] = True
            except RuntimeError:
                out[f"{name}_no_host_sync"] = False
            finally:
                torch.cuda.set_sync_debug_mode("default")
    return out


# ---- (d) DDP ------------------------------------------------------------------------------


def ddp_worker(args: argparse.Namespace, out: str) -> None:
    """One process of the data-parallel run: the trainer with `--batch` rows per process."""
    world = current()
    device = torch.device("cuda", world.rank) if args.device == "cuda" else torch.device("cpu")
    data = mixture_data(args.data, args.dim, device)
    rates = [
        trainer_rate(make_model(args, device), data, args, args.batch * world.size, device)
        for _ in range(args.repeats)
    ]
    if world.is_main:
        Path(out).write_text(json.dumps(rates))


def ddp(args, device: torch.device) -> dict:
    if device.type == "cuda" and torch.cuda.device_count() < args.ddp:
        found = torch.cuda.device_count()
        print(f"ddp: skipped, {args.ddp} processes need {args.ddp} GPUs and {found} are visible")
        return {"skipped": f"{found} GPU(s) visible, {args.ddp} needed"}
    data = mixture_data(args.data, args.dim, device)
    single = max(
        trainer_rate(make_model(args, device), data, args, args.batch, device)
        for _ in range(args.repeats)
    )
    del data
    if device.type == "cuda":
        torch.cuda.empty_cache()
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "rates.json"
        backend = "nccl" if device.type == "cuda" else "gloo"
        spawn(ddp_worker, args.ddp, args, str(file), backend=backend)
        rates = json.loads(file.read_text())
    many = max(rates)
    return {
        "processes": args.ddp,
        "backend": backend,
        "batch_per_process": args.batch,
        "single_samples_per_s": single,
        "ddp_samples_per_s": many,
        "efficiency": many / (args.ddp * single),
        "ddp_runs": rates,
    }


# ---- main ---------------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--parts", default="overhead,sinkhorn,couplings,ddp", help="comma-separated subset"
    )
    p.add_argument("--precision", default="float32", choices=["float32", "bf16"])
    p.add_argument("--dim", type=int, default=64, help="data dimension")
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--batch", type=int, default=512, help="batch per process")
    p.add_argument("--data", type=int, default=8192, help="training points")
    p.add_argument("--steps", type=int, default=200, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--ot-batch", type=int, default=1024)
    p.add_argument("--ot-dim", type=int, default=3072)
    p.add_argument("--ot-eps", type=float, default=0.05)
    p.add_argument("--ot-iters", type=int, default=100)
    p.add_argument("--ot-repeats", type=int, default=10)
    p.add_argument("--ddp", type=int, default=2, help="processes for the ddp part")
    p.add_argument("--tiny", action="store_true", help="CPU smoke sizes (seconds)")
    p.add_argument("--out", default=str(Path(__file__).with_name("training.json")))
    args = p.parse_args(argv)
    if args.tiny:
        args.dim, args.width, args.depth, args.batch, args.data = 8, 64, 2, 64, 1024
        args.steps, args.warmup, args.repeats = 30, 5, 2
        args.ot_batch, args.ot_dim, args.ot_repeats = 128, 64, 3
    return args


def table(results: dict) -> str:
    rows = []
    if "overhead" in results:
        r = results["overhead"]
        rows.append(
            (
                "trainer / bare loop",
                f"{r['trainer_samples_per_s']:.4g} / {r['bare_samples_per_s']:.4g} samples/s",
                f"ratio {r['ratio']:.3f} (goal >= 0.90), median of pairs "
                f"{r['ratio_median']:.3f}; page faults/step "
                f"{statistics.median(r['trainer_faults_per_step']):.0f} / "
                f"{statistics.median(r['bare_faults_per_step']):.0f}",
            )
        )
    if "sinkhorn" in results:
        r = results["sinkhorn"]
        rows.append(
            (
                "sinkhorn flowforge",
                f"{r['flowforge_ms']:.3g} ms ({r['flowforge_tol_ms']:.3g} with tol)",
                f"plan diff x n^2 {r['plan_max_abs_diff_x_n2']:.2g}",
            )
        )
        rows.append(
            (
                "sinkhorn POT cpu / torchcfm",
                f"{r['pot_cpu_ms']:.4g} / {r['torchcfm_ms']:.4g} ms",
                f"speed-up {r['speedup_vs_pot']:.3g}x / {r['speedup_vs_torchcfm']:.3g}x",
            )
        )
    if "couplings" in results:
        r = results["couplings"]
        names = [k[:-3] for k in r if k.endswith("_ms")]
        rows.append(
            (
                f"couplings ms/batch ({r['batch']}; exact {r['exact_batch']})",
                ", ".join(f"{k} {r[k + '_ms']:.3g}" for k in names),
                "no host sync: " + ", ".join(k for k in names if r.get(k + "_no_host_sync")),
            )
        )
    if "ddp" in results and "skipped" not in results["ddp"]:
        r = results["ddp"]
        rows.append(
            (
                f"ddp {r['processes']} x {r['backend']}",
                f"{r['ddp_samples_per_s']:.4g} vs 1 x {r['single_samples_per_s']:.4g} samples/s",
                f"efficiency {r['efficiency']:.3f} (goal >= 0.90)",
            )
        )
    width = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, width, strict=True)) for row in rows)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    parts = [p for p in args.parts.split(",") if p]
    known = {"overhead": overhead, "sinkhorn": sinkhorn, "couplings": couplings, "ddp": ddp}
    unknown = set(parts) - set(known)
    if unknown:
        raise SystemExit(f"--parts: unknown {sorted(unknown)}; choose from {','.join(known)}")
    results: dict = {}
    for part in parts:
        results[part] = known[part](args, device)
    results["settings"] = {k: v for k, v in vars(args).items() if k != "out"}
    results["machine"] = {
        "platform": platform.platform(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor(),
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "threads": torch.get_num_threads(),
    }
    print(table({k: v for k, v in results.items() if k in parts}))
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
