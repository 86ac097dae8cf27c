"""The minimal plugin of docs/plugins.md, installed like any third-party plugin, works end to end.

The plugin's files are the titled code blocks of docs/plugins.md (```python title="...")```), so
the documented example cannot rot. It is installed with pip into a temporary directory (never
into the venv) and used from fresh interpreters with that directory on PYTHONPATH: found by
entry point, listed by `flowforge plugins --json`, usable by `flowforge.sample`, and passing
the solver contract with its own tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # pip install and three fresh interpreters: about 15 s

ROOT = Path(__file__).resolve().parents[1]
TITLED_BLOCK = re.compile(r'^```\w+ title="(?P<path>[^"]+)"\n(?P<body>.*?)^```$', re.M | re.S)


def example_files() -> dict[str, str]:
    """Relative path -> content of every titled code block in docs/plugins.md."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    return {m["path"]: m["body"] for m in TITLED_BLOCK.finditer(text)}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> dict:
    """Write the example, pip-install it into `<tmp>/site`; the project table and run settings."""
    root = tmp_path_factory.mktemp("external")
    for rel, body in example_files().items():
        (root / "plugin" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "plugin" / rel).write_text(body)
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
    ]
    done = subprocess.run(
        [*pip, "--quiet", "--target", str(root / "site"), str(root / "plugin")],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    env = {k: v for k, v in os.environ.items() if k != "FLOWFORGE_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(root / "site"), os.environ.get("PYTHONPATH")])
    )
    project = tomllib.loads((root / "plugin" / "pyproject.toml").read_text())["project"]
    return {"root": root, "env": env, "project": project}


def run(plugin: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=plugin["env"],
        cwd=plugin["root"],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_example_is_a_complete_plugin():
    files = example_files()
    assert set(files) == {
        "pyproject.toml",
        "flowforge_ralston/__init__.py",
        "tests/test_ralston.py",
    }
    entry_points = tomllib.loads(files["pyproject.toml"])["project"]["entry-points"]["flowforge"]
    assert entry_points == {"ralston": "flowforge_ralston"}
    assert "@flowforge.hookimpl" in files["flowforge_ralston/__init__.py"]


def test_listed_by_cli_with_distribution_and_version(plugin):
    report = json.loads(run(plugin, "-m", "flowforge", "plugins", "--json"))
    (found,) = [p for p in report["plugins"] if p["name"] == "ralston"]
    assert found["distribution"] == plugin["project"]["name"] == "flowforge-ralston"
    assert found["version"] == plugin["project"]["version"]
    assert found["components"] == {"solver": ["ralston"]}
    assert report["failures"] == []


SAMPLE = """
import json, torch, flowforge
from flowforge.targets import GaussianMixture
gm = GaussianMixture(means=[[1.0, -2.0]], stds=[[0.5, 2.0]])
x_0 = torch.randn(256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
out = flowforge.sample(gm.field(flowforge.registry.create("path", "cond_ot")), x_0, path="cond_ot",
                       prediction="velocity", solver="ralston", nfe=40, return_trajectory=True)
exact = gm.means + gm.stds * x_0  # the cond_ot flow of one Gaussian at t = 1
comp = flowforge.registry.get("solver", "ralston")
print(json.dumps({"nfe": out.nfe, "error": float((out.x - exact).abs().max()),
                  "distribution": comp.distribution, "version": comp.version}))
"""


def test_sample_uses_the_plugin_solver(plugin):
    result = json.loads(run(plugin, "-c", SAMPLE))
    assert (result["distribution"], result["version"]) == (
        "flowforge-ralston",
        plugin["project"]["version"],
    )
    assert result["nfe"] == 40
    assert result["error"] < 1e-2, result  # second order: about 1e-3 with 20 steps


def test_plugin_passes_its_own_contract_tests(plugin):
    out = run(
        plugin,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(plugin["root"] / "plugin" / "tests"),
    )
    assert re.search(r"\b\d+ passed\b", out) and "failed" not in out, out


def test_readme_shows_the_same_plugin():
    readme = (ROOT / "README.md").read_text()
    assert {m["path"]: m["body"] for m in TITLED_BLOCK.finditer(readme)} == example_files()
