"""A bounded cache of captured solves, so that repeated `sample(..., cuda_graph=True)` replays.

The key says everything a captured graph has baked in: the identity of the field, path, solver
and guidance objects, the prediction kind, nfe, dtypes, and the structure, shapes, dtypes and
devices of the inputs (`flowforge.graph.state.flatten`). Values that only flow through tensors
(x_init, the grid's times, per-sample t_span, the solver state) are not part of it: they are
copied into the static buffers on every call.

Objects that appear in a key by identity are kept alive by their entry, so an id is never
reused while its graph exists. Each entry holds one graph's private memory pool (about the peak
memory of one solve); `clear_cache()` frees them all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from flowforge.errors import InvalidArgumentError

MAX_ENTRIES = 8


@dataclass
class _Entry:
    value: Any
    keepalive: tuple[Any, ...]


class GraphCache:
    """Least-recently-used map from a key to a captured solve, at most `max_entries` of them.

    `hits` and `captures` count lookups that found an entry and entries added.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES):
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise InvalidArgumentError(f"max_entries must be a positive integer, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self.hits = 0
        self.captures = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Any | None:
        """The value stored under `key` (marking it recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.value

    def put(self, key: Hashable, value: Any, keepalive: tuple[Any, ...] = ()) -> Any:
        """Store `value`, keeping `keepalive` objects alive with it; evicts the oldest entry."""
        self._entries[key] = _Entry(value, keepalive)
        self._entries.move_to_end(key)
        self.captures += 1
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value

    def values(self) -> list[Any]:
        """Stored values, least recently used first."""
        return [e.value for e in self._entries.values()]

    def clear(self) -> None:
        """Drop every entry (their graphs and memory pools are freed when unreferenced)."""
        self._entries.clear()


CACHE = GraphCache()


def clear_cache() -> None:
    """Free every captured sampling graph held by `flowforge.sample(..., cuda_graph=True)`."""
    CACHE.clear()
