"""keras_optlab.clipping alone, then through the optimizers' arguments."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_optlab as ko
from keras_optlab import clipping
from tests.optimizers.cases import NAMES, OPTIMIZERS

pytestmark = pytest.mark.backend_agnostic


def norms(grads):
    return [float(np.linalg.norm(np.asarray(g))) for g in grads]


def test_clip_by_norm_per_tensor():
    grads = [np.array([3.0, 4.0]), np.array([0.3, 0.4])]
    out, changed = clipping.clip_by_norm(grads, 1.0)
    np.testing.assert_allclose(norms(out), [1.0, 0.5], rtol=1e-7)
    np.testing.assert_allclose(np.asarray(out[0]), [0.6, 0.8], rtol=1e-7)  # direction kept
    assert bool(changed)
    _, changed = clipping.clip_by_norm(grads, 10.0)
    assert not bool(changed)


def test_clip_by_global_norm_hits_the_threshold():
    grads = [np.array([3.0, 0.0]), np.array([[0.0, 4.0]]), None]
    assert float(clipping.global_norm(grads)) == pytest.approx(5.0)
    out, changed = clipping.clip_by_global_norm(grads, 2.0)
    assert out[2] is None and bool(changed)
    assert float(clipping.global_norm(out)) == pytest.approx(2.0, rel=1e-6)
    out, changed = clipping.clip_by_global_norm(grads, 5.5)
    assert not bool(changed)
    np.testing.assert_array_equal(np.asarray(out[0]), grads[0])


def test_clip_by_value():
    out, changed = clipping.clip_by_value([np.array([-3.0, 0.5, 2.0])], 1.0)
    np.testing.assert_array_equal(np.asarray(out[0]), [-1.0, 0.5, 1.0])
    assert bool(changed)


def test_adaptive_clip_hand_worked_matrix():
    # Units are columns (every axis but the last). Column 0: ‖w‖ = 5, ‖g‖ = 10, so with
    # λ = 0.1 the bound is 0.5 and g shrinks by 0.05. Column 1: ‖w‖ = 0 → max(0, 1e-3),
    # bound 1e-4, ‖g‖ = 1 → factor 1e-4.
    w = np.array([[3.0, 0.0], [4.0, 0.0]])
    g = np.array([[6.0, 1.0], [8.0, 0.0]])
    (out,), changed = clipping.adaptive_clip([g], [w], 0.1)
    np.testing.assert_allclose(np.asarray(out), [[0.3, 1e-4], [0.4, 0.0]], rtol=1e-12)
    assert bool(changed)


def test_adaptive_clip_vector_units_are_entries():
    w = np.array([2.0, -0.5, 0.0, 1.0])
    g = np.array([1.0, -1.0, 0.5, 0.1])
    (out,), _ = clipping.adaptive_clip([g], [w], 0.2)
    # bounds 0.2·max(|w|, 1e-3) = [0.4, 0.1, 2e-4, 0.2]; the last entry is inside its bound.
    np.testing.assert_allclose(np.asarray(out), [0.4, -0.1, 2e-4, 0.1], rtol=1e-12)


def test_adaptive_clip_conv_kernel_unit_is_output_channel():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 3, 4, 5))
    g = 10 * rng.normal(size=(3, 3, 4, 5))
    (out,), _ = clipping.adaptive_clip([g], [w], 0.01)
    out = np.asarray(out)
    w_norm = np.sqrt((w**2).sum(axis=(0, 1, 2)))
    out_norm = np.sqrt((out**2).sum(axis=(0, 1, 2)))
    np.testing.assert_allclose(out_norm, 0.01 * w_norm, rtol=1e-12)


def test_zero_gradient_is_left_alone():
    (out,), changed = clipping.adaptive_clip([np.zeros((2, 3))], [np.ones((2, 3))], 0.1)
    np.testing.assert_array_equal(np.asarray(out), np.zeros((2, 3)))
    assert not bool(changed)


def test_all_finite():
    assert bool(clipping.all_finite([np.ones(3), None]))
    assert not bool(clipping.all_finite([np.ones(3), np.array([1.0, np.inf])]))
    assert not bool(clipping.all_finite([np.array([np.nan])]))


def test_half_precision_norm_does_not_overflow():
    g = ops.convert_to_tensor(np.full((4,), 300.0), "float16")  # 300² overflows float16
    assert float(clipping.global_norm([g])) == pytest.approx(600.0)
    (out,), _ = clipping.clip_by_norm([g], 1.0)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    assert float(np.linalg.norm(np.asarray(out, dtype="float64"))) == pytest.approx(1.0, rel=1e-3)


# ----------------------------------------------------------------- through optimizers


def one_step(opt, w, g):
    var = keras.Variable(np.asarray(w, dtype="float64"))
    opt.apply([ops.convert_to_tensor(np.asarray(g, dtype="float64"))], [var])
    return np.asarray(var), opt


@pytest.mark.parametrize(
    "kwargs, expected_step",
    [
        (dict(clipnorm=1.0), [0.6, 0.8]),
        (dict(global_clipnorm=2.0), [1.2, 1.6]),
        (dict(clipvalue=1.0), [1.0, 1.0]),
        (dict(adaptive_clipnorm=0.1), [0.05, 0.05]),  # 1-D: each entry a unit, bound 0.1·0.5
    ],
)
def test_sgd_step_is_clipped(kwargs, expected_step):
    w = np.array([0.5, 0.5])
    new, opt = one_step(ko.SGD(learning_rate=1.0, **kwargs), w, [3.0, 4.0])
    np.testing.assert_allclose(w - new, expected_step, rtol=1e-6)
    assert int(opt.clipped_steps) == 1
    assert float(opt.gradient_norm) == pytest.approx(5.0)  # measured before clipping


def test_agc_then_keras_clipping_compose():
    w = np.array([0.5, 0.5])
    new, opt = one_step(ko.SGD(learning_rate=1.0, adaptive_clipnorm=1.0, clipvalue=0.4), w, [3.0, 4.0])
    np.testing.assert_allclose(w - new, [0.4, 0.4], rtol=1e-7)  # AGC gives 0.5, 0.5; then ±0.4


def _clipped(g, clipnorm=None, global_clipnorm=None, clipvalue=None):
    """Keras' clipping of one float64 gradient, in NumPy."""
    if clipvalue is not None:
        return np.clip(g, -clipvalue, clipvalue)
    threshold = clipnorm if clipnorm is not None else global_clipnorm
    return g * threshold / max(np.linalg.norm(g), threshold)


