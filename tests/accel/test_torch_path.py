"""The PyTorch speed path (keras_optlab.accel_torch): in-place updates, bit for bit.

On the torch backend, float32/float64 variables of the seven first-order optimizers
are updated in place (path ``"inplace"``) instead of by the keras.ops rule. These tests
check that it is the path taken, and that weights and every optimizer variable agree
with the keras.ops rule in every bit, with and without ``skip_nonfinite`` (a NaN step
included), through clipping, weight decay and EMA, and through ``fit``.

Tolerance: none. The path runs the rule's torch kernels in the rule's order on the
same scalars; only where results are written changes.

``clipping.all_finite`` (torch: one ``aminmax`` per tensor) is checked here on every
backend, for every float dtype and ±Inf/NaN anywhere.
"""

import keras
import numpy as np
import pytest
from keras import ops

import keras_optlab as ko
from keras_optlab import clipping

pytestmark = pytest.mark.backend_agnostic

on_torch = pytest.mark.skipif(keras.backend.backend() != "torch", reason="the PyTorch backend's speed path")

NAMES = ("SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "NesterovRMSProp", "Adam")
# (100_000,) is far above torch's vector width: vectorised bodies and tails both run.
SHAPES = [(7, 5), (5,), (3, 3, 2, 4), (100_000,)]
STEPS = 20
NAN_STEP = 7


def _optimizer(name, **kwargs):
    return getattr(ko, name)(learning_rate=0.05, **kwargs)


def _gradients(dtype, nan=False):
    rng = np.random.default_rng(3)
    steps = [[rng.normal(size=s).astype(dtype) for s in SHAPES] for _ in range(STEPS)]
    if nan:
        steps[NAN_STEP][1] = steps[NAN_STEP][1] * np.nan
        steps[NAN_STEP + 3][3][17] = np.inf
    return steps


def _run(optimizer, dtype, steps, path):
    """Every variable's bytes (weights, then the optimizer's) after the run on ``path``."""
    import torch

    from keras_optlab import accel_torch

    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=s), dtype=dtype) for s in SHAPES]
    with accel_torch.paths(path):
        optimizer.build(variables)
        assert {optimizer.update_path(v) for v in variables} == {path}
        for grads in steps:
            with torch.no_grad():
                optimizer.apply([ops.convert_to_tensor(g) for g in grads], variables)
    return [ops.convert_to_numpy(v) for v in variables + list(optimizer.variables)]


def _assert_bits_equal(ours, rule):
    assert len(ours) == len(rule)
    for a, b in zip(ours, rule):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes(), np.flatnonzero(a.view(np.uint8) != b.view(np.uint8))[:5]


