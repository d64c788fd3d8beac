# The two commands of the README. Each creates .venv if missing and installs what it
# needs (again only when pyproject.toml changed), so both work from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-tf test-jax test-torch test-min clean

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

test: test-tf test-jax test-torch test-min

# One intra-op thread per xdist worker (TensorFlow's pool, torch's and NumPy's OpenMP):
# two workers on two cores, each with a pool as wide as the machine, oversubscribe it.
# Measured on a 158-test TensorFlow subset, 2 workers on 2 cores: 106 s -> 85-87 s.
# (JAX's XLA pool left alone: single-threading it gained nothing, 70 s vs 73 s.)
TEST_ENV := OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1

test-tf: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -q $(XDIST) --durations=15

# JAX's persistent compilation cache (in the virtualenv, shared by the workers): many tests
# compile the same small programs (the same MLP's train step, the same update rule);
# a cold cache already saves ~20% of the JAX pass (measured on a 190-test subset:
# 97 s → 77 s on 2 cores). The compiled executables are the same, only not rebuilt.
JAX_CACHE := JAX_COMPILATION_CACHE_DIR=$(abspath $(VENV))/jax-cache \
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0

test-jax: $(STAMP)
	$(TEST_ENV) KERAS_BACKEND=jax JAX_ENABLE_X64=1 $(JAX_CACHE) $(PY) -m pytest -q $(XDIST) -m backend_agnostic --durations=10

test-torch: $(STAMP)
	$(TEST_ENV) KERAS_BACKEND=torch $(PY) -m pytest -q $(XDIST) -m backend_agnostic --durations=10

# The core suite once more at the declared minimum versions: .ci/minimum.txt pins every
# floor of pyproject.toml (Python 3.11, keras 3.10.0, tensorflow 2.16.2, numpy 1.26.4,
# keras-tuner 1.4.6, ...), installed together with the package, so pip also checks that
# pyproject.toml accepts them. A second virtualenv, built and refreshed like the first.
# Python 3.11 where there is one (TensorFlow 2.16.2 has wheels for Python 3.9-3.12 only).
# The tests marked slow (subprocess fan-outs, multi-device) run in test-tf only.
PYTHON_MIN ?= $(shell command -v python3.11 2>/dev/null || echo $(PYTHON))
VENV_MIN   ?= .venv-min
PY_MIN     := $(VENV_MIN)/bin/python
STAMP_MIN  := $(VENV_MIN)/.installed
# What meets the Keras, TensorFlow, NumPy and keras-tuner APIs: Keras' own optimizer and
# initializer suites over our classes, the book checks, the shared base, state loading,
# the closure wing, the initializers that read fans, the bad-input table, tuning, saving
# and the version check (not the rest of tests/optimizers and tests/initializers, which
# exercise our own math on the same APIs: they run at the newest versions above).
MIN_TESTS  := tests/optimizers/test_keras_suite.py tests/optimizers/test_book.py tests/optimizers/test_shared.py \
              tests/optimizers/test_loaded_state.py tests/optimizers/test_closure_loop.py \
              tests/optimizers/test_quasi_newton.py tests/optimizers/test_newton.py \
              tests/initializers/test_keras_suite.py tests/initializers/test_variance_scaling.py \
              tests/initializers/test_scaled.py tests/initializers/test_saving.py tests/test_bad_inputs.py \
              tests/test_tuning.py tests/workflows/test_saving.py tests/workflows/test_versions.py

$(PY_MIN):
	$(PYTHON_MIN) -m venv $(VENV_MIN)

$(STAMP_MIN): pyproject.toml .ci/minimum.txt | $(PY_MIN)
	$(PY_MIN) -m pip install --quiet --upgrade pip
	$(PY_MIN) -m pip install --quiet -r .ci/minimum.txt -e ".[lab]" pytest pytest-xdist hypothesis scipy
	touch $(STAMP_MIN)

test-min: $(STAMP_MIN)
	$(TEST_ENV) $(PY_MIN) -m pytest -q $(XDIST) -m "not slow" --durations=10 $(MIN_TESTS)

clean:
	rm -rf $(VENV) $(VENV_MIN) runs .pytest_cache .hypothesis