# Thresholds exact in float32: Keras rounds Python-float thresholds through float32.
@pytest.mark.parametrize("kwargs", [dict(clipnorm=0.75), dict(global_clipnorm=0.75), dict(clipvalue=0.25)])
def test_same_clipping_as_keras(kwargs):
    """Ours equals the float64 NumPy clipping to roundoff on every backend, and Keras'
    own: to roundoff on TensorFlow and JAX; on torch Keras 3.15 computes its norm clip
    of float64 in float32 (ops.maximum resolves float64 to floatx there), so Keras is
    held to float32's 1e-6 only, and ours to roundoff."""
    rng = np.random.default_rng(3)
    w, g = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    ours, _ = one_step(ko.SGD(learning_rate=0.5, **kwargs), w, g)
    theirs, _ = one_step(keras.optimizers.SGD(learning_rate=0.5, **kwargs), w, g)
    want = w - np.float32(0.5) * _clipped(g, **kwargs)
    np.testing.assert_allclose(ours, want, rtol=1e-12)
    keras_rtol = 1e-6 if keras.backend.backend() == "torch" else 1e-12
    np.testing.assert_allclose(theirs, want, rtol=keras_rtol)


def test_unclipped_steps_are_not_counted():
    _, opt = one_step(ko.SGD(learning_rate=1.0, clipnorm=10.0), [0.0, 0.0], [3.0, 4.0])
    assert int(opt.clipped_steps) == 0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_skip_nonfinite_leaves_everything_untouched(name, bad):
    rng = np.random.default_rng(0)
    opt = OPTIMIZERS[name](skip_nonfinite=True, use_ema=True, global_clipnorm=1.0)
    variables = [keras.Variable(rng.normal(size=(3, 2))), keras.Variable(rng.normal(size=(2,)))]
    good = [rng.normal(size=(3, 2)), rng.normal(size=(2,))]
    for _ in range(3):
        opt.apply([ops.convert_to_tensor(g, "float32") for g in good], variables)
    snapshot = [np.array(v) for v in variables + opt.variables if v is not opt.gradient_norm]
    poisoned = [good[0].copy(), good[1]]
    poisoned[0][1, 1] = bad
    opt.apply([ops.convert_to_tensor(g, "float32") for g in poisoned], variables)
    after = [np.array(v) for v in variables + opt.variables if v is not opt.gradient_norm]
    changed = [
        v.path for v, a, b in zip(variables + [v for v in opt.variables if v is not opt.gradient_norm], snapshot, after)
        if not np.array_equal(a, b)
    ]
    assert changed == [opt.skipped_steps.path]
    assert int(opt.skipped_steps) == 1 and int(opt.iterations) == 3
    assert not np.isfinite(float(opt.gradient_norm))  # telemetry shows what was refused
    opt.apply([ops.convert_to_tensor(g, "float32") for g in good], variables)  # and it goes on
    assert int(opt.iterations) == 4 and all(np.isfinite(np.asarray(v)).all() for v in variables)


