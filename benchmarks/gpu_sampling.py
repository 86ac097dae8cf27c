"""GPU sampling overhead: a whole solve as one CUDA graph, against the network alone.

Model: a standard 32x32 DDPM-style UNet (Ho et al. 2020, at a quarter of the CIFAR-10 model's
width): base 64 channels, multipliers (1, 2, 2, 2), 2 residual blocks per level, self-attention
at 16x16, sinusoidal time embedding, GroupNorm; its exact parameter count is reported.

For each configuration (batch 64 in float32; batch 256 with a bf16 network and a float32
solver state) and 10 NFE with `--solver` (dpm_solver_pp) on `vp_linear` / noise prediction:

- network: 10 network calls captured in one CUDA graph, per replay (the floor);
- ours: one `flowforge.sample(..., cuda_graph=True)` call, everything included (argument
  checks, grid, solver init, copies into the graph, replay, the NaN check's host read);
- ours_eager: the same call with `cuda_graph=False`;
- diffusers: the usual loop over `DPMSolverMultistepScheduler` (DPM-Solver++ 2M, the same
  UNet, 10 steps), as pipelines run it.

Times are medians of CUDA-event timings over `--repeats` calls after warm-up. The headline is
ours / network (goal at most 1.10; the diffusers loop measured 4.47 at batch 64 fp32 and 1.83
at batch 256 bf16 on an H200). Prints a table and writes JSON (`--out`).

    python benchmarks/gpu_sampling.py --out gpu_sampling.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import platform
import statistics
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import markdown
from torch import Tensor, nn

import flowforge
from flowforge import graph
from flowforge.field import Dynamics
from flowforge.grids import make_grid
from flowforge.solvers import Solver

NFE = 10
PATH, PREDICTION = "vp_linear", "noise"
CONFIGS = [("batch 64 fp32", 64, torch.float32), ("batch 256 bf16", 256, torch.bfloat16)]


# --- the UNet -------------------------------------------------------------------------------


def time_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding `(B, dim)` of `t (B,)` in [0, 1], computed in float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, c_emb: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(32, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(c_emb, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(32, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class Attention(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.norm, self.qkv, self.proj = (
            nn.GroupNorm(32, c),
            nn.Conv2d(c, 3 * c, 1),
            nn.Conv2d(c, c, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        b, c, hgt, wid = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, hgt * wid).transpose(2, 3).unbind(1)
        h = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj(h.transpose(1, 2).reshape(b, c, hgt, wid))


class UNet(nn.Module):
    """DDPM's UNet for 32x32 images: `(x (B, 3, 32, 32), t (B,)) -> (B, 3, 32, 32)`."""

    def __init__(self, ch: int = 64, mults=(1, 2, 2, 2), blocks: int = 2, attn_res=(16,)):
        super().__init__()
        self.ch, emb = ch, 4 * ch
        self.embed = nn.Sequential(nn.Linear(ch, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.inp = nn.Conv2d(3, ch, 3, padding=1)
        self.down, chans, c, res = nn.ModuleList(), [ch], ch, 32
        for level, m in enumerate(mults):
            for _ in range(blocks):
                self.down.append(self._stage(c, ch * m, emb, res in attn_res))
                c = ch * m
                chans.append(c)
            if level < len(mults) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                chans.append(c)
                res //= 2
        self.mid = nn.ModuleList([ResBlock(c, c, emb), Attention(c), ResBlock(c, c, emb)])
        self.up = nn.ModuleList()
        for level, m in reversed(list(enumerate(mults))):
            for _ in range(blocks + 1):
                self.up.append(self._stage(c + chans.pop(), ch * m, emb, res in attn_res))
                c = ch * m
            if level > 0:
                self.up.append(
                    nn.Sequential(nn.Upsample(scale_factor=2.0), nn.Conv2d(c, c, 3, padding=1))
                )
                res *= 2
        self.out = nn.Sequential(nn.GroupNorm(32, c), nn.SiLU(), nn.Conv2d(c, 3, 3, padding=1))

    @staticmethod
    def _stage(c_in: int, c_out: int, emb: int, attn: bool) -> nn.ModuleList:
        return nn.ModuleList([ResBlock(c_in, c_out, emb), *([Attention(c_out)] if attn else [])])

    @staticmethod
    def _run(stage: nn.Module, h: Tensor, emb: Tensor) -> Tensor:
        if not isinstance(stage, nn.ModuleList):
            return stage(h)
        for layer in stage:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        return h

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        emb = self.embed(time_embedding(t, self.ch).to(x.dtype))
        hs = [self.inp(x)]
        for stage in self.down:
            hs.append(self._run(stage, hs[-1], emb))
        h = self._run(self.mid, hs[-1], emb)
        for stage in self.up:
            if isinstance(stage, nn.ModuleList):  # a residual stage takes the matching skip
                h = torch.cat([h, hs.pop()], dim=1)
            h = self._run(stage, h, emb)
        return self.out(h)


# --- timing -----------------------------------------------------------------------------------


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Median wall time of `fn()` on the GPU in ms, each call between two CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def network_graph(net: nn.Module, x: Tensor, t: Tensor) -> torch.cuda.CUDAGraph:
    """The floor: `NFE` network calls at the times `t (NFE, B)` captured in one graph."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.no_grad():
        for _ in range(2):
            net(x, t[0])
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g), torch.no_grad():
        for i in range(NFE):
            net(x, t[i])
    return g


def diffusers_loop(net: nn.Module, x: Tensor) -> Callable[[], Tensor]:
    """The anchor: a pipeline-style loop over diffusers' DPM-Solver++ (2M) scheduler."""
    from diffusers import DPMSolverMultistepScheduler

    sched = DPMSolverMultistepScheduler(
        num_train_timesteps=1000, beta_schedule="linear", algorithm_type="dpmsolver++",
        solver_order=2,
    )  # fmt: skip

    @torch.no_grad()
    def run() -> Tensor:
        sched.set_timesteps(NFE, device=x.device)
        lat = x * sched.init_noise_sigma
        for step in sched.timesteps:
            t = (1.0 - step.float() / 1000.0).expand(lat.shape[0])  # our time: 0 = noise
            lat = sched.step(net(lat, t), step, lat).prev_sample
        return lat

    return run


def resolve(spec: str) -> Solver:
    """A registered solver name, or `module:Class` for a solver that is not registered (yet)."""
    if ":" not in spec:
        return flowforge.registry.create("solver", spec)
    module, cls = spec.split(":")
    return getattr(importlib.import_module(module), cls)()


def ours(
    net: nn.Module, x: Tensor, solver: Solver, captured: bool, seed: int | None = None
) -> Callable[[], Tensor]:
    """One `flowforge.sample` call; a bf16 network gets a float32 solver state.

    `seed`: a seeded CUDA generator for stochastic solvers (None: torch's global RNG).
    """
    mixed = {"solver_dtype": torch.float32} if x.dtype != torch.float32 else {}
    kw = dict(path=PATH, prediction=PREDICTION, solver=solver, nfe=NFE, cuda_graph=captured)

    def call() -> Tensor:
        gen = None if seed is None else torch.Generator(x.device).manual_seed(seed)
        return flowforge.sample(net, x, generator=gen, **kw, **mixed)

    return call


def init_only(x: Tensor, solver: Solver) -> Callable[[], object]:
    """The eager work before the loop: the time grid and `Solver.init` (float32 state)."""
    path = flowforge.registry.create("path", PATH)
    state = x.float()
    t0, t1 = (torch.full((x.shape[0],), t, device=x.device) for t in path.t_span)
    f = Dynamics(lambda x, t: x, path, PREDICTION)
    steps = solver.steps_for_nfe(NFE)
    return lambda: solver.init(
        f, state, make_grid("auto", path, t0, t1, steps, solver.default_grid)
    )


def timed(method: str, make: Callable[[], Callable[[], object]], repeats: int) -> dict:
    """A row with the median ms of `make()()`, or the error that stopped it (the run goes on)."""
    try:
        return {"method": method, "ms": median_ms(make(), repeats)}
    except Exception as err:  # one GPU run measures everything: report and go on
        return {"method": method, "ms": None, "note": f"{type(err).__name__}: {err}"}


def measure(name: str, batch: int, dtype: torch.dtype, solvers: list[str], repeats: int):
    """Rows `{config, method, ms, ratio, ...}` for one configuration; ratio = ms / network."""
    torch.manual_seed(0)
    net = UNet().cuda().eval().to(dtype)
    x = torch.randn(batch, 3, 32, 32, device="cuda", dtype=dtype)
    t = torch.linspace(0.0, 0.999, NFE, device="cuda")[:, None].expand(NFE, batch).contiguous()
    floor = network_graph(net, x, t)
    rows = [timed("network only (graph)", lambda: floor.replay, repeats)]
    for spec in solvers:
        solver = resolve(spec)
        label = spec.split(":")[-1]
        rows.append(
            timed(f"{label}: grid + init only (eager)", partial(init_only, x, solver), repeats)
        )
        for captured in (True, False):
            mode = "graph" if captured else "eager"
            make = partial(ours, net, x, solver, captured)
            rows.append(timed(f"flowforge {label} ({mode})", make, repeats))
        if rows[-1]["ms"] is not None and rows[-2]["ms"] is not None:
            same_noise = [ours(net, x, solver, c, seed=0)() for c in (True, False)]
            diff = (same_noise[0] - same_noise[1]).abs().max()
            rows[-1]["note"] = f"max |graph - eager| = {float(diff):.1e}"
        graph.clear_cache()
    rows.append(timed("diffusers DPM-Solver++ 2M loop", partial(diffusers_loop, net, x), repeats))
    rows.append(timed("network only (graph), again", lambda: floor.replay, repeats))
    for row in rows:
        row["config"], row["batch"], row["network_dtype"] = name, batch, str(dtype)[6:]
        row["ratio"] = None if row["ms"] is None else row["ms"] / rows[0]["ms"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--solvers", default="dpm_solver_pp", help="comma-separated names (or module:Class)"
    )
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    known = set(flowforge.registry.names("solver"))
    solvers = [s for s in args.solvers.split(",") if s in known or ":" in s]
    missing = [s for s in args.solvers.split(",") if s not in solvers]
    params = sum(p.numel() for p in UNet().parameters())
    rows = [r for n, b, d in CONFIGS for r in measure(n, b, d, solvers, args.repeats)]
    try:
        import diffusers

        diffusers_version = diffusers.__version__
    except ImportError:
        diffusers_version = None
    env = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "diffusers": diffusers_version,
        "python": platform.python_version(),
        "solvers": solvers,
        "solvers_not_registered": missing,
        "nfe": NFE,
        "path": PATH,
        "prediction": PREDICTION,
        "unet_parameters": params,
        "repeats": args.repeats,
        "cudnn_benchmark": True,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_precision": torch.get_float32_matmul_precision(),
    }
    args.out.write_text(json.dumps({"environment": env, "results": rows}, indent=2))
    print(f"{env['device']}, torch {env['torch']}, diffusers {diffusers_version}")
    print(f"UNet 32x32: {params:,} parameters; {NFE} NFE on {PATH}/{PREDICTION}; ", end="")
    print(f"medians of {args.repeats} calls (CUDA events); not registered: {missing or 'none'}\n")
    body = [
        [
            r["config"],
            r["method"],
            "—" if r["ms"] is None else f"{r['ms']:.3f}",
            "—" if r["ratio"] is None else f"{r['ratio']:.3f}x",
            r.get("note", ""),
        ]
        for r in rows
    ]
    print(markdown(["config", "method", "ms", "/ network", "note"], body))
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
