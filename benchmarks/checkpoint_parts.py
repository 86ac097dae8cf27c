"""Carry a training checkpoint through a channel that limits file sizes, e.g. the GPU machine's
returned files (16 MiB each): `pack` writes a run's newest checkpoint as parts of at most
`--part-mib` MiB, with the optimizer's moment tensors stored in bfloat16 (relative rounding
2^-9, well inside the noise of Adam's normalised update) so the parts are a quarter smaller;
`unpack` checks the parts against their manifest and writes a checkpoint the run resumes from.

    python benchmarks/checkpoint_parts.py pack runs/mol/checkpoints $OUT --part-mib 15
    python benchmarks/checkpoint_parts.py unpack parts/ runs/mol/checkpoints
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from pathlib import Path

import torch

from flowforge.training.checkpoint import CheckpointDir

MOMENTS = ("exp_avg", "exp_avg_sq")


def _moments(state: dict, dtype: torch.dtype) -> None:
    """Cast the optimizer's moment tensors in `state` to `dtype`, in place."""
    for slot in state["optimizer"]["state"].values():
        for key in MOMENTS:
            if key in slot:
                slot[key] = slot[key].to(dtype)


def pack(run: Path, out: Path, part_mib: float) -> list[Path]:
    """The newest checkpoint in `run` as `ckpt_STEP.partNN` files plus `ckpt_STEP.json`."""
    state = CheckpointDir(run).load_latest()
    if state is None:
        raise SystemExit(f"no checkpoint in {run}")
    _moments(state, torch.bfloat16)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    size, step = int(part_mib * 2**20), int(state["step"])
    stem = f"ckpt_{step:08d}"
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, start in enumerate(range(0, len(data), size)):
        parts.append(out / f"{stem}.part{i:02d}")
        parts[-1].write_bytes(data[start : start + size])
    manifest = {"step": step, "parts": [p.name for p in parts]}
    manifest["sha256"] = hashlib.sha256(data).hexdigest()
    (out / f"{stem}.json").write_text(json.dumps(manifest))
    return parts


def unpack(parts: Path, run: Path) -> Path:
    """Join the newest packed checkpoint in `parts` into `run` (a `CheckpointDir`)."""
    manifests = sorted(parts.glob("ckpt_*.json"))
    if not manifests:
        raise SystemExit(f"no ckpt_*.json manifest in {parts}")
    manifest = json.loads(manifests[-1].read_text())
    data = b"".join((parts / name).read_bytes() for name in manifest["parts"])
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        raise SystemExit(f"the parts of {manifests[-1].name} do not match its checksum")
    state = torch.load(io.BytesIO(data), weights_only=True)
    _moments(state, torch.float32)
    return CheckpointDir(run).save(manifest["step"], state)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["pack", "unpack"])
    p.add_argument("source", type=Path, help="pack: checkpoint directory; unpack: parts")
    p.add_argument("dest", type=Path, help="pack: parts directory; unpack: checkpoint directory")
    p.add_argument("--part-mib", type=float, default=15.0)
    args = p.parse_args()
    if args.action == "pack":
        for part in pack(args.source, args.dest, args.part_mib):
            print(part, part.stat().st_size)
    else:
        print(unpack(args.source, args.dest))


if __name__ == "__main__":
    main()
