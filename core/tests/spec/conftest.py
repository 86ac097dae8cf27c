"""A registry of core plus small toy components, so spec tests do not depend on other plugins.

The toys cover every section kind and every shape of params: a dataclass, a pydantic model,
no params at all, and a required parameter.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

import flowforge
from flowforge import registry
from flowforge.testing import FakeEntryPoint, plugin_module


@dataclass(frozen=True)
class ToyBlobs:
    """Gaussian blobs."""

    n: Annotated[int, Field(ge=1)] = 128
    std: Annotated[float, Field(gt=0, le=10)] = 0.5
    centers: Annotated[int, Field(ge=1)] = 3


class ToyMLPParams(BaseModel):
    """Parameters of the toy network."""

    model_config = ConfigDict(extra="forbid")
    hidden: Annotated[int, Field(ge=1)] = 32
    depth: Annotated[int, Field(ge=1, le=8)] = 2
    activation: Literal["relu", "silu"] = "silu"


@dataclass(frozen=True)
class ToyCFG:
    """Scaled guidance."""

    scale: Annotated[float, Field(ge=0, le=100)] = 1.5


@dataclass(frozen=True)
class ToyTarget:
    """Guidance towards a target value, which must be given."""

    target: Annotated[float, Field(ge=-1e6, le=1e6)]


@dataclass(frozen=True)
class ToyMean:
    """Error of the sample mean."""


@dataclass(frozen=True)
class ToyEnergy:
    """Energy distance over random projections."""

    projections: Annotated[int, Field(ge=1)] = 8


def _toy_ring():
    """A ring of points (no parameters)."""


def _build_mlp(params: ToyMLPParams):
    return params


@flowforge.hookimpl
def register_datasets(register):
    register("toy_blobs", ToyBlobs)
    register("toy_ring", _toy_ring)


@flowforge.hookimpl
def register_models(register):
    register("toy_mlp", _build_mlp, params=ToyMLPParams)


@flowforge.hookimpl
def register_guidance(register):
    register("toy_cfg", ToyCFG)
    register("toy_target", ToyTarget)


@flowforge.hookimpl
def register_metrics(register):
    register("toy_mean", ToyMean)
    register("toy_energy", ToyEnergy)


TOYS = plugin_module(
    "flowforge_toys",
    register_datasets=register_datasets,
    register_models=register_models,
    register_guidance=register_guidance,
    register_metrics=register_metrics,
)

VALID = {
    "name": "toy-run",
    "seed": 3,
    "data": {"name": "toy_blobs", "params": {"n": 64}},
    "path": "vp_linear",
    "model": {"name": "toy_mlp", "params": {"hidden": 16}, "prediction": "velocity"},
    "train": {"steps": 10, "lr": 0.01},
    "sample": {"solver": "heun", "nfe": 9, "t_span": [0.0, 0.99]},
    "guidance": [{"name": "toy_cfg", "params": {"scale": 2.0}}],
    "evaluate": {"metrics": ["toy_mean", {"name": "toy_energy", "params": {"projections": 4}}]},
    "output": {"dir": "runs", "plots": False},
}


@pytest.fixture
def valid_doc() -> dict:
    """A valid spec document using every toy kind (a fresh copy per test)."""
    return copy.deepcopy(VALID)


@pytest.fixture(scope="session")
def toy_registry() -> registry.Registry:
    """Core's components plus the toys (no installed plugin is loaded)."""
    return registry.load(allowed=None, entry_points=[FakeEntryPoint("toys", TOYS)])


@pytest.fixture
def toys(toy_registry: registry.Registry) -> Iterator[registry.Registry]:
    """Make the toy registry current during the test."""
    with registry.using(toy_registry) as reg:
        yield reg


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[object], Path]:
    """Write a document (YAML-dumped) or raw text (as is) to a spec file; returns its path."""

    def write(content: object, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write
