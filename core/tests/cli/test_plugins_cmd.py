"""`flowforge plugins`: the JSON report and the table, including plugins that failed to load."""

from __future__ import annotations

import json

import pytest

from flowforge import registry
from flowforge.testing import FakeEntryPoint


def broken() -> object:
    raise ImportError("No module named 'flowforge_missing_dep'")


@pytest.fixture
def with_broken_plugin():
    """Core plus a plugin whose import fails."""
    ep = FakeEntryPoint("broken", broken, dist_name="flowforge-broken", version="1.2.3")
    with registry.using(registry.load(allowed=None, entry_points=[ep])) as reg:
        yield reg


def test_json_lists_the_core_plugin_with_its_paths_and_solvers(cli, core_only):
    code, out, err = cli("plugins", "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert set(report) == {"plugins", "failures"}
    assert report["failures"] == []
    (core,) = [p for p in report["plugins"] if p["name"] == "flowforge"]
    assert set(core) == {"name", "distribution", "version", "components"}
    assert core["distribution"] == "flowforge"
    assert {"cond_ot", "vp_cosine", "vp_linear", "ve", "edm"} <= set(core["components"]["path"])
    assert {"euler", "heun", "midpoint", "rk4"} <= set(core["components"]["solver"])
    assert core["components"]["solver"] == sorted(core["components"]["solver"])


def test_json_is_stable(cli, core_only):
    assert cli("plugins", "--json") == cli("plugins", "--json")


def test_json_reports_failures(cli, with_broken_plugin):
    code, out, _ = cli("plugins", "--json")
    assert code == 0
    (failure,) = json.loads(out)["failures"]
    assert failure["name"] == "broken"
    assert failure["distribution"] == "flowforge-broken"
    assert "flowforge_missing_dep" in failure["error"]


def test_table_shows_components_and_warns_about_failures(cli, with_broken_plugin):
    code, out, err = cli("plugins")
    assert code == 0
    assert "flowforge" in out and "cond_ot" in out and "rk4" in out
    assert "warning: plugin 'broken' (flowforge-broken) failed to load" in err


def with_info() -> object:
    """A plugin module registering a solver with `info` (a model's parameter count, say)."""
    import types

    import flowforge
    from flowforge.solvers import Euler

    @flowforge.hookimpl
    def register_solvers(register):
        register("euler_info", Euler, info=lambda: {"parameters": 123})
        register("euler_plain", Euler)

    module = types.ModuleType("with_info")
    module.register_solvers = register_solvers
    return module


def test_json_details_carry_registered_info_only(cli):
    ep = FakeEntryPoint("infos", with_info, dist_name="flowforge-infos", version="0.1")
    with registry.using(registry.load(allowed=None, entry_points=[ep])):
        code, out, _ = cli("plugins", "--json")
    assert code == 0
    (mine,) = [p for p in json.loads(out)["plugins"] if p["name"] == "infos"]
    assert mine["details"] == {"solver": {"euler_info": {"parameters": 123}}}
    (core,) = [p for p in json.loads(out)["plugins"] if p["name"] == "flowforge"]
    assert "details" not in core


def test_info_that_is_not_callable_fails_the_plugin():
    import types

    import flowforge
    from flowforge.solvers import Euler

    @flowforge.hookimpl
    def register_solvers(register):
        register("euler_info", Euler, info={"parameters": 1})

    module = types.ModuleType("bad_info")
    module.register_solvers = register_solvers
    ep = FakeEntryPoint("badinfo", lambda: module, dist_name="flowforge-badinfo")
    reg = registry.load(allowed=None, entry_points=[ep])
    (fail,) = reg.failures
    assert "info must be a zero-argument callable" in fail.error
