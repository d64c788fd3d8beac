"""Pure float16/bfloat16 training (``keras.config.set_dtype_policy("float16")``): no
low-precision default may underflow silently (issue 13, item 1).

Before: float16 ``Adam()`` trained to NaN (δ = 1e-8 is 0 in float16 and r underflows:
0/0); bfloat16 Adam gave NaN weights on TF's fused path (β₂ = 0.999 is 1.0 in bfloat16,
so 1 − β₂ᵗ = 0) and never moved on the keras.ops path (its step size had the factor
√(1 − β₂ᵗ) = 0). Now the bias corrections are computed in float32 and δ is at least the
dtype's smallest normal number.
"""

import contextlib

import keras
import numpy as np
import pytest

import keras_optlab as ko
from keras_optlab.optimizers import rules

HALF = ("float16", "bfloat16")
EPSILON_OPTIMIZERS = {
    "Adam": lambda: ko.Adam(),
    "AdaGrad": lambda: ko.AdaGrad(learning_rate=0.01, epsilon=1e-8),
    "RMSProp": lambda: ko.RMSProp(epsilon=1e-8),
    "NesterovRMSProp": lambda: ko.NesterovRMSProp(epsilon=1e-8),
}


@contextlib.contextmanager
def dtype_policy(name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _train(optimizer, dtype, context=contextlib.nullcontext):
    """(losses per epoch, kernel before, kernel after) of a Dense(1) regression, every
    variable and computation in ``dtype``. Targets have a small component, so some
    squared gradients underflow in float16 (the case that gave 0/0)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [0.003]]) + 0.3).astype("float32")
    with dtype_policy(dtype):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, kernel_initializer="zeros")])
        assert model.layers[0].kernel.dtype == dtype
        model.compile(optimizer=optimizer, loss="mse")
        before = np.array(model.layers[0].kernel.numpy(), "float32")
        with context():
            losses = model.fit(x, y, batch_size=16, epochs=6, verbose=0, shuffle=False).history["loss"]
        after = np.array(model.layers[0].kernel.numpy(), "float32")
    return losses, before, after


def _assert_trained(losses, before, after):
    assert np.isfinite(after).all(), after
    assert np.isfinite(losses).all(), losses
    assert np.abs(after - before).max() > 1e-2, after  # 48 steps of ~1e-3 each: it moved
    # Adam moves each weight by about ε = 1e-3 a step: 48 steps lower this loss by
    # ~5% (measured 4.48 → 4.24 in float16), every epoch lower than the one before.
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.97 * losses[0], losses


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("dtype", HALF)
def test_default_adam_trains_in_half_precision(dtype):
    _assert_trained(*_train(ko.Adam(), dtype))


@pytest.mark.parametrize("path", ["fused", "ops"])
@pytest.mark.parametrize("dtype", HALF)
def test_default_adam_trains_in_half_precision_on_each_tf_path(dtype, path):
    from keras_optlab import accel

    _assert_trained(*_train(ko.Adam(), dtype, lambda: accel.paths(path)))


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", sorted(EPSILON_OPTIMIZERS))
def test_small_epsilon_does_not_underflow(name, dtype):
    """A gradient whose square underflows (r = 0) with δ = 1e-8 (0 in float16): finite."""
    optimizer = EPSILON_OPTIMIZERS[name]()
    # weights near 0.05, where bfloat16's spacing (2⁻¹³) resolves a step of ~1e-3
    variable = keras.Variable(np.full(3, 0.05), dtype=dtype)
    start = np.array(variable.numpy(), "float32")
    grads = [keras.ops.convert_to_tensor(np.array([1e-4, 0.0, 0.5]), dtype)]
    for _ in range(3):
        optimizer.apply(grads, [variable])
    value = np.array(variable.numpy(), "float32")
    assert np.isfinite(value).all(), value
    assert value[2] < start[2] and value[1] == start[1], value


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("dtype", HALF)
def test_adam_step_scalars_are_not_formed_in_half_precision(dtype):
    step_size, epsilon = rules.adam_step_scalars(1e-3, 0.9, 0.999, 1e-8, 1, dtype)
    assert keras.backend.standardize_dtype(step_size.dtype) == dtype
    # ε √(1 − ρ₂) / (1 − ρ₁) = 1e-3 · 0.0316 / 0.1, rounded once to the dtype (rtol: 2⁻⁸)

    def wide(x):  # read through a float32 cast: torch cannot hand NumPy a bfloat16 tensor
        return float(keras.ops.convert_to_numpy(keras.ops.cast(x, "float32")))

    np.testing.assert_allclose(wide(step_size), 1e-3 * np.sqrt(1e-3) / 0.1, rtol=2**-8)
    assert wide(epsilon) > 0.0


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_epsilon_is_unchanged_in_single_and_double(dtype):
    variable = keras.Variable(np.ones(2), dtype=dtype)
    assert ko.Adam(epsilon=1e-8).rule_hyperparameters(variable, 1e-3)["epsilon"] == 1e-8
    assert ko.AdaGrad(epsilon=1e-7).rule_hyperparameters(variable, 1e-3)["epsilon"] == 1e-7


def test_half_precision_adam_does_not_take_tf_fused_kernel():
    from keras_optlab import accel

    for dtype, expected in (("bfloat16", "ops"), ("float16", "ops"), ("float32", "fused")):
        variable = keras.Variable(np.ones(2), dtype=dtype)
        optimizer = ko.Adam()
        with accel.paths("fused"):
            optimizer.build([variable])
            assert optimizer.update_path(variable) == expected, dtype
