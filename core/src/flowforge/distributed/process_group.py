"""Starting and ending the process group: from `torchrun`'s environment, or spawned here.

`torchrun --nproc_per_node=N -m flowforge run spec.yaml` starts N copies of the CLI with `RANK`,
`WORLD_SIZE`, `LOCAL_RANK` and the rendezvous address in their environment; `process_group`
turns that into the default process group, NCCL for CUDA devices (one GPU per process,
`cuda:LOCAL_RANK`) and gloo on the CPU. Without those variables it does nothing, so one process
is the default. `spawn` starts a group of processes on this machine from Python (tests, benchmarks).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from flowforge.errors import InvalidArgumentError


def backend_for(device: torch.device) -> str:
    """`nccl` for CUDA devices, `gloo` otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def launched() -> bool:
    """Whether this process is one of several started by `torchrun` (`WORLD_SIZE` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def env_rank() -> int:
    """This process's rank as `torchrun` set it (0 when not launched by it)."""
    return int(os.environ.get("RANK", "0"))


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[torch.device]:
    """Join the process group `torchrun` describes for the block; yields this process's device.

    On CUDA each process takes the GPU `LOCAL_RANK` (NCCL); on the CPU the backend is gloo. The
    group is left at the end of the block. Outside `torchrun`, or when a group exists already
    (`spawn`, or the caller's own), `device` is yielded unchanged and nothing is left.

    >>> with process_group(torch.device("cuda")) as device:   # cuda:LOCAL_RANK under torchrun
    ...     train(model.to(device))
    """
    if not launched() or dist.is_initialized():
        yield device
        return
    if device.type == "cuda":
        local, visible = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
        if local >= visible:
            raise InvalidArgumentError(
                f"torchrun started process LOCAL_RANK={local}, but only {visible} GPU(s) are "
                f"visible; use --nproc_per_node={visible} or fewer (one GPU per process)"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    device_id = device if device.type == "cuda" else None
    dist.init_process_group(backend_for(device), device_id=device_id)
    try:
        yield device
    finally:
        dist.destroy_process_group()


def spawn(fn: Callable[..., Any], size: int, *args: Any, backend: str = "gloo") -> None:
    """Run `fn(*args)` in `size` new processes joined in a process group on this machine.

    `fn` must be importable (a module-level function); the processes find their rank with
    `flowforge.distributed.current()`. Raises if any process fails.

    >>> spawn(train_and_save, 2, out_dir)       # two gloo processes on the CPU
    """
    if size < 1:
        raise InvalidArgumentError(f"spawn needs at least one process, got {size}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_entry, args=(fn, size, port, backend, args), nprocs=size, join=True)


def _entry(rank: int, fn: Callable[..., Any], size: int, port: int, backend: str, args) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(size),
    )
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, rank=rank, world_size=size)
    fn(*args)
    # every process reaches teardown before any tears down: a gloo peer whose connection closes
    # under a pending operation aborts the process (seen once under load in the DDP tests). On an
    # error there is no teardown: `mp.spawn` reports it and ends the other processes.
    dist.barrier()
    dist.destroy_process_group()
