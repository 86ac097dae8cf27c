"""The tensors inside a solver state of any form, and a hashable description of the rest.

A captured graph reads its inputs from fixed addresses, so every tensor that flows into it (the
state, the time grid, the solver state) is copied into a static buffer on each call, and every
non-tensor value it saw is baked in and must be part of the cache key. Solver states are
tuples, lists, dicts, dataclasses or small objects holding tensors (for example a seeded
`BrownianTree` or a slotted `Prediction`), so this module walks all of those, not just pytrees:

    tensors, structure = flatten((x, grid, state))   # structure: hashable, equal iff compatible
    static = map_tensors(state, torch.clone)         # same objects around cloned tensors
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import types
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import Tensor

_PLAIN = (str, int, float, bool, complex, bytes, enum.Enum, torch.dtype, torch.device, type(None))
# Objects that are never taken apart: code, modules, networks, RNGs.
_OPAQUE = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.ModuleType,
    functools.partial,
    type,
    torch.nn.Module,
    torch.Generator,
)


def identity(obj: Any) -> Hashable:
    """A hashable stand-in for `obj` in a cache key.

    Plain values and frozen dataclasses (paths, solvers: stateless configuration) stand for
    themselves, so `"heun"` resolved twice gives the same key; anything else (a model, a
    closure, a guidance object, a generator) stands for its `id`: keep it alive with the entry.
    """
    if isinstance(obj, _PLAIN):
        return obj
    params = getattr(obj, "__dataclass_params__", None)
    if dataclasses.is_dataclass(obj) and params is not None and params.frozen:
        try:
            hash(obj)
        except TypeError:
            pass
        else:
            return (type(obj), obj)
    return (type(obj), id(obj))


def _attributes(obj: Any) -> list[tuple[str, Any]] | None:
    """`(name, value)` of a record's attributes (`__dict__` and `__slots__`), or None if `obj`
    is not a record (a plain value, a container, or something never taken apart)."""
    if isinstance(obj, (*_PLAIN, *_OPAQUE, Tensor, list, tuple, dict)):
        return None
    names = list(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    names = [n for n in names if n not in ("__dict__", "__weakref__")]
    if not names:
        return None
    return [(n, getattr(obj, n)) for n in dict.fromkeys(names) if hasattr(obj, n)]


def flatten(obj: Any, anchors: list[Any] | None = None) -> tuple[list[Tensor], Hashable]:
    """Every distinct tensor in `obj` (in a fixed order) and a hashable description of the rest.

    The description holds each tensor's shape, dtype and device, which tensors are the same
    object, the containers' types and keys, and every other value by `identity`. Objects that
    `identity` describes by their `id` are appended to `anchors`: keep them alive as long as
    the description is in use, so that no other object can take their id.
    """
    tensors: list[Tensor] = []
    index: dict[int, int] = {}
    active: set[int] = set()

    def walk(o: Any) -> Hashable:
        if isinstance(o, Tensor):
            if id(o) in index:
                return ("same", index[id(o)])
            index[id(o)] = len(tensors)
            tensors.append(o)
            return ("tensor", tuple(o.shape), o.dtype, o.device)
        if id(o) in active:  # a reference cycle: stop at the object's identity
            return leaf(o)
        active.add(id(o))
        try:
            if isinstance(o, list | tuple):
                return (type(o), tuple(walk(c) for c in o))
            if isinstance(o, dict):
                return (type(o), tuple((k, walk(v)) for k, v in o.items()))
            attributes = _attributes(o)
            if attributes is not None:
                return (type(o), tuple((k, walk(v)) for k, v in attributes))
            return leaf(o)
        finally:
            active.discard(id(o))

    def leaf(o: Any) -> Hashable:
        key = identity(o)
        if anchors is not None and not isinstance(o, _PLAIN):
            anchors.append(o)
        return key

    return tensors, walk(obj)


def map_tensors(obj: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """A copy of `obj` with every tensor `t` replaced by `fn(t)`; shared tensors stay shared.

    Containers, and records that hold tensors, are shallow-copied around the new tensors
    (frozen and slotted dataclasses too); everything else is shared with `obj`.
    """
    memo: dict[int, Any] = {}

    def walk(o: Any) -> Any:
        if id(o) in memo:
            return memo[id(o)]
        if isinstance(o, Tensor):
            new = fn(o)
        elif isinstance(o, list | tuple | dict):
            new = container(o)
        elif (attributes := _attributes(o)) is not None:
            memo[id(o)] = o  # a reference cycle back to `o` keeps `o`
            changed = {k: w for k, v in attributes if (w := walk(v)) is not v}
            new = copy.copy(o) if changed else o
            for k, w in changed.items():
                object.__setattr__(new, k, w)
        else:
            new = o
        memo[id(o)] = new
        return new

    def container(o: list | tuple | dict) -> Any:
        if isinstance(o, dict):
            new = copy.copy(o)
            for k, v in o.items():
                new[k] = walk(v)
            return new
        items = [walk(c) for c in o]
        if isinstance(o, list):
            return type(o)(items)
        return type(o)(*items) if hasattr(o, "_fields") else type(o)(items)

    return walk(obj)
