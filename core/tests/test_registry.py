"""The registry and plugin loading: lookups, parameter validation, and how broken plugins fail.

Plugins are simulated with `FakeEntryPoint`s holding in-memory modules, so every test loads a
fresh plugin manager with exactly the plugins it needs and nothing installed leaks in.
"""

from __future__ import annotations

import importlib.metadata as metadata

import pytest
from pydantic import BaseModel, ConfigDict

import flowforge
from flowforge import registry
from flowforge.errors import PluginError, SpecError
from flowforge.paths import VPLinear
from flowforge.solvers import RK4, Euler
from flowforge.testing import FakeEntryPoint, plugin_module

CORE_COMPONENTS = {
    "path": {"cond_ot", "vp_cosine", "vp_linear", "ve", "edm"},
    "solver": {"euler", "heun", "midpoint", "rk4"},
    "operator": {"identity"},
}


def solver_plugin(*names: str, module: str = "fake_plugin"):
    """A plugin module registering each of `names` as an Euler solver."""

    @flowforge.hookimpl
    def register_solvers(register):
        for name in names:
            register(name, Euler)

    return plugin_module(module, register_solvers=register_solvers)


def ep(name: str, plugin, version: str = "1.0") -> FakeEntryPoint:
    return FakeEntryPoint(name, plugin, dist_name=f"flowforge-{name}", version=version)


def load(*entry_points: FakeEntryPoint) -> registry.Registry:
    return registry.load(allowed=None, entry_points=list(entry_points))


def failure(reg: registry.Registry, name: str) -> str:
    (found,) = [f for f in reg.failures if f.name == name]
    return found.error


# Lookups


def test_core_registers_through_its_default_plugin():
    reg = load()
    (core,) = reg.plugins
    assert (core.name, core.distribution, core.version) == (
        "flowforge",
        "flowforge",
        metadata.version("flowforge"),
    )
    for kind, names in CORE_COMPONENTS.items():
        assert names <= set(core.components[kind])
    for kind in registry.KINDS:
        assert reg.names(kind) == core.components.get(kind, [])


def test_names_are_sorted_and_unknown_kinds_suggest_the_right_one():
    assert registry.names("solver") == sorted(registry.names("solver"))
    with pytest.raises(SpecError, match="Did you mean 'solver'"):
        registry.names("solvers")


def test_get_gives_component_with_its_provenance():
    comp = registry.get("solver", "rk4")
    assert (comp.kind, comp.name, comp.factory) == ("solver", "rk4", RK4)
    assert (comp.plugin, comp.distribution) == ("flowforge", "flowforge")
    assert comp.doc.startswith("Classical RK4")


def test_create_validates_params_and_builds():
    assert registry.create("path", "vp_linear", beta_max=10.0) == VPLinear(beta_max=10.0)
    assert registry.create("path", "vp_linear") == VPLinear()


def test_resolve_builds_names_and_passes_objects_through():
    solver = Euler()
    assert registry.resolve("solver", solver) is solver
    assert registry.resolve("solver", "rk4") == RK4()


@pytest.mark.parametrize(
    ("params", "location", "message"),
    [
        ({"sigma_min": -1.0}, "path.params.sigma_min", "greater than 0 (got -1.0)"),
        ({"sigma_mn": 0.1}, "path.params.sigma_mn", "unknown key"),
        ({"sigma_max": "big"}, "path.params.sigma_max", "valid number"),
    ],
)
def test_params_errors_have_dotted_locations(params, location, message):
    with pytest.raises(SpecError) as err:
        registry.get("path", "ve").validate(params, where="path.params")
    ((loc, msg),) = err.value.issues
    assert loc == location and message in msg, (loc, msg)


def test_create_reports_every_bad_param():
    with pytest.raises(SpecError) as err:
        registry.create("path", "edm", sigma_min=0.0, rho=-1.0, typo=1)
    assert {loc for loc, _ in err.value.issues} == {"sigma_min", "rho", "typo"}


def test_unknown_name_suggests_close_matches():
    with pytest.raises(SpecError) as err:
        registry.get("solver", "hune")
    text = str(err.value)
    assert "unknown solver 'hune'" in text and "Did you mean 'heun'" in text
    assert "Installed: " in text and "rk4" in text


# Parameter models


class WidthParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: int = 4


class OpenParams(BaseModel):
    width: int = 4


def model_plugin(params: type):
    @flowforge.hookimpl
    def register_models(register):
        register("sized", lambda p: ("built", p.width), params=params)

    return plugin_module("model_plugin", register_models=register_models)


def test_pydantic_params_are_validated_then_passed_to_the_factory():
    reg = load(ep("sized", model_plugin(WidthParams)))
    assert reg.create("model", "sized", width=7) == ("built", 7)
    with pytest.raises(SpecError, match="width"):
        reg.create("model", "sized", width="wide")
    assert reg.get("model", "sized").params_schema()["additionalProperties"] is False


def test_pydantic_params_must_forbid_unknown_keys():
    reg = load(ep("sized", model_plugin(OpenParams)))
    assert "extra='forbid'" in failure(reg, "sized")
    assert "sized" not in reg.names("model")


def test_factory_without_params_rejects_any():
    @flowforge.hookimpl
    def register_metrics(register):
        register("constant", lambda: 1.0)

    reg = load(ep("m", plugin_module("m", register_metrics=register_metrics)))
    assert reg.create("metric", "constant") == 1.0
    with pytest.raises(SpecError, match="takes no parameters"):
        reg.create("metric", "constant", scale=2)


