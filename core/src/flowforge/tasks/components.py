"""Build the components a spec names, with errors located at their place in the spec."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from flowforge import registry
from flowforge.errors import FlowforgeError, SpecError
from flowforge.paths.base import AffinePath
from flowforge.spec.models import ComponentRef, ModelSpec


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


def build_model(ref: ModelSpec, data_shape: tuple[int, ...], device: torch.device) -> nn.Module:
    """The spec's `model` for data of `data_shape`, on `device` (untrained)."""
    model = build("model", ref, "model", data_shape=data_shape)
    if not isinstance(model, nn.Module):
        msg = f"model {ref.name!r} did not build an nn.Module"
        raise SpecError([("model.name", msg)])
    return model.to(device)


def guidance_needs(refs: Sequence[ComponentRef]) -> list[tuple[str, ...]]:
    """What each guidance of a spec's list still lacks once built (`Guidance.needs`), in order.

    Posterior samplers need a measurement, which only the `inverse_problem` task binds; tasks
    check this at validation time. A guidance that cannot be built here needs nothing known.
    """
    out = []
    for ref in refs:
        try:
            needs = getattr(registry.get("guidance", ref.name).build(ref.params), "needs", ())
        except FlowforgeError:
            needs = ()
        out.append(tuple(needs))
    return out
