"""Where components sit in a spec and which registry kind each names: one table for all users.

Stage two of validation and the JSON Schema generator both read `COMPONENT_SECTIONS`, so a new
component section is added here once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from flowforge.spec.keys import model_at
from flowforge.spec.models import ComponentRef, ExperimentSpec

EVERY = "*"  # a path part standing for every item of a list


@dataclass(frozen=True)
class Section:
    """A component section: its registry `kind` and its `path` of keys from the spec's top."""

    kind: str
    path: tuple[str, ...]

    @property
    def model(self) -> type[ComponentRef]:
        """The structure model of the section (`ComponentRef`, or `ModelSpec` for `model`)."""
        found = model_at(ExperimentSpec, [0 if p == EVERY else p for p in self.path])
        if found is None or not issubclass(found, ComponentRef):
            raise TypeError(f"spec section {'.'.join(self.path)} is not a component reference")
        return found

    def find(self, root: Any) -> Iterator[tuple[tuple[str | int, ...], Any]]:
        """`(location, value)` of each occurrence in a validated spec or a raw mapping.

        Missing keys and values of the wrong shape are skipped: stage one reports those.
        """
        yield from _walk(root, self.path, ())


def _walk(node: Any, path: tuple[str, ...], loc: tuple[str | int, ...]):
    if not path:
        yield loc, node
        return
    head, rest = path[0], path[1:]
    if head == EVERY:
        if isinstance(node, list):
            for i, item in enumerate(node):
                yield from _walk(item, rest, (*loc, i))
        return
    if isinstance(node, dict):
        value = node.get(head)
    elif isinstance(node, BaseModel):
        value = getattr(node, head, None)
    else:
        return
    if value is not None:
        yield from _walk(value, rest, (*loc, head))


COMPONENT_SECTIONS = (
    Section("task", ("task",)),
    Section("dataset", ("data",)),
    Section("path", ("path",)),
    Section("model", ("model",)),
    Section("time_sampler", ("train", "time_sampler")),
    Section("coupling", ("train", "coupling")),
    Section("solver", ("train", "reflow", "solver")),
    Section("solver", ("train", "distill", "teacher_solver")),
    Section("solver", ("sample", "solver")),
    Section("guidance", ("guidance", EVERY)),
    Section("metric", ("evaluate", "metrics", EVERY)),
    Section("operator", ("operator",)),
)
