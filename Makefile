# Two commands set up everything on a fresh machine with python3 and pip:
#   make demo   create .venv, install core + every in-repo plugin, run the quickstart end to end
#   make test   same set-up, then the schema check, lint and the test suite (all but `gpu` tests,
#               two worker processes of one torch thread each: pytest-xdist)
# Both are idempotent: .venv is reused while requirements and pins are unchanged.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYPROJECTS := core/pyproject.toml $(wildcard plugins/*/pyproject.toml)

.PHONY: setup demo test lint schema clean bench

setup: $(STAMP)

$(STAMP): requirements-dev.txt constraints.txt $(PYPROJECTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

demo: setup
	$(BIN)/flowforge run examples/quickstart.yaml

test: setup
	$(BIN)/flowforge schema --check
	$(BIN)/ruff check .
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m "not gpu" -q -n 2 --dist loadfile

lint: setup
	$(BIN)/ruff check .

schema: setup
	$(BIN)/flowforge schema --write

# The solver and guidance benchmarks with the anchor libraries installed side by side (never part
# of `test`).
bench: setup
	grep -v 'no-deps' requirements-bench.txt > $(VENV)/bench-requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(VENV)/bench-requirements.txt -c constraints.txt
	grep 'no-deps' requirements-bench.txt | grep -v '^#' | cut -d' ' -f1 | xargs $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps
	$(BIN)/python benchmarks/solvers.py
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/guidance.py

clean:
	rm -rf $(VENV) runs .pytest_cache
