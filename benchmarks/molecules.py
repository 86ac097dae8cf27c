"""QM9 molecule generation benchmark: train within a time budget (resumable), sample at several
NFE, report EDM's metrics beside the EDM and EquiFM anchors.

Trains the plugin's EGNN flow (cond_ot, velocity, equivariant OT coupling) on QM9 with hydrogens,
on the product state (`--state product`: Gaussian positions, masked discrete types and charges,
sampled by the core mixed sampler) or the EDM-style one-hot state (`--state onehot`),
for `--train-seconds` of this invocation (checkpoints in `--run-dir`, so repeated invocations add
up; `--max-steps` caps the total), then samples `--samples` molecules at each `--nfe` with
`--solver` and reports atom and molecule stability, RDKit validity, V x U, novelty, FCD against
the test split and sampling throughput, plus the training budget used. Prints a table and writes
`benchmarks/molecules.json` (rewritten after each NFE, so a run cut short keeps its rows).
`--train-seconds 0` scores the newest checkpoint's EMA weights without the trainer, on any
device; `--save-weights F` writes the EMA weights alone (a quarter of a checkpoint),
`--snapshot-every N` writes them every N training steps to `RUN_DIR/snapshots/`, and
`--weights F` scores such a file without a run directory (`ema_weights.py`): pick a step on one
seed's molecules, report it on another's.

Under `torchrun` the processes train data-parallel (the core Trainer's DDP, one GPU each):
`--batch-size` is the global batch, every process stops after the same step, and the main process
alone writes the checkpoint, samples, evaluates and prints while the others wait.

    python benchmarks/molecules.py --data qm9_fixture --train-seconds 30 --samples 64 \\
        --nfe 20 --hidden 32 --layers 2 --no-fcd                    # CPU smoke, about a minute
    python benchmarks/molecules.py --train-seconds 1500 --samples 10000   # GPU (see --help)
    torchrun --standalone --nproc_per_node=4 benchmarks/molecules.py --batch-size 1024 ...
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple, get_args

import ema_weights
import torch
import torch.distributed as dist
from flowforge_molecules.atom_counts import AtomCounts
from flowforge_molecules.coupling import EquivariantOT
from flowforge_molecules.encoding import OneHotEncoding
from flowforge_molecules.metrics.context import MoleculeMetricContext
from flowforge_molecules.metrics.registered import FCDMetric, Stability, Validity
from flowforge_molecules.models import EGNNParams, build_egnn
from flowforge_molecules.models.product_head import ProductField
from flowforge_molecules.objective import MoleculeObjective
from flowforge_molecules.product import ProductEncoding
from flowforge_molecules.product_objective import ProductObjective
from flowforge_molecules.product_sampling import sample_product
from flowforge_molecules.sampling import sample_molecules
from pydantic import ValidationError

from flowforge import distributed, registry
from flowforge.data.standardize import Standardizer
from flowforge.errors import FlowforgeError, InvalidArgumentError, NumericalError
from flowforge.grids import GRIDS, check_grid_name
from flowforge.paths import CondOT
from flowforge.spec.models import TrainSpec
from flowforge.training.checkpoint import CheckpointDir
from flowforge.training.lr_schedule import SCHEDULES
from flowforge.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
# (atom stability, molecule stability, validity) in %, QM9 with H, 1000 sampling steps
ANCHORS = {
    "EDM (Hoogeboom et al. 2022)": (98.7, 82.0, 91.9),
    "EquiFM (Song et al. 2023)": (98.9, 88.3, 94.7),
}


class Parts(NamedTuple):
    """The components the flags name, built once while parsing (bad params stop the run there)."""

    time_sampler: object
    solver: object
    discrete_solver: object
    train_spec: TrainSpec


def parse() -> tuple[argparse.Namespace, Parts]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="qm9", choices=["qm9", "qm9_fixture"])
    p.add_argument("--state", default="product", choices=["product", "onehot"])
    p.add_argument("--discrete-path", default="masked", choices=["masked", "uniform"])
    p.add_argument("--discrete-solver", default="ancestral", help="state product: types/charges")
    p.add_argument(
        "--discrete-temperature",
        type=float,
        default=1.0,
        help="state product: of the drawn types and charges (1: the model's; 0: argmax)",
    )
    p.add_argument(
        "--discrete-eta",
        type=float,
        default=0.0,
        help="state product: remasking rate of types and charges, balanced (docs/discrete.md)",
    )
    p.add_argument(
        "--discrete-eta-window",
        default="0,1",
        help="state product: t_on,t_off: remask only in steps that start in this range",
    )
    p.add_argument("--discrete-loss", default="elbo", choices=["elbo", "cross_entropy"])
    p.add_argument("--limit", type=int, default=None, help="molecules per split (qm9)")
    p.add_argument(
        "--self-condition",
        action="store_true",
        help="the network also reads its own previous estimate (trained on half the molecules)",
    )
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=9)
    p.add_argument(
        "--batch-size",
        type=int,
        default=256,
        help="global batch: split evenly among the processes under torchrun",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=1e-3,
        help="peak learning rate (docs/molecules.md: 1e-3 beat 5e-4 and 2e-4 on CPU)",
    )
    p.add_argument(
        "--train-seconds",
        type=float,
        default=60.0,
        help="training time of this invocation (added to earlier ones); 0 scores the newest "
        "checkpoint's EMA weights without the trainer, on any device",
    )
    p.add_argument("--max-steps", type=int, default=1_000_000, help="total step cap")
    p.add_argument("--warmup", type=int, default=500, help="learning-rate warm-up steps")
    p.add_argument(
        "--lr-schedule",
        default="constant",
        choices=SCHEDULES,
        help="after the warm-up, until --max-steps; a resumed run takes this one, so "
        "'--lr-schedule linear --warmup NOW --max-steps END' anneals a constant-rate run from its "
        "step NOW to zero at END (docs/molecules.md)",
    )
    p.add_argument("--grad-clip", type=float, default=1.0, help="gradient norm clip (0: none)")
    p.add_argument(
        "--skip-spikes",
        type=float,
        default=None,
        help="skip a step whose loss or gradient norm is above this many times its running "
        "mean (train.skip_spikes, e.g. 10; a resumed run may add it)",
    )
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument(
        "--time-sampler",
        default="logit_normal",
        choices=registry.names("time_sampler"),
        help="training times (docs/molecules.md: logit_normal beat uniform on CPU)",
    )
    p.add_argument(
        "--time-sampler-params",
        type=json.loads,
        default={},
        help="a JSON object of the time sampler's params, e.g. '{\"mean\": 0.5}' (logit_normal: "
        "times nearer the data)",
    )
    p.add_argument(
        "--loss-weights",
        default="3,0.4,1",
        help="state product: weights of the position, atom-type and charge losses (FlowMol's; "
        "docs/molecules.md: more stable atoms than 1,1,1 on CPU)",
    )
    p.add_argument("--precision", default="float32", choices=["float32", "bf16"])
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the network while training (default: on for cuda, off for cpu)",
    )
    p.add_argument(
        "--compile-mode",
        default="default",
        choices=get_args(TrainSpec.model_fields["compile_mode"].annotation),
        help="reduce-overhead: CUDA graphs of the compiled passes (the step is host-bound)",
    )
    p.add_argument(
        "--draw-ahead",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="CUDA: draw (and OT-pair) the next batch on a side stream while a step runs "
        "(no gain measured here: the step is host-bound, docs/BENCHMARKS.md)",
    )
    p.add_argument(
        "--size-batches",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="each batch of one atom count, cut to that width (about 0.4 of the pair work)",
    )
    p.add_argument("--no-ot", action="store_true", help="independent coupling")
    p.add_argument(
        "--ot-iterations", type=int, default=2, help="Hungarian/Kabsch alternations of the OT"
    )
    p.add_argument(
        "--run-dir", default=None, help="checkpoints, resumed (default runs/bench_molecules_STATE)"
    )
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--sample-batch", type=int, default=1000)
    p.add_argument(
        "--nfe",
        default="20,50,100",
        help="sampling budgets, comma-separated; '' trains only (then resume to evaluate)",
    )
    p.add_argument("--solver", default="dpm_solver_pp", help="positions' solver")
    p.add_argument(
        "--solver-params",
        type=json.loads,
        default={},
        help="a JSON object of the positions' solver's params, e.g. '{\"eta\": 0.3}' "
        "(reverse_sde, dpm_solver_pp_sde: stochastic sampling)",
    )
    p.add_argument(
        "--time-grid",
        default="uniform",
        type=_grid,
        help="sampling grid: one of " + ", ".join(GRIDS) + " (log-SNR grids follow the positions' "
        "path), or a .json file holding the list of times, NFE + 1 of them from 0 to 1",
    )
    p.add_argument(
        "--weights",
        default=None,
        help="score these EMA weights (written by --save-weights) instead of training a run",
    )
    p.add_argument(
        "--save-weights", default=None, help="after training, write the EMA weights to this file"
    )
    p.add_argument(
        "--snapshot-every",
        type=int,
        default=0,
        help="while training, every this many steps write the EMA weights to "
        "RUN_DIR/snapshots/ema_STEP.pt (score one with --weights); 0: none",
    )
    p.add_argument("--no-fcd", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "molecules.json"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.snapshot_every < 0:
        p.error(
            f"--snapshot-every must be 0 (none) or a positive step count, got {args.snapshot_every}"
        )
    try:
        device_type = torch.device(args.device).type
    except RuntimeError as err:
        p.error(f"--device {args.device}: {err}")
    if args.compile is None:
        args.compile = device_type == "cuda"
    parts = Parts(
        time_sampler(args), position_solver(args), discrete_solver(args), train_spec(args)
    )
    args.grid_times = grid_times(args, parts.solver)
    return args, parts


# TrainSpec's fields as this script's flags, for its one-line errors
TRAIN_FLAGS = {
    "steps": "--max-steps",
    "batch_size": "--batch-size",
    "lr": "--lr",
    "lr_warmup": "--warmup",
    "lr_schedule": "--lr-schedule",
    "ema_decay": "--ema-decay",
    "grad_clip": "--grad-clip",
    "skip_spikes": "--skip-spikes",
    "checkpoint_every": "--snapshot-every",
    "compile_mode": "--compile-mode",
    "compile": "--compile",
    "precision": "--precision",
    "draw_ahead": "--draw-ahead",
}


def train_spec(args) -> TrainSpec:
    """The trainer's settings from the flags; a value TrainSpec refuses stops the run in one
    line naming the flag."""
    try:
        return TrainSpec(
            steps=args.max_steps,
            batch_size=args.batch_size,
            lr=args.lr,
            lr_warmup=args.warmup,
            lr_schedule=args.lr_schedule,
            ema_decay=args.ema_decay,
            grad_clip=args.grad_clip or None,
            skip_spikes=args.skip_spikes,
            precision=args.precision,
            compile=args.compile,
            compile_mode=args.compile_mode,
            draw_ahead=args.draw_ahead,
            checkpoint_every=args.snapshot_every or 10**9,
            log_every=100,
        )
    except ValidationError as err:
        first = err.errors()[0]
        if first["loc"]:
            flags = TRAIN_FLAGS.get(str(first["loc"][0]), str(first["loc"][0]))
        else:  # a check across settings: the flags whose settings its message names
            flags = " / ".join(f for k, f in TRAIN_FLAGS.items() if k in first["msg"])
        raise SystemExit(f"{flags}: {first['msg']}") from err


def _component(kind: str, name: str, params, flag: str):
    """The registered `kind` `name` built with the JSON object `params` of `flag`; bad params
    stop the run in one line naming the flag."""
    try:
        if not isinstance(params, dict):
            raise InvalidArgumentError(f"expected a JSON object, got {params!r}")
        return registry.create(kind, name, **params)
    except FlowforgeError as err:
        raise SystemExit(f"{flag}: {err}") from err


def time_sampler(args):
    """The training-time sampler of --time-sampler with --time-sampler-params."""
    return _component(
        "time_sampler", args.time_sampler, args.time_sampler_params, "--time-sampler-params"
    )


def position_solver(args):
    """The positions' solver of --solver with --solver-params; a noise-drawing one only for a
    model trained with the independent coupling (as `flowforge.spec.resolve.coupling_issues`)."""
    solver = _component("solver", args.solver, args.solver_params, "--solver-params")
    if getattr(solver, "draws_noise", False) and not args.no_ot:
        raise SystemExit(
            f"--solver {args.solver}: draws noise and reads the model as a score, which holds "
            "only for a model trained with --no-ot (on QM9 with the equivariant OT: 0-20% "
            "molecule stability, benchmarks/molecules_v12_sweep.json); use a deterministic "
            "solver (unipc, dpm_solver_pp) or --solver-params '{\"eta\": 0}'"
        )
    return solver


def discrete_solver(args):
    """The types' and charges' solver of --discrete-solver with its flags."""
    params = {
        "temperature": args.discrete_temperature,
        "eta": args.discrete_eta,
        "eta_window": tuple(_floats(args.discrete_eta_window)),
    }
    return _component("solver", args.discrete_solver, params, "--discrete-solver")


def train(args, parts: Parts, dataset, enc, model, device) -> dict:
    """Train for `args.train_seconds` from the newest checkpoint; returns the budget used."""
    state = dataset.states()["train"]
    coupling = None if args.no_ot else EquivariantOT(iterations=args.ot_iterations)
    sampler = parts.time_sampler
    if isinstance(enc, ProductEncoding):
        weights = dict(zip(("pos", "atom_type", "charge"), _floats(args.loss_weights), strict=True))
        objective = ProductObjective(
            enc,
            "velocity",
            {k: v.to(device) for k, v in enc.encode(state).items()},
            weights=weights,
            discrete_loss=args.discrete_loss,
            time_sampler=sampler,
            coupling=coupling,
            size_batches=args.size_batches,
            self_condition=args.self_condition,
        )
    else:
        objective = MoleculeObjective(
            CondOT(),
            "velocity",
            enc,
            enc.encode(state).to(device),
            state.mask.to(device),
            time_sampler=sampler,
            coupling=coupling,
            size_batches=args.size_batches,
            self_condition=args.self_condition,
        )
    config = parts.train_spec
    # every process holds the same generator and draws the whole global batch (Trainer, DDP)
    trainer = Trainer(
        model, objective, config, generator=torch.Generator(device).manual_seed(args.seed)
    )
    ckpts = CheckpointDir(run_dir(args) / "checkpoints", keep=2)
    latest = ckpts.load_latest(map_location=device)
    seconds_before = 0.0
    if latest is not None:
        trainer.load_state_dict(latest)
        seconds_before = float(latest.get("train_seconds", 0.0))
    start, first = time.perf_counter(), trainer.step

    snapshots = run_dir(args) / "snapshots"

    def save(step: int) -> None:  # the main process only (Trainer.fit)
        spent = seconds_before + time.perf_counter() - start
        ckpts.save(step, {**trainer.state_dict(), "train_seconds": spent})
        if args.snapshot_every and step % args.snapshot_every == 0:
            budget = {"train_steps": step, "train_seconds_total": spent}
            ema_weights.save_state(
                snapshots / f"ema_{step:08d}.pt", args, enc, trainer.ema.state_dict(), budget
            )

    def log(record: dict) -> None:
        if record["loss"] is not None:
            spikes = f"  spikes skipped {record['spikes']}" if record.get("spikes") else ""
            print(f"step {record['step']}  loss {record['loss']:.4f}{spikes}", flush=True)

    # under torchrun the processes agree on the time budget every min(log_every, max_nonfinite)
    # steps (Trainer.fit's `should_stop`, one collective), so all of them stop after one step
    try:
        summary = trainer.fit(
            on_log=log,
            on_checkpoint=save,
            should_stop=lambda: time.perf_counter() - start >= args.train_seconds,
        )
    except NumericalError as err:
        kept = ckpts.latest()
        also = f" and the EMA snapshots in {snapshots}" if snapshots.is_dir() else ""
        raise SystemExit(
            f"{err}\nkept: {kept}{also} (resume from the checkpoint, or score a snapshot "
            "with --weights)"
            if kept
            else f"{err}\nno checkpoint was written yet (--snapshot-every N writes one)"
        ) from err
    spent = time.perf_counter() - start
    model.load_state_dict(trainer.ema.state_dict())
    model.eval()
    world = trainer.world
    return {
        "train_steps": trainer.step,
        "train_seconds_total": seconds_before + spent,
        "train_seconds_this_run": spent,
        "steps_per_second_this_run": (trainer.step - first) / spent,
        "batch_size": args.batch_size,
        "processes": world.size,
        "last_loss": summary.loss,
        "skipped_steps": {"nonfinite": summary.nonfinite, "spikes": summary.spikes},
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


def _grid(value: str) -> str:
    """--time-grid's value, checked as `flowforge.grids.check_grid_name` checks a spec's."""
    try:
        return check_grid_name(value)
    except InvalidArgumentError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def grid_times(args, solver) -> list[float] | None:
    """The times of a --time-grid file, checked before any training: one NFE, as many times as
    the positions' `solver` takes steps for it plus one, increasing from 0 to 1 (None for a
    named grid)."""
    if not args.time_grid.endswith(".json"):
        return None
    nfes = [int(v) for v in args.nfe.split(",") if v]
    if len(nfes) != 1:
        raise SystemExit(f"--time-grid {args.time_grid}: a grid file needs exactly one --nfe")
    try:
        steps = solver.steps_for_nfe(nfes[0])
    except FlowforgeError as err:
        raise SystemExit(f"--solver {args.solver} --nfe {nfes[0]}: {err}") from err
    try:
        times = torch.tensor(json.loads(Path(args.time_grid).read_text()), dtype=torch.float64)
    except (OSError, ValueError, TypeError) as err:
        raise SystemExit(f"--time-grid {args.time_grid}: not a JSON list of times ({err})") from err
    ok = times.ndim == 1 and len(times) == steps + 1 and bool((times.diff() > 0).all())
    if not ok or times[0] != 0 or times[-1] != 1:
        raise SystemExit(
            f"--time-grid {args.time_grid}: needs {steps + 1} increasing times from 0 to 1 "
            f"({args.solver} takes {steps} steps for NFE {nfes[0]})"
        )
    return times.tolist()


def run_dir(args) -> Path:
    return Path(args.run_dir or f"runs/bench_molecules_{args.state}")


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def evaluate(args, parts: Parts, dataset, enc, model, device, nfe: int) -> dict:
    train = dataset.states()["train"]
    counts = AtomCounts.from_mask(train.mask)
    gen = torch.Generator(device).manual_seed(args.seed + nfe)
    states, seconds, left = [], 0.0, args.samples
    grid = args.time_grid if args.grid_times is None else torch.tensor(args.grid_times)
    solver, discrete = parts.solver, parts.discrete_solver
    while left > 0:
        b = min(args.sample_batch, left)
        n_atoms = counts.sample(b, gen)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        common = dict(
            nfe=nfe,
            max_atoms=train.mask.shape[1],
            generator=gen,
            device=device,
            time_grid=grid,
        )
        if isinstance(enc, ProductEncoding):
            state = sample_product(
                model,
                enc,
                "velocity",
                n_atoms,
                solver=solver,
                discrete_solver=discrete,
                **common,
            )
        else:
            state = sample_molecules(
                model, CondOT(), "velocity", enc, n_atoms, solver=solver, **common
            )
        states.append(state.to("cpu"))
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
        left -= b
    mols = [m for s in states for m in s.to_lists(enc.elements)]
    mols_split = dataset.molecules()
    ctx = MoleculeMetricContext(
        samples=torch.zeros(0),
        test=torch.zeros(0),
        dataset=dataset,
        field=model,
        path=CondOT(),
        prediction="velocity",
        standardizer=Standardizer(torch.zeros(0), torch.ones(0)),
        generator=torch.Generator().manual_seed(0),
        device=device,
        molecules=mols,
        train_smiles=list(mols_split["train"].smiles),
        reference_smiles=list(mols_split["test"].smiles),
    )
    out = {"nfe": nfe, "molecules_per_second": len(mols) / seconds, "sample_seconds": seconds}
    start = time.perf_counter()
    out.update(Stability().compute(ctx))
    out.update(Validity().compute(ctx))
    if not args.no_fcd:
        out.update(FCDMetric().compute(ctx))
    out["metric_seconds"] = time.perf_counter() - start
    print(f"NFE {nfe}: {seconds:.0f} s sampling, {out['metric_seconds']:.0f} s metrics", flush=True)
    return out


def main() -> None:
    args, parts = parse()
    # under torchrun: the process group (NCCL, cuda:LOCAL_RANK each; gloo on the CPU)
    with distributed.process_group(torch.device(args.device)) as device:
        world = distributed.current()
        torch.manual_seed(args.seed)
        dataset = load_dataset(args, world)
        # the charge vocabulary is the data's own (QM9 has 120 atoms of formal charge -2)
        if args.state == "product":
            enc = ProductEncoding(dataset.elements, CondOT(), args.discrete_path, dataset.charges)
        else:
            enc = OneHotEncoding(dataset.elements, charges=dataset.charges)
        params = EGNNParams(
            hidden=args.hidden, layers=args.layers, self_condition=args.self_condition
        )
        model = build_egnn(params, num_features=enc.num_features)
        if isinstance(enc, ProductEncoding):
            model = ProductField(model, *enc.num_states)
        model = model.to(device)
        if args.weights:
            budget = ema_weights.load(args.weights, args, enc, model)
        elif args.train_seconds == 0:
            budget = ema_weights.from_run(run_dir(args) / "checkpoints", model)
        else:
            budget = train(args, parts, dataset, enc, model, device)
        if args.save_weights and world.is_main:
            ema_weights.save(args.save_weights, args, enc, model, budget)
        waiting = waiting_group(world)
        if world.is_main:
            report(args, parts, dataset, enc, model, device, budget)
        if waiting is not None:
            dist.barrier(group=waiting)


def load_dataset(args, world: distributed.World):
    """The dataset, loaded by the main process first (a first QM9 load writes the cache)."""
    params = {"limit": args.limit} if args.data == "qm9" and args.limit else {}
    dataset = None
    for main_turn in (True, False):
        if world.is_main == main_turn:
            dataset = registry.create("dataset", args.data, **params)
            dataset.molecules()
        if world.active:
            dist.barrier()
    return dataset


def waiting_group(world: distributed.World):
    """A gloo group where the other processes wait for the main one's evaluation (None alone).

    A wait on the NCCL group would be a collective that its watchdog aborts after 10 minutes;
    the evaluation takes about 4 minutes for 10,000 molecules at 20/50/100 NFE on an H200 and
    grows with `--samples`.
    """
    if not world.active:
        return None
    return dist.new_group(backend="gloo", timeout=timedelta(hours=12))


def report(args, parts: Parts, dataset, enc, model, device, budget: dict) -> None:
    """Write the JSON with the training budget, then sample and evaluate at each NFE (the JSON
    rewritten after each), and print the table."""
    rows = []
    result = {
        "config": vars(args),
        "training": budget,
        "results": rows,
        "anchors": {
            k: dict(zip(("atom_stability", "mol_stability", "validity"), v, strict=True))
            for k, v in ANCHORS.items()
        },
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    for n in (int(v) for v in args.nfe.split(",") if v.strip()):
        rows.append(evaluate(args, parts, dataset, enc, model, device, n))
        Path(args.out).write_text(json.dumps(result, indent=2))
    label = f"flowforge EGNN {args.state}{'' if args.no_ot else ' + eq-OT'}"
    trained = f"{budget['train_steps']} steps in {budget['train_seconds_total']:.0f} s"
    if "processes" in budget:
        trained += f" (this run: {budget['processes']} process(es), global batch {args.batch_size})"
    else:
        trained += f", EMA weights of {budget.get('weights_file') or budget['checkpoint']}"
    print(
        f"\nQM9 ({args.data}), {args.samples} samples, solver {args.solver}"
        f"{' + ' + args.discrete_solver if args.state == 'product' else ''}; trained {trained}"
    )
    head = (
        f"{'method':<34}{'NFE':>6}{'atom%':>8}{'mol%':>8}{'valid%':>8}{'VxU%':>8}"
        f"{'novel%':>8}{'FCD':>8}{'mol/s':>9}"
    )
    print(head)
    for r in rows:
        print(
            f"{label:<34}{r['nfe']:>6}"
            f"{100 * r['atom_stability']:>8.1f}{100 * r['mol_stability']:>8.1f}"
            f"{100 * r['validity']:>8.1f}{100 * r['valid_and_unique']:>8.1f}"
            f"{100 * r.get('novelty', float('nan')):>8.1f}{r.get('fcd', float('nan')):>8.2f}"
            f"{r['molecules_per_second']:>9.1f}"
        )
    for name, (a, m, v) in ANCHORS.items():
        print(f"{name:<34}{1000:>6}{a:>8.1f}{m:>8.1f}{v:>8.1f}{'':>8}{'':>8}{'':>8}{'':>9}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
