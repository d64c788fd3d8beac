"""Helpers shared by tests in several folders (a test module never imports another one).

* :func:`digits_subset` — the tests' digits: the first ``n`` samples in scikit-learn's
  bundled order, standardized (``keras_optlab.lab.data.load_digits``, the package's one
  loader, with no split);
* :func:`make_mlp` — the tests' small digits MLP, 64 → ``hidden`` tanh → 10 logits, from
  ``keras.utils.set_random_seed(seed)`` (``keras_optlab.lab.models.digits_mlp``, the
  package's one builder);
* :data:`LOSS` — its loss: sparse categorical cross-entropy on logits;
* :func:`with_null_optimizer` — a copy of a ``.keras`` file whose compile config says
  ``optimizer: null``;
* :class:`Subclassed` — a subclassed model (no graph), one Dense(3);
* :data:`KERAS_VERSION`, :func:`needs_keras` — the installed Keras as (major, minor) and
  a skip marker for a feature a newer Keras brought (the suite also runs at the declared
  minimum, ``make test-min``).
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_optlab.lab.data import load_digits
from keras_optlab.lab.models import digits_mlp

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
KERAS_VERSION = tuple(int(part) for part in keras.version().split(".")[:2])


def needs_keras(major, minor, feature):
    """Skip a test of ``feature`` below Keras ``major.minor``, where Keras lacks it."""
    return pytest.mark.skipif(KERAS_VERSION < (major, minor), reason=f"{feature} arrived in Keras {major}.{minor}")


def digits_subset(n=512):
    """``(x, y)``: the first ``n`` digits (bundled order, no shuffling), standardized,
    float32 inputs and int32 labels. ``n=512`` with batch 64 makes every batch full,
    which MirroredStrategy's equality with one device needs."""
    return load_digits(validation_split=None, limit=n)


def make_mlp(seed=0, hidden=32):
    """64 → ``hidden`` tanh → 10 logits, uncompiled; Keras' default (unseeded) Glorot
    kernels drawn after ``keras.utils.set_random_seed(seed)``: the same seed gives the
    same weights, in this process or another."""
    keras.utils.set_random_seed(seed)
    return digits_mlp((hidden,), "tanh", kernel_initializer="glorot_uniform", output_activation=None,
                      name=f"mlp_{hidden}")


def load_script(path, name=None):
    """Import the script at ``path`` (a benchmark, a tuning script) as a module."""
    import importlib.util
    import pathlib

    path = pathlib.Path(path)
    spec = importlib.util.spec_from_file_location(name or f"{path.stem}_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def with_null_optimizer(source, target):
    """Copy the .keras file ``source`` to ``target`` with ``optimizer: null`` in its compile config."""
    import json
    import zipfile

    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                config["compile_config"]["optimizer"] = None
                data = json.dumps(config).encode()
            zout.writestr(item, data)


class Subclassed(keras.Model):
    """A subclassed model named "sub": one Dense(3), no graph of layers."""

    def __init__(self):
        super().__init__(name="sub")
        self.dense = keras.layers.Dense(3)

    def call(self, x):
        return self.dense(x)


def multi_device_case(case, x, clipnorm=0.5, nan_at=3 * 64 + 5):
    """A case of the multi-device checks (data_parallel_check.py, multi_worker_check.py):
    ``"NAME"`` or ``"NAME+clip+skip"``, NAME a row of tests/optimizers/cases.py.

    Returns ``(NAME, optimizer keyword arguments, inputs)``: ``+clip`` adds
    ``global_clipnorm=clipnorm`` (0.5 is below the digits MLP's gradient norm, so it
    clips); ``+skip`` adds ``skip_nonfinite=True`` and returns a copy of ``x`` with one
    NaN at row ``nan_at`` (batch 3 of 64, on the first of two replicas), so that step's
    gradient is NaN and is skipped every epoch."""
    from tests.optimizers.cases import NAMES

    name, *options = case.split("+")
    if name not in NAMES or not set(options) <= {"clip", "skip"}:
        raise ValueError(f"`case` must be NAME[+clip][+skip], NAME one of {NAMES}. Received: case={case!r}")
    kwargs = {}
    if "clip" in options:
        kwargs["global_clipnorm"] = clipnorm
    if "skip" in options:
        kwargs["skip_nonfinite"] = True
        x = x.copy()
        x[nan_at, 0] = float("nan")
    return name, kwargs, x


def spd_quadratic(n=8, condition=100.0, seed=0):
    """J(θ) = ½θᵀAθ − bᵀθ with A symmetric positive definite, its eigenvalues log-spaced
    in [1, ``condition``]: ``(A, b, make)``, ``make(var)`` the loss closure on a variable."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(np.geomspace(1.0, condition, n)) @ q.T
    b = rng.normal(size=n)
    a_t, b_t = ops.convert_to_tensor(a), ops.convert_to_tensor(b)
    return a, b, lambda var: (lambda: 0.5 * ops.sum(var * ops.sum(a_t * var, axis=1)) - ops.sum(b_t * var))


def rosenbrock_loss(var):
    """The closure Σᵢ 100(θᵢ₊₁ − θᵢ²)² + (1 − θᵢ)² on a 1-D variable."""
    return lambda: ops.sum(100.0 * (var[1:] - var[:-1] ** 2) ** 2 + (1.0 - var[:-1]) ** 2)


def jax_state_sync(model):
    """Write a JAX model's trained state back into its variables (``fit`` keeps it apart
    until the end of an epoch); nothing on the other backends."""
    if callable(getattr(model, "jax_state_sync", None)):
        model.jax_state_sync()


def variable_values(variables):
    """NumPy copies of ``variables``' values."""
    return [np.array(keras.ops.convert_to_numpy(v.value)) for v in variables]


def finite_positive(value):
    """Whether ``value`` is a float, finite and > 0 (a benchmark's reported number)."""
    return isinstance(value, float) and math.isfinite(value) and value > 0
