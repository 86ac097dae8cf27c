"""Detect host synchronisation on the CPU: reads of device values that would stall a GPU solve.

On CUDA, `x.item()`, `bool(x)` (an `if` on a tensor), `x.tolist()`, `x.cpu()`, `x.nonzero()`,
boolean-mask indexing and `torch.tensor(host_data)` make the host wait for the GPU (or copy
through pageable memory), which serialises the launch queue and makes the code impossible to
capture in a CUDA graph. `torch.cuda.set_sync_debug_mode("error")` finds these on a GPU; this
guard finds them on any device, so a CPU test can prove that a solver step never syncs.

    with forbid_host_sync():
        x, state = solver.step(f, x, t0, t1, state, info)   # raises on x.item(), if x > 0: ...

Two layers catch what each sees: a `TorchFunctionMode` for Python-level reads that dispatch no
operator on the CPU (`tolist`, `numpy`, `cpu`, `.to("cpu")`), and a `TorchDispatchMode` for the
operators every other form ends in (`_local_scalar_dense` behind `item`/`bool`/`int`/`float`,
`nonzero`, data-dependent shapes, `lift_fresh` behind `torch.tensor(...)`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from flowforge.errors import InvalidArgumentError

FIX = (
    "Keep values on the device: torch.where instead of an `if` on a tensor, per-sample (B,) "
    "tensors or Python constants instead of floats read from tensors, and compute anything that "
    "needs the host once in Solver.init (before the loop)."
)

# Python-level reads that copy to the host without dispatching an operator on CPU tensors.
_HOST_METHODS = {
    Tensor.tolist: "Tensor.tolist() copies the values to the host",
    Tensor.numpy: "Tensor.numpy() copies the values to the host",
    Tensor.cpu: "Tensor.cpu() copies the values to the host",
}

_aten = torch.ops.aten
# Operators that wait for the device: a value or an output size decided by device data.
_SYNC_OPS = {
    _aten._local_scalar_dense.default: "reads a tensor value on the host "
    "(item(), bool(), int(), float(), an `if` or `while` on a tensor)",
    _aten.nonzero.default: "nonzero() has an output size that depends on the data",
    _aten.masked_select.default: "masked_select() has an output size that depends on the data",
    _aten._unique2.default: "unique() has an output size that depends on the data",
    _aten.unique_dim.default: "unique() has an output size that depends on the data",
    _aten.unique_consecutive.default: "unique_consecutive() has a data-dependent output size",
    _aten.repeat_interleave.Tensor: "repeat_interleave(tensor) has a data-dependent output size",
    _aten.bincount.default: "bincount() reads the largest value on the host",
    _aten.equal.default: "torch.equal() returns a Python bool",
    _aten.is_nonzero.default: "reads a tensor value on the host (bool())",
    _aten.lift_fresh.default: "torch.tensor()/as_tensor()/new_tensor() of host data copies it "
    "to the device through pageable memory (use Python scalars, torch.full or full_like)",
}
_MASK_INDEX_OPS = {_aten.index.Tensor, _aten.index_put.default, _aten.index_put_.default}
# depth of `cpu_only` blocks: their host reads are of CPU data by construction, never a sync
_cpu_only_depth = 0


def _fail(what: str) -> None:
    raise InvalidArgumentError(f"host synchronisation inside the per-step region: {what}. {FIX}")


def _to_host(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a `Tensor.to(...)` call names the CPU as its destination."""
    for a in (*args[1:], kwargs.get("device")):
        if isinstance(a, str | torch.device) and torch.device(a).type == "cpu":
            return True
    return False


class _HostReadFunctions(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _cpu_only_depth:
            return func(*args, **kwargs)
        if func in _HOST_METHODS:
            _fail(_HOST_METHODS[func])
        if func is Tensor.to and _to_host(args, kwargs):
            _fail("Tensor.to('cpu') copies the values to the host")
        return func(*args, **kwargs)


class _HostReadOps(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _cpu_only_depth:
            return func(*args, **kwargs)
        if func in _SYNC_OPS:
            _fail(f"{func.name()} {_SYNC_OPS[func]}")
        if func in _MASK_INDEX_OPS and any(
            isinstance(i, Tensor) and i.dtype in (torch.bool, torch.uint8) for i in args[1]
        ):
            _fail(f"{func.name()} with a boolean mask turns the mask into indices on the host")
        return func(*args, **kwargs)


@contextmanager
def forbid_host_sync() -> Iterator[None]:
    """Raise `InvalidArgumentError` on any host read of tensor values inside the block.

    Works on every device (the check is on the operations, not on timing), so CPU tests can hold
    solver steps to the no-sync rule that CUDA graph capture needs.
    """
    with _HostReadFunctions(), _HostReadOps():
        yield


@contextmanager
def cpu_only() -> Iterator[None]:
    """Mark a block that runs only when its tensors are on the CPU (a CPU fast path, taken after
    a `device.type == "cpu"` test): its host reads cannot stall a GPU, so the guard lets them
    through. Never wrap code that also runs on a GPU."""
    global _cpu_only_depth
    _cpu_only_depth += 1
    try:
        yield
    finally:
        _cpu_only_depth -= 1