@on_torch
@pytest.mark.parametrize("skip", [False, True], ids=["plain", "skip_nonfinite"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_inplace_equals_keras_ops_rule_bit_for_bit(name, dtype, skip):
    steps = _gradients(dtype, nan=skip)
    optimizers = [_optimizer(name, skip_nonfinite=skip) for _ in range(2)]
    ours = _run(optimizers[0], dtype, steps, "inplace")
    rule = _run(optimizers[1], dtype, steps, "ops")
    _assert_bits_equal(ours, rule)
    assert not np.allclose(ours[0], np.random.default_rng(0).normal(size=SHAPES[0]))  # it moved
    if skip:
        assert int(ops.convert_to_numpy(optimizers[0].skipped_steps)) == 2
        assert int(ops.convert_to_numpy(optimizers[0].iterations)) == STEPS - 2


@on_torch
@pytest.mark.parametrize("name", NAMES)
def test_inplace_with_clipping_decay_ema_and_skip(name):
    """Weight decay and EMA make skip_nonfinite snapshot the state instead of
    selecting in the rule: the in-place writes must not reach the snapshots."""
    kwargs = dict(global_clipnorm=1.0, weight_decay=0.01, use_ema=True, skip_nonfinite=True)
    steps = _gradients("float64", nan=True)
    ours = _run(_optimizer(name, **kwargs), "float64", steps, "inplace")
    rule = _run(_optimizer(name, **kwargs), "float64", steps, "ops")
    _assert_bits_equal(ours, rule)


@on_torch
@pytest.mark.parametrize("name", NAMES)
def test_apply_takes_the_inplace_path(name, monkeypatch):
    from keras_optlab import accel_torch

    calls = []
    rule = _optimizer(name).RULE
    original = accel_torch.UPDATES[rule]
    monkeypatch.setitem(accel_torch.UPDATES, rule, lambda *a: calls.append(1) or original(*a))
    optimizer = _optimizer(name)
    variables = [keras.Variable(np.ones(s), dtype="float32") for s in SHAPES]
    optimizer.apply([ops.ones(s) for s in SHAPES], variables)
    assert len(calls) == len(SHAPES)
    with accel_torch.paths("ops"):
        optimizer.apply([ops.ones(s) for s in SHAPES], variables)
    assert len(calls) == len(SHAPES)


@on_torch
def test_update_paths():
    from keras_optlab import accel_torch

    assert ko.Adam().update_path(keras.Variable(np.ones(3), dtype="float32")) == "inplace"
    assert ko.SGD().update_path(keras.Variable(np.ones(3), dtype="float64")) == "inplace"
    # float16/bfloat16 keep the keras.ops rule (torch computes them through float32).
    assert ko.Momentum().update_path(keras.Variable(np.ones(3), dtype="float16")) == "ops"
    assert ko.Adam().update_path(keras.Variable(np.ones(3), dtype="bfloat16")) == "ops"
    with accel_torch.paths("ops"):
        assert ko.Adam().update_path(keras.Variable(np.ones(3), dtype="float32")) == "ops"
    with pytest.raises(ValueError, match="one of"):
        with accel_torch.paths("kernel"):
            pass


@on_torch
def test_a_subclass_with_its_own_update_step_keeps_it():
    class Halved(ko.SGD):
        def update_step(self, gradient, variable, learning_rate):
            self.assign_add(variable, ops.multiply(gradient, -0.5))

    optimizer = Halved(learning_rate=0.1)
    variable = keras.Variable(np.ones(3), dtype="float32")
    assert optimizer.update_path(variable) == "ops"
    optimizer.apply([ops.ones(3)], [variable])
    np.testing.assert_array_equal(ops.convert_to_numpy(variable), 0.5)


@on_torch
def test_fit_on_the_inplace_path_equals_the_rule():
    from keras_optlab import accel_torch

    x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    y = x @ np.arange(8, dtype="float32")[:, None]
    weights = []
    for path in ("inplace", "ops"):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)])
        model.compile(optimizer=ko.Adam(learning_rate=0.01, global_clipnorm=1.0, skip_nonfinite=True), loss="mse")
        with accel_torch.paths(path):
            model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
            assert model.optimizer.update_path(model.trainable_variables[0]) == path
        weights.append(model.get_weights())
    _assert_bits_equal(*weights)


# --------------------------------------------------------------------------- all_finite


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 17, -1])
def test_all_finite_on_backend_tensors(dtype, bad, where):
    values = np.linspace(-3.0, 3.0, 1001)
    if bad is not None:
        values[where] = bad
    big = np.full(5, 6.0e4 if dtype == "float16" else 1.0e30)  # large, finite: no overflow
    grads = [ops.convert_to_tensor(values, dtype), None, ops.convert_to_tensor(big, dtype)]
    assert bool(ops.convert_to_numpy(clipping.all_finite(grads))) is (bad is None)


@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
def test_all_finite_scalars_and_empty_tensors(bad):
    scalar = ops.convert_to_tensor(1.0 if bad is None else bad, "float32")
    empty = ops.zeros((0, 3), "float32")
    assert bool(ops.convert_to_numpy(clipping.all_finite([empty, scalar]))) is (bad is None)
    assert bool(ops.convert_to_numpy(clipping.all_finite([empty])))
