"""Data-parallel runs: the process group under `torchrun`, ranks and shards, collectives, and
sharded sampling whose union equals one process's samples."""

from flowforge.distributed.batches import (
    SeededBatch,
    gather_rows,
    seeded_batches,
    sharded_sample,
)
from flowforge.distributed.process_group import backend_for, env_rank, process_group, spawn
from flowforge.distributed.world import World, current

__all__ = [
    "SeededBatch",
    "World",
    "backend_for",
    "current",
    "env_rank",
    "gather_rows",
    "process_group",
    "seeded_batches",
    "sharded_sample",
    "spawn",
]
