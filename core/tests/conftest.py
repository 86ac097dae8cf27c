"""Core test configuration: `pytester` runs small suites in-process (see test_pytest_plugin)."""

pytest_plugins = ["pytester"]
