"""CUDA-graph sampling: capture a whole fixed-step solve once, replay it on later calls.

`flowforge.sample(..., cuda_graph=True)` uses these pieces; `docs/gpu.md` is the user's guide.
`forbid_host_sync` lets a CPU test prove that code never reads device values on the host.
"""

from flowforge.graph.cache import CACHE, GraphCache, clear_cache
from flowforge.graph.capture import CapturedCall
from flowforge.graph.host_sync import forbid_host_sync
from flowforge.graph.state import flatten, identity, map_tensors

__all__ = [
    "CACHE",
    "CapturedCall",
    "GraphCache",
    "clear_cache",
    "flatten",
    "forbid_host_sync",
    "identity",
    "map_tensors",
]
