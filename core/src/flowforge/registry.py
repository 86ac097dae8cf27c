"""The component registry: every path, solver, model, dataset, coupling, ... by kind and name.

Kinds: path, solver, guidance, model, dataset, metric, operator, task, time_sampler, coupling.

Components come from plugins found through pluggy entry points in group `flowforge`; core's own
components are registered the same way by `flowforge.default_plugin`. Lookups never depend on
install order: a name registered twice is an error naming both distributions.

    from flowforge import registry
    registry.names("solver")                    # ['euler', 'heun', 'midpoint', 'rk4', ...]
    path = registry.create("path", "vp_linear", beta_max=20.0)
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as metadata
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pluggy
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from flowforge import hookspecs
from flowforge.errors import PluginError, SpecError, UnknownName
from flowforge.validation import spec_error

log = logging.getLogger("flowforge")

KINDS = (
    "path",
    "solver",
    "guidance",
    "model",
    "dataset",
    "metric",
    "operator",
    "task",
    "time_sampler",
    "coupling",
)
HOOKS = {
    "path": "register_paths",
    "solver": "register_solvers",
    "guidance": "register_guidance",
    "model": "register_models",
    "dataset": "register_datasets",
    "metric": "register_metrics",
    "operator": "register_operators",
    "task": "register_tasks",
    "time_sampler": "register_time_samplers",
    "coupling": "register_couplings",
}
CORE = "flowforge"
ENV_PLUGINS = "FLOWFORGE_PLUGINS"


@dataclass(frozen=True)
class Component:
    """One registered component: its factory, parameter model and the plugin that provides it.

    `info`: optional facts about the component for `flowforge plugins --json` (e.g. a model's
    parameter count per size), a zero-argument callable returning a JSON-able dict, called only
    when the report is made.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    params: type | None
    plugin: str
    distribution: str
    version: str
    summary: str
    info: Callable[[], dict[str, Any]] | None = None

    @cached_property
    def _adapter(self) -> TypeAdapter | None:
        if self.params is None:
            return None
        return TypeAdapter(self.params)

    def validate(self, params: dict[str, Any] | None = None, where: str = "") -> Any:
        """Validate a parameter mapping; raises `SpecError` located under `where`."""
        params = dict(params or {})
        if self._adapter is None:
            if params:
                keys = ", ".join(sorted(params))
                raise SpecError(
                    [(where, f"{self.kind} {self.name!r} takes no parameters (got {keys})")]
                )
            return None
        try:
            return self._adapter.validate_python(params)
        except ValidationError as err:
            raise spec_error(err, where) from None

    def build(self, params: dict[str, Any] | None = None, /, **context: Any) -> Any:
        """Validate `params` and construct the component (`context`: extra factory arguments)."""
        valid = self.validate(params)
        if dataclasses.is_dataclass(self.params) and self.params is self.factory:
            return valid
        if valid is None:
            return self.factory(**context)
        return self.factory(valid, **context)

    def params_schema(self) -> dict[str, Any]:
        """JSON Schema of the parameters (an empty closed object when there are none)."""
        if self._adapter is None:
            return {"type": "object", "additionalProperties": False, "properties": {}}
        return self._adapter.json_schema()

    @property
    def doc(self) -> str:
        if self.summary:
            return self.summary
        text = (getattr(self.factory, "__doc__", None) or "").strip()
        return text.splitlines()[0] if text else ""


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin and the components it registered."""

    name: str
    distribution: str
    version: str
    components: dict[str, list[str]]


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded; it was skipped."""

    name: str
    distribution: str
    error: str


def _closed(params: type) -> type:
    """Make a dataclass parameter model reject unknown keys, as pydantic models in specs do."""
    if dataclasses.is_dataclass(params) and "__pydantic_config__" not in vars(params):
        params.__pydantic_config__ = ConfigDict(extra="forbid")
    elif isinstance(params, type) and issubclass(params, BaseModel):
        if params.model_config.get("extra") != "forbid":
            raise PluginError(
                f"parameter model {params.__qualname__} must set model_config = "
                "ConfigDict(extra='forbid') so that misspelled spec keys are caught"
            )
    return params


@dataclass
class Registry:
    """All components of the loaded plugins, keyed by kind and name."""

    entries: dict[str, dict[str, Component]] = field(default_factory=lambda: {k: {} for k in KINDS})
    plugins: list[PluginInfo] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)
    commands: list[Callable[[Any], None]] = field(default_factory=list)

    def names(self, kind: str) -> list[str]:
        return sorted(self._kind(kind))

    def get(self, kind: str, name: str) -> Component:
        table = self._kind(kind)
        if name not in table:
            raise SpecError([("", UnknownName(kind, name, list(table)).message())])
        return table[name]

    def create(self, kind: str, name: str, /, **params: Any) -> Any:
        return self.get(kind, name).build(params)

    def components(self, kind: str | None = None) -> Iterator[Component]:
        for k in [kind] if kind else KINDS:
            yield from (self._kind(k)[n] for n in sorted(self._kind(k)))

    def _kind(self, kind: str) -> dict[str, Component]:
        if kind not in self.entries:
            raise SpecError([("", UnknownName("component kind", kind, KINDS).message())])
        return self.entries[kind]

    def add(self, components: Iterable[Component]) -> None:
        """Add a plugin's components; a name that exists already raises `PluginError`."""
        for comp in components:
            table = self._kind(comp.kind)
            if comp.name in table:
                other = table[comp.name]
                raise PluginError(
                    f"{comp.kind} {comp.name!r} is registered twice: by distribution "
                    f"{other.distribution!r} (plugin {other.plugin!r}) and by "
                    f"{comp.distribution!r} "
                    f"(plugin {comp.plugin!r}). Uninstall one of them, or limit what loads with "
                    f"{ENV_PLUGINS}=..."
                )
            table[comp.name] = comp


