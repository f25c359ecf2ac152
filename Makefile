# Two commands do all set-up on a fresh machine:
#   make demo   - builds .venv if missing, installs, runs the main job end to end
#   make test   - builds .venv if missing, installs, runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-lower lint docs bench clean-demo

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	rm -rf ligeriri_dq.egg-info  # left by the former setuptools build; it hides the entry points
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,plot,dask,docs]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# on two cores: ~3 min with two workers, ~5.5 min in one process
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto --maxprocesses=4

# the declared lower bounds (pyproject.toml) tested: a fresh venv with every direct
# dependency at its floor (scripts/lower-bounds.txt), then the whole suite; by hand, ~7 min
test-lower:
	scripts/test_lower_bounds.sh

lint: $(STAMP)
	$(BIN)/ruff check .

docs: $(STAMP)
	$(BIN)/python scripts/build_docs.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean-demo:
	rm -rf demo
