# The two commands of the README. Each creates .venv if missing and installs what it
# needs (again only when pyproject.toml changed), so both work from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-tf test-jax clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[lab,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/optlab race --out runs/race

# The whole suite on TensorFlow (the default backend), then the backend-agnostic part
# again on JAX (float64 enabled for the book checks).
test: test-tf test-jax

test-tf: $(STAMP)
	$(PY) -m pytest -q --durations=15

test-jax: $(STAMP)
	KERAS_BACKEND=jax JAX_ENABLE_X64=1 $(PY) -m pytest -q -m backend_agnostic

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
