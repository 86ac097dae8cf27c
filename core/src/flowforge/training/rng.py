"""Random-number state: derived seeds for independent streams, and capture/restore for resume.

A resumed run is bit-exact with an uninterrupted one only if every RNG it touches continues from
where it stopped; `capture` stores them all as tensors and plain Python values, so checkpoints
load with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
import torch

from flowforge.errors import CheckpointError


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named `stream`, fixed by `seed`: streams are independent."""
    digest = hashlib.sha256(f"{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(seed: int, stream: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A `torch.Generator` on `device` seeded for `stream` (see `derive_seed`)."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, stream))


def capture(gen: torch.Generator) -> dict[str, Any]:
    """The state of `gen`, the global torch (CPU and CUDA), numpy and Python RNGs."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "generator": gen.get_state(),
        "generator_device": gen.device.type,
        "torch": torch.get_rng_state(),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore(gen: torch.Generator, state: dict[str, Any]) -> None:
    """Set `gen` and the global RNGs to a state returned by `capture`."""
    if not isinstance(state, dict):
        raise CheckpointError(f"the checkpoint's RNG state is invalid (a {type(state).__name__})")
    saved = state.get("generator_device", gen.device.type)
    if saved != gen.device.type:
        raise CheckpointError(
            f"the checkpoint was trained on {saved!r} and cannot continue on {gen.device.type!r}: "
            f"its random streams belong to that device. Resume with --device {saved}, or start "
            "a new run."
        )
    try:
        gen.set_state(_cpu(state["generator"]))
        torch.set_rng_state(_cpu(state["torch"]))
        np_state = state["numpy"]
        np.random.set_state(
            {
                "bit_generator": "MT19937",
                "state": {
                    "key": _cpu(np_state["key"]).numpy().astype(np.uint32),
                    "pos": np_state["pos"],
                },
                "has_gauss": np_state["has_gauss"],
                "gauss": np_state["gauss"],
            }
        )
        random.setstate(_as_tuple(state["python"]))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([_cpu(s) for s in state["cuda"]])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"the checkpoint's RNG state is invalid ({type(err).__name__}: {err})"
        ) from None


def _cpu(value: Any) -> Any:
    """RNG states are CPU byte tensors, whatever device a checkpoint was loaded onto (a
    `map_location` of "cuda" moves them there)."""
    return value.cpu() if isinstance(value, torch.Tensor) else value


def _as_tuple(value: Any) -> Any:
    """`random.setstate` needs nested tuples; a checkpoint round trip may turn them into lists."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuple(v) for v in value)
    return value


def seed_everything(seed: int) -> None:
    """Seed the global torch, numpy and Python RNGs (model initialisation uses them)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