@pytest.mark.parametrize("name", NAMES)
def test_without_skip_a_nan_gradient_poisons_the_weights(name):
    """Documented behaviour: skip_nonfinite=False applies the step as it is."""
    var = keras.Variable(np.ones((2, 2), dtype="float32"))
    opt = OPTIMIZERS[name](track_gradient_norm=True)
    opt.apply([ops.convert_to_tensor(np.array([[np.nan, 1.0], [1.0, 1.0]], dtype="float32"))], [var])
    assert np.isnan(np.asarray(var)[0, 0])
    assert np.isnan(float(opt.gradient_norm))
    assert int(opt.skipped_steps) == 0


def test_gradient_norm_is_measured_only_when_asked_or_clipping():
    g = [ops.convert_to_tensor(np.array([3.0, 4.0]), "float32")]
    plain = ko.SGD(0.1)
    plain.apply(g, [keras.Variable(np.zeros(2, "float32"))])
    assert np.isnan(float(plain.gradient_norm))  # "not measured", never a fake 0
    tracked = ko.SGD(0.1, track_gradient_norm=True)
    tracked.apply(g, [keras.Variable(np.zeros(2, "float32"))])
    assert float(tracked.gradient_norm) == pytest.approx(5.0)
    assert int(tracked.clipped_steps) == 0
    clipped = ko.SGD(0.1, clipvalue=10.0)
    clipped.apply(g, [keras.Variable(np.zeros(2, "float32"))])
    assert float(clipped.gradient_norm) == pytest.approx(5.0)


def test_sparse_gradients_are_applied_densely():
    """An Embedding's IndexedSlices gradient trains (TF); slots decay on every row."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("IndexedSlices exist on TensorFlow only")
    import tensorflow as tf

    var = keras.Variable(np.ones((4, 2), dtype="float32"))
    opt = ko.Momentum(learning_rate=0.5, momentum=0.5, clipnorm=1.0)
    slices = tf.IndexedSlices(tf.constant([[3.0, 4.0]]), tf.constant([1]), tf.constant([4, 2]))
    opt.apply([slices], [var])
    np.testing.assert_allclose(np.asarray(var)[1], [1 - 0.3, 1 - 0.4], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(var)[[0, 2, 3]], 1.0)
    assert int(opt.clipped_steps) == 1
