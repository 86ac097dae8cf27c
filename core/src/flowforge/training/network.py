"""How the trainer calls the model: optionally compiled, optionally under bfloat16 autocast.

Objectives call the network, never the module directly, so precision and compilation are set
in one place. Under `bf16` the matrix products run in bfloat16 while the weights, optimizer state
and every loss computation stay in float32: the prediction is cast back to the input's dtype
before it meets its target.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from flowforge.errors import InvalidArgumentError

PRECISIONS = ("float32", "bf16")


def check_bf16(device: torch.device) -> None:
    """Raise if bfloat16 autocast cannot run on `device` (names `train.precision` and the fix)."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InvalidArgumentError(
            f"train.precision: bf16 needs a GPU with bfloat16 support, and {device} has none; "
            "use precision: float32"
        )
    if device.type not in ("cuda", "cpu"):
        raise InvalidArgumentError(
            f"train.precision: bf16 autocast is supported here on CUDA and CPU, not on "
            f"{device.type}; use precision: float32"
        )


class Network:
    """`(x_t, t, **kwargs) -> prediction` of `model`, in `x_t`'s dtype (float32 for tokens).

    `precision`: `float32` calls the model as it is; `bf16` runs it under
    `torch.autocast(dtype=torch.bfloat16)` on the device of its input. `compile`: call
    `torch.compile(model, mode=mode)` instead (same weights; `model.state_dict()` is
    unchanged); mode "reduce-overhead" replays its passes as CUDA graphs.

    >>> net = Network(model, "bf16", compile=False)
    >>> pred = net(x_t, t)          # float32, computed in bfloat16
    """

    def __init__(
        self,
        model: nn.Module,
        precision: str = "float32",
        compile: bool = False,
        mode: str = "default",
    ):
        if precision not in PRECISIONS:
            raise InvalidArgumentError(
                f"train.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
            )
        self.model = model
        self.precision = precision
        self.module = torch.compile(model, mode=mode) if compile else model

    def __call__(self, x_t: Tensor, t: Tensor, **kwargs: Any) -> Tensor:
        if self.precision == "float32":
            return self.module(x_t, t, **kwargs)
        with torch.autocast(device_type=t.device.type, dtype=torch.bfloat16):
            out = self.module(x_t, t, **kwargs)
        return _restore(out, x_t)


def _restore(out: Any, x_t: Any) -> Any:
    """An autocast output back in its state's dtype: a tensor in `x_t`'s floating dtype, float
    logits of token states (int64) in float32; structured states (dicts of tensors, as the
    product paths use) entry by entry."""
    if isinstance(out, dict):
        return {
            k: _restore(v, x_t.get(k) if isinstance(x_t, dict) else None) for k, v in out.items()
        }
    if not isinstance(out, Tensor) or not out.is_floating_point():
        return out
    floating = isinstance(x_t, Tensor) and x_t.is_floating_point()
    return out.to(x_t.dtype if floating else torch.float32)
