"""The images benchmark's state: one file per trained model, so that each phase can run in its own
process (one GPU call each) and resume from the files of the phases before it.

`<name>.pt` is `{"weights": the model's (EMA) weights, saved from the host, "record": how to
rebuild the model, the data it was trained on, its training (wall-clock budget, steps, seconds,
loss log)}`, only tensors and plain values, so it loads with `torch.load(weights_only=True)`;
each phase also writes `<phase>.json`, its models' records and file sizes, to read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from flowforge.errors import InvalidArgumentError

# which phase writes each model's file, for the message when one is missing
WRITTEN_BY = {
    "flowforge": "train-flowforge",
    "diffusers": "train-diffusers",
    "reflow": "fewstep",
    "distill_4": "fewstep",
    "distill_2": "fewstep",
    "distill_1": "fewstep",
}


def save(directory: Path, name: str, model: torch.nn.Module, record: dict[str, Any]) -> int:
    """Write `model`'s weights with `record` to `directory/<name>.pt`; returns its bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = directory / f"{name}.pt"
    torch.save({"weights": weights, "record": json.loads(json.dumps(record))}, path)
    return path.stat().st_size


def load(
    directories: Sequence[Path], name: str, data: dict[str, Any], device: torch.device
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """`(weights, record)` of model `name` from the first of `directories` that has it; the
    model must have been trained on the same split (`data`, the dataset's record)."""
    found = [d / f"{name}.pt" for d in directories if (d / f"{name}.pt").is_file()]
    if not found:
        where = " or ".join(str(d) for d in dict.fromkeys(directories))
        raise InvalidArgumentError(
            f"{where} has no {name}.pt: run --phase {WRITTEN_BY[name]} first and give its "
            "files to this phase by --state-dir"
        )
    state = torch.load(found[0], map_location=device, weights_only=True)
    record = {**state["record"], "file_bytes": found[0].stat().st_size}
    if record.get("data") != data:
        raise InvalidArgumentError(
            f"{found[0]} was trained on other data ({record.get('data', {}).get('source')}) "
            "than this run uses: give --tiny to every phase or to none, one --state-dir each"
        )
    return state["weights"], record


def write_log(directory: Path, phase: str, records: dict[str, dict[str, Any]]) -> Path:
    """`directory/<phase>.json`: the records of the models this phase wrote, with file sizes."""
    sizes = {f"{n}.pt": (directory / f"{n}.pt").stat().st_size for n in records}
    path = directory / f"{phase}.json"
    path.write_text(json.dumps({"files": sizes, "models": records}, indent=2) + "\n")
    return path


def sizes(directory: Path) -> dict[str, int]:
    """Bytes of every file in `directory`, by name."""
    return {p.name: p.stat().st_size for p in sorted(directory.iterdir()) if p.is_file()}