def test_dataclass_params_schema_is_closed():
    schema = registry.get("path", "vp_linear").params_schema()
    assert set(schema["properties"]) == {"beta_min", "beta_max", "eps"}
    assert schema["additionalProperties"] is False


# Duplicates and FLOWFORGE_PLUGINS


def test_duplicate_of_a_core_name_names_both_distributions():
    with pytest.raises(PluginError) as err:
        load(ep("dup", solver_plugin("euler")))
    assert "'flowforge'" in str(err.value) and "'flowforge-dup'" in str(err.value)


def test_duplicate_between_plugins_names_both_distributions():
    with pytest.raises(PluginError) as err:
        load(
            ep("a", solver_plugin("ralston", module="a")),
            ep("b", solver_plugin("ralston", module="b")),
        )
    assert "'flowforge-a'" in str(err.value) and "'flowforge-b'" in str(err.value)


@pytest.mark.parametrize("spelling", ["a", "flowforge-a", " a , "])
def test_flowforge_plugins_limits_what_loads(monkeypatch, spelling):
    monkeypatch.setenv(registry.ENV_PLUGINS, spelling)
    reg = registry.load(
        entry_points=[
            ep("a", solver_plugin("sa", module="a")),
            ep("b", solver_plugin("sb", module="b")),
        ]
    )
    assert [p.name for p in reg.plugins] == ["flowforge", "a"]
    assert "sa" in reg.names("solver") and "sb" not in reg.names("solver")
    assert not reg.failures


def test_empty_flowforge_plugins_loads_only_core(monkeypatch):
    monkeypatch.setenv(registry.ENV_PLUGINS, "")
    reg = registry.load(entry_points=[ep("a", solver_plugin("sa"))])
    assert [p.name for p in reg.plugins] == ["flowforge"]


def test_flowforge_plugins_naming_a_missing_plugin_is_a_failure(monkeypatch):
    monkeypatch.setenv(registry.ENV_PLUGINS, "a,nowhere")
    reg = registry.load(entry_points=[ep("a", solver_plugin("sa"))])
    assert registry.ENV_PLUGINS in failure(reg, "nowhere")
    assert "sa" in reg.names("solver")


# Broken plugins are reported and skipped


def _raise_import_error():
    raise ImportError("No module named 'rdkit'")


def test_plugin_failing_at_import_is_reported_and_skipped(caplog):
    reg = load(ep("broken", _raise_import_error), ep("fine", solver_plugin("fine_euler")))
    assert failure(reg, "broken") == "ImportError: No module named 'rdkit'"
    assert [f.distribution for f in reg.failures] == ["flowforge-broken"]
    assert "fine_euler" in reg.names("solver") and "rk4" in reg.names("solver")
    assert "failed to load and was skipped" in caplog.text


def test_misspelled_hook_is_reported_and_the_plugin_skipped():
    @flowforge.hookimpl
    def register_solver(register):
        register("never", Euler)

    @flowforge.hookimpl
    def register_paths(register):
        register("never_path", VPLinear)

    plugin = plugin_module("typo", register_solver=register_solver, register_paths=register_paths)
    reg = load(ep("typo", plugin), ep("fine", solver_plugin("fine_euler")))
    assert "register_solver" in failure(reg, "typo")
    assert "never_path" not in reg.names("path") and "fine_euler" in reg.names("solver")


def test_hook_with_an_unknown_argument_is_reported():
    @flowforge.hookimpl
    def register_solvers(register, device):
        register("never", Euler)

    reg = load(ep("extra", plugin_module("extra", register_solvers=register_solvers)))
    assert "device" in failure(reg, "extra")
    assert "never" not in reg.names("solver")


def test_plugin_raising_in_a_hook_adds_none_of_its_components():
    @flowforge.hookimpl
    def register_solvers(register):
        register("first", Euler)
        raise RuntimeError("half-way")

    reg = load(ep("half", plugin_module("half", register_solvers=register_solvers)))
    assert failure(reg, "half") == "RuntimeError: half-way"
    assert "first" not in reg.names("solver")


def test_component_name_must_be_an_identifier():
    reg = load(ep("dash", solver_plugin("my-solver")))
    assert "must be a Python identifier" in failure(reg, "dash")


def test_hook_taking_a_subset_of_arguments_is_called():
    calls = []

    @flowforge.hookimpl
    def register_solvers():
        calls.append("called")

    reg = load(ep("bare", plugin_module("bare", register_solvers=register_solvers)))
    assert calls == ["called"] and not reg.failures


def test_plugins_record_distribution_version_and_components():
    @flowforge.hookimpl
    def register_commands(cli):
        cli.add_command("hello")

    plugin = solver_plugin("s2", "s1")
    plugin.register_commands = register_commands
    reg = load(ep("mine", plugin, version="1.2.3"))
    assert reg.plugins[-1] == registry.PluginInfo(
        "mine", "flowforge-mine", "1.2.3", {"solver": ["s1", "s2"]}
    )
    assert reg.commands == [register_commands]
    assert reg.get("solver", "s1").distribution == "flowforge-mine"


# The process-wide registry


def test_using_installs_a_registry_and_restores_the_previous_one():
    before = registry.current()
    custom = load(ep("mine", solver_plugin("only_here")))
    with registry.using(custom):
        assert registry.current() is custom and "only_here" in registry.names("solver")
    assert registry.current() is before


def test_reset_forgets_the_loaded_registry():
    before = registry.current()
    registry.reset()
    assert registry.current() is not before


def test_fresh_registry_fixture_is_current(fresh_registry):
    assert registry.current() is fresh_registry
    assert CORE_COMPONENTS["solver"] <= set(fresh_registry.names("solver"))
