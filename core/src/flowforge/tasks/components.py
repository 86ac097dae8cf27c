"""Build the components a spec names, with errors located at their place in the spec."""

from __future__ import annotations

from typing import Any

from flowforge import registry
from flowforge.errors import SpecError
from flowforge.paths.base import AffinePath
from flowforge.spec.models import ComponentRef


def build(kind: str, ref: ComponentRef, where: str, **context: Any) -> Any:
    """The registered `kind` component `ref` names, built from its params and `context`.

    A bad name or parameter raises `SpecError` located under `where` (e.g. `sample.solver`).
    """
    try:
        return registry.get(kind, ref.name).build(ref.params, **context)
    except SpecError as err:
        raise err.prefixed(where) from None


def build_affine_path(ref: ComponentRef) -> AffinePath:
    """The spec's `path`, which these tasks need to be affine Gaussian (alpha/sigma)."""
    path = build("path", ref, "path")
    if not isinstance(path, AffinePath):
        raise SpecError(
            [
                (
                    "path.name",
                    f"path {ref.name!r} is not an affine Gaussian path; "
                    "training and sampling here need alpha(t) and sigma(t)",
                )
            ]
        )
    return path
