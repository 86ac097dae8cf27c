"""The pytest plugin's fixtures, and that no registry or dtype state leaks between tests."""

from __future__ import annotations

import torch

from flowforge import registry


def test_generator_is_seeded_by_the_option(generator, pytestconfig):
    seed = pytestconfig.getoption("--flowforge-seed")
    expected = torch.randn(4, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(torch.randn(4, generator=generator), expected)


def test_float64_sets_the_default_dtype(float64):
    assert float64 is torch.float64 and torch.get_default_dtype() is torch.float64
    assert torch.zeros(1).dtype is torch.float64


def test_fresh_registry_is_a_new_load(fresh_registry):
    assert registry.current() is fresh_registry
    assert fresh_registry.plugins[0].name == "flowforge"


ISOLATION_SUITE = """
from flowforge import registry

def test_a_changes_the_registry():
    registry.current().entries["solver"].pop("euler")
    assert "euler" not in registry.names("solver")

def test_b_sees_a_fresh_one():
    assert "euler" in registry.names("solver")

def test_c_seed(generator):
    assert generator.initial_seed() == 7

def test_d_float64(float64):
    import torch
    assert torch.get_default_dtype() is torch.float64

def test_e_float32_again():
    import torch
    assert torch.get_default_dtype() is torch.float32
"""


def test_registry_changes_do_not_leak_between_tests(pytester):
    pytester.makepyfile(test_isolation=ISOLATION_SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider", "--flowforge-seed", "7")
    result.assert_outcomes(passed=5)


def test_without_the_plugin_registry_state_leaks(pytester):
    """The isolation comes from the plugin: disabled, test b sees test a's change and fails."""
    pytester.makepyfile(test_isolation=ISOLATION_SUITE.split("def test_c_seed")[0])
    registry.reset()
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:flowforge")
    registry.reset()
    result.assert_outcomes(passed=1, failed=1)
