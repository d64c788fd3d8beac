# The two commands of the README. Each creates .venv if missing and installs what it
# needs (again only when pyproject.toml changed), so both work from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-tf test-jax test-torch clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[lab,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/optlab race --out runs/race

# The whole suite on TensorFlow (the default backend), then the backend-agnostic part
# again on JAX (float64 enabled for the book checks) and on PyTorch. pytest-xdist spreads
# each run over the machine's cores (-n auto: 2 workers on 2 cores).
XDIST := -n auto

test: test-tf test-jax test-torch

test-tf: $(STAMP)
	$(PY) -m pytest -q $(XDIST) --durations=15

test-jax: $(STAMP)
	KERAS_BACKEND=jax JAX_ENABLE_X64=1 $(PY) -m pytest -q $(XDIST) -m backend_agnostic

test-torch: $(STAMP)
	KERAS_BACKEND=torch $(PY) -m pytest -q $(XDIST) -m backend_agnostic

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
