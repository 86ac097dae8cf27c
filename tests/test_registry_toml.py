"""`registry.toml` agrees with what pluggy discovers, the plugin directories, the dev
requirements and the plugin list in docs/plugins.md (format: docs/plugins.md).

Per-plugin checks are parametrized over the catalogue; the set comparisons run always, so a
plugin directory or entry point that is missing from the catalogue fails even while it is empty.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import json
import re
import sys
import tomllib
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from flowforge import registry
from flowforge.hookspecs import PROJECT

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = tomllib.loads((ROOT / "registry.toml").read_text())
PLUGINS: dict[str, dict] = CATALOGUE.get("plugins", {})
REQUIRED = {"distribution", "path", "module", "domains", "components", "status"}
OPTIONAL = {"extras"}
STATUSES = {"experimental", "beta", "stable"}
DOMAINS = {"images", "medical", "molecules", "proteins", "timeseries", "audio", "discrete", "pde"}
LISTED = list(PLUGINS) or [
    pytest.param(
        None, id="none", marks=pytest.mark.skip(reason="registry.toml lists no plugins yet")
    )
]


def pyproject(entry: dict) -> dict:
    return tomllib.loads((ROOT / entry["path"] / "pyproject.toml").read_text())


def docs_listed_distributions() -> set[str]:
    """Distributions named in the 'Plugins in this repository' section (its Planned part aside)."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    section = text.split("\n## Plugins in this repository\n", 1)[1]
    section = re.split(r"\n##(?!#) |\n### Planned\n", section, maxsplit=1)[0]
    return set(re.findall(r"\bflowforge-[a-z0-9][a-z0-9_-]*", section))


def in_repo(path: Path) -> bool:
    """Inside this repository, but not in a virtual environment kept there (.venv)."""
    path = path.resolve()
    return path.is_relative_to(ROOT) and not path.is_relative_to(Path(sys.prefix).resolve())


def source_paths(ep: metadata.EntryPoint) -> list[Path]:
    """Where an entry point's code comes from: the install's source URL and the module's file."""
    paths = []
    direct = ep.dist.read_text("direct_url.json") if ep.dist else None
    if direct and (url := json.loads(direct).get("url", "")).startswith("file://"):
        paths.append(Path(unquote(urlparse(url).path)))
    spec = importlib.util.find_spec(ep.module.split(".")[0])
    if spec and spec.origin:
        paths.append(Path(spec.origin))
    return paths


def test_catalogue_has_only_the_plugins_table():
    assert set(CATALOGUE) == {"plugins"} and isinstance(PLUGINS, dict)


@pytest.mark.parametrize("name", LISTED)
def test_entry_has_the_documented_keys(name):
    entry = PLUGINS[name]
    assert REQUIRED <= set(entry) <= REQUIRED | OPTIONAL, f"{name}: keys {sorted(entry)}"
    assert entry["status"] in STATUSES, f"{name}: status {entry['status']!r} not in {STATUSES}"
    assert entry["domains"] and set(entry["domains"]) <= DOMAINS, (
        f"{name}: domains {entry['domains']}"
    )
    components = entry["components"]
    assert components and set(components) <= set(registry.KINDS), (
        f"{name}: kinds {sorted(components)}"
    )
    assert all(names and all(isinstance(n, str) for n in names) for names in components.values())


@pytest.mark.parametrize("name", LISTED)
def test_entry_agrees_with_its_pyproject(name):
    entry = PLUGINS[name]
    project = pyproject(entry)["project"]
    assert project["name"] == entry["distribution"]
    assert project.get("entry-points", {}).get(PROJECT) == {name: entry["module"]}
    extras = set(entry.get("extras", []))
    assert extras <= set(project.get("optional-dependencies", {})), f"{name}: unknown extras"


@pytest.mark.parametrize("name", LISTED)
def test_discovered_with_exactly_the_listed_components(name):
    entry = PLUGINS[name]
    reg = registry.load(allowed={name})
    found = [p for p in reg.plugins if p.name == name]
    assert found, (
        f"plugin {name!r} was not loaded (failures: {reg.failures}); install it with "
        f"pip install -e ./{entry['path']}"
    )
    assert found[0].distribution == entry["distribution"]
    assert found[0].components == {
        kind: sorted(names) for kind, names in entry["components"].items()
    }


def test_every_plugin_directory_is_listed():
    directories = {
        p.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("plugins/*/pyproject.toml")
    }
    assert directories == {entry["path"] for entry in PLUGINS.values()}


def test_requirements_dev_installs_exactly_the_listed_plugins():
    lines = (ROOT / "requirements-dev.txt").read_text().splitlines()
    installed = {
        line.split(maxsplit=1)[1].removeprefix("./")
        for line in lines
        if line.startswith("-e ./plugins/")
    }
    assert installed == {entry["path"] for entry in PLUGINS.values()}


def test_docs_list_exactly_the_listed_plugins():
    assert docs_listed_distributions() == {entry["distribution"] for entry in PLUGINS.values()}


def test_every_entry_point_from_this_repository_is_listed():
    for ep in metadata.entry_points(group=PROJECT):
        if any(in_repo(p) for p in source_paths(ep)):
            assert ep.name in PLUGINS, (
                f"entry point {ep.name!r} ({ep.dist.name}) is not in registry.toml"
            )
            assert PLUGINS[ep.name]["distribution"] == ep.dist.name