def _collect(pm: pluggy.PluginManager, plugin: object, pname: str, dist: str, version: str):
    """Call one plugin's register hooks; returns its components and CLI command hooks."""
    found: list[Component] = []
    commands = []
    for kind, hook in HOOKS.items():
        for impl in getattr(pm.hook, hook).get_hookimpls():
            if impl.plugin is not plugin:
                continue

            def register(name, factory, params=None, summary="", info=None, _kind=kind):
                if not isinstance(name, str) or not name.isidentifier():
                    raise PluginError(f"{_kind} name {name!r} must be a Python identifier")
                if params is None and dataclasses.is_dataclass(factory):
                    params = factory
                if info is not None and not callable(info):
                    raise PluginError(
                        f"{_kind} {name!r}: info must be a zero-argument callable returning a "
                        f"dict, got {type(info).__name__}"
                    )
                found.append(
                    Component(
                        _kind,
                        name,
                        factory,
                        params and _closed(params),
                        pname,
                        dist,
                        version,
                        summary,
                        info,
                    )
                )

            impl.function(**{arg: register for arg in impl.argnames})
    for impl in pm.hook.register_commands.get_hookimpls():
        if impl.plugin is plugin:
            commands.append(impl.function)
    return found, commands


def _allowed() -> set[str] | None:
    raw = os.environ.get(ENV_PLUGINS)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=hookspecs.PROJECT), key=lambda ep: ep.name)


def load(allowed: set[str] | None = ..., entry_points: Iterable[Any] | None = None) -> Registry:
    """Build a registry from core and the installed plugins (a fresh plugin manager every call).

    `allowed`: plugin or distribution names to load (default: `$FLOWFORGE_PLUGINS`, or all).
    """
    from flowforge import default_plugin

    allowed = _allowed() if allowed is ... else allowed
    reg = Registry()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    candidates: list[tuple[str, str, str, Callable[[], object]]] = [
        (CORE, CORE, metadata.version(CORE) if _installed(CORE) else "0", lambda: default_plugin)
    ]
    for ep in _entry_points() if entry_points is None else entry_points:
        dist = ep.dist.name if getattr(ep, "dist", None) else ep.name
        version = ep.dist.version if getattr(ep, "dist", None) else "0"
        if allowed is not None and not ({ep.name, dist, dist.removeprefix("flowforge-")} & allowed):
            continue
        candidates.append((ep.name, dist, version, ep.load))
    if allowed is not None:
        known = {n for c in candidates for n in (c[0], c[1], c[1].removeprefix("flowforge-"))}
        for missing in sorted(allowed - known):
            reg.failures.append(
                PluginFailure(missing, "?", f"named in {ENV_PLUGINS} but not installed")
            )
    for pname, dist, version, loader in candidates:
        try:
            plugin = loader()
            pm.register(plugin, name=pname)
            pm.check_pending()
            comps, commands = _collect(pm, plugin, pname, dist, version)
        except PluginError as err:
            if pname == CORE:
                raise
            _fail(reg, pm, pname, dist, str(err))
            continue
        except Exception as err:  # a broken plugin is reported and skipped, never fatal
            if pname == CORE:
                raise
            _fail(reg, pm, pname, dist, f"{type(err).__name__}: {err}")
            continue
        reg.add(comps)
        reg.commands.extend(commands)
        kinds: dict[str, list[str]] = {}
        for c in comps:
            kinds.setdefault(c.kind, []).append(c.name)
        reg.plugins.append(
            PluginInfo(pname, dist, version, {k: sorted(v) for k, v in kinds.items()})
        )
    return reg


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def _fail(reg: Registry, pm: pluggy.PluginManager, pname: str, dist: str, error: str) -> None:
    if pm.has_plugin(pname):
        pm.unregister(name=pname)
    reg.failures.append(PluginFailure(pname, dist, error))
    log.warning("plugin %r (%s) failed to load and was skipped: %s", pname, dist, error)


_current: Registry | None = None


def current() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _current
    if _current is None:
        _current = load()
    return _current


def reset() -> None:
    """Forget the loaded registry; the next lookup loads plugins afresh."""
    global _current
    _current = None


@contextmanager
def using(reg: Registry) -> Iterator[Registry]:
    """Make `reg` the current registry inside the block (tests, embedding applications)."""
    global _current
    saved, _current = _current, reg
    try:
        yield reg
    finally:
        _current = saved


def names(kind: str) -> list[str]:
    """Registered names of one kind, sorted."""
    return current().names(kind)


def get(kind: str, name: str) -> Component:
    """The registered component; an unknown name raises `SpecError` with close matches."""
    return current().get(kind, name)


def create(kind: str, name: str, /, **params: Any) -> Any:
    """Validate `params` against the component's parameter model and build it."""
    return current().create(kind, name, **params)


def resolve(kind: str, value: Any, **params: Any) -> Any:
    """A registered name becomes the built component; an object is returned as it is."""
    if isinstance(value, str):
        return create(kind, value, **params)
    return value
