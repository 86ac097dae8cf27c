"""The EMA weights of a molecules benchmark run, with its training budget and architecture, as one
file about a quarter of a checkpoint (no optimizer state, no raw weights): `benchmarks/molecules.py
--save-weights F` writes it after training, `--weights F` scores it without a run directory, so a
model trained on the GPU can be scored or diagnosed on any machine.

`python benchmarks/ema_weights.py average OUT F1 F2 ...` writes the mean of several such files
(snapshots of one run, `--snapshot-every`): a post-hoc average over a window longer than the
EMA's."""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import torch

from flowforge.errors import CheckpointError
from flowforge.training.checkpoint import CheckpointDir, load_checkpoint, save_checkpoint
from flowforge.training.weight_average import mean_weights

FORMAT = "flowforge-molecules-ema/1"
ARCHITECTURE = ("state", "discrete_path", "hidden", "layers", "self_condition")
# what a file written before a flag existed was trained with
BEFORE = {"self_condition": False}


def architecture(args, enc) -> dict:
    """What a weights file must agree on with the run that loads it."""
    arch = {k: getattr(args, k) for k in ARCHITECTURE}
    arch["elements"] = list(enc.elements)
    arch["charges"] = [int(c) for c in getattr(enc, "charges", ())]
    return arch


def save(path: str | Path, args, enc, model: torch.nn.Module, budget: dict) -> None:
    """Write `model`'s weights (the EMA ones after `train`) with `budget` and the architecture."""
    save_state(path, args, enc, model.state_dict(), budget)


def save_state(path: str | Path, args, enc, state: dict, budget: dict) -> None:
    """Write the weights `state` (a state dict) with `budget` and the architecture, atomically
    through `save_checkpoint` (a file cut short by a stopped run is never left under `path`)."""
    state = {k: v.detach().cpu() for k, v in state.items()}
    blob = {"format": FORMAT, "ema": state, "training": budget}
    save_checkpoint(path, {**blob, "architecture": architecture(args, enc)})


def read(path: str | Path) -> dict:
    """The blob of the weights file at `path`, read with `weights_only=True` (it cannot run
    code); an unreadable file or one of another format is refused with one line."""
    try:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise SystemExit(
            f"--weights {path}: not a readable weights file ({type(err).__name__}; it is read "
            "with weights_only=True); write one with --save-weights"
        ) from err
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise SystemExit(f"--weights {path}: not a {FORMAT} file (write one with --save-weights)")
    return blob


def load(path: str | Path, args, enc, model: torch.nn.Module) -> dict:
    """Load the weights at `path` into `model`; returns the training budget they record.

    A file of another format, or one trained with other flags or data, is refused with the flag
    to change.
    """
    blob = read(path)
    wanted, have = {**BEFORE, **blob["architecture"]}, architecture(args, enc)
    for key, value in wanted.items():
        if have.get(key) != value:
            flag = f"--{key.replace('_', '-')}" if key in ARCHITECTURE else f"--data ({key})"
            raise SystemExit(
                f"--weights {path}: trained with {flag} {value}, this run has {have.get(key)}; "
                "pass the flags it was trained with"
            )
    model.load_state_dict(blob["ema"])
    model.eval()
    return {**blob["training"], "weights_file": str(path)}


def average(paths: list[str | Path], out: str | Path) -> dict:
    """Write to `out` the mean of the weights files `paths` (all of one architecture); integer
    buffers are taken from the last file. Returns the training budget written: the last file's,
    with the steps averaged over."""
    if len(paths) < 2:
        raise SystemExit("average: give at least two weights files")
    blobs = [read(p) for p in paths]
    for path, blob in zip(paths[1:], blobs[1:], strict=True):
        if blob["architecture"] != blobs[0]["architecture"]:
            raise SystemExit(
                f"average: {path} has another architecture than {paths[0]} "
                "(average snapshots of one run)"
            )
    try:
        ema = mean_weights([b["ema"] for b in blobs], [str(p) for p in paths])
    except CheckpointError as err:
        raise SystemExit(f"average: {err}") from err
    budget = {
        **blobs[-1]["training"],
        "averaged_steps": [b["training"].get("train_steps") for b in blobs],
    }
    save_checkpoint(out, {**blobs[-1], "ema": ema, "training": budget})
    return budget


def from_run(checkpoints: Path, model: torch.nn.Module) -> dict:
    """Load the EMA weights of the newest checkpoint in `checkpoints` into `model`, without the
    trainer (so a checkpoint from another device loads); returns its training budget."""
    latest = CheckpointDir(checkpoints).latest()
    if latest is None:
        raise SystemExit(f"no checkpoint in {checkpoints}: train first (--train-seconds > 0)")
    state = load_checkpoint(latest, "cpu")
    try:
        model.load_state_dict(state["ema"])
    except RuntimeError as err:
        raise SystemExit(
            f"{latest}: its weights do not fit this model; pass the --hidden, --layers, "
            f"--self-condition, --state and --data it was trained with ({str(err).splitlines()[0]})"
        ) from err
    model.eval()
    return {
        "train_steps": int(state["step"]),
        "train_seconds_total": float(state.get("train_seconds", 0.0)),
        "checkpoint": str(latest),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description="Tools for EMA weights files of benchmarks/molecules.py"
    )
    sub = p.add_subparsers(dest="command", required=True)
    avg = sub.add_parser("average", help="write the mean of several weights files of one run")
    avg.add_argument("out")
    avg.add_argument("files", nargs="+")
    args = p.parse_args(argv)
    budget = average(args.files, args.out)
    print(f"{args.out}: mean of steps {budget['averaged_steps']}")


if __name__ == "__main__":
    main()
