"""hvp(model, ...) against the exact Hessian (tests/curvature/exact.py), on every backend."""

import keras
import numpy as np
import pytest

from keras_optlab import curvature
from keras_optlab.curvature.hvp import model_oracle
from tests.curvature import exact

pytestmark = pytest.mark.backend_agnostic

# float64 models: double backprop and the Jacobian of the gradient are both exact up to
# rounding, a few ulps per operation on O(1) values over a few dozen terms: 1e-10
# relative leaves a large margin above 1e-16 and none for a wrong formula.
RTOL = exact.rtol(1e-10)


def _check_against_exact(model, x, y, loss_fn, sample_weight=None, reference=None):
    reference = model if reference is None else reference
    _, hessian = exact.gradient_and_hessian(loss_fn, reference.trainable_variables)
    rng = np.random.default_rng(0)
    for _ in range(3):
        v = rng.standard_normal(hessian.shape[0])
        hv = curvature.hvp(model, x, y, exact.split_like(v, model.trainable_variables), sample_weight=sample_weight)
        expected = hessian @ v
        np.testing.assert_allclose(exact.flatten(hv), expected, rtol=RTOL, atol=RTOL * np.abs(expected).max())


def test_mlp_matches_exact_hessian_with_regularization():
    model, x, y = exact.mlp()
    _check_against_exact(model, x, y, exact.mlp_loss(model, x, y))


def test_mlp_sample_weight():
    model, x, y = exact.mlp()
    w = np.linspace(0.1, 2.0, len(x))
    _check_against_exact(model, x, y, exact.mlp_loss(model, x, y, sample_weight=w), sample_weight=w)


def test_lstm_without_cudnn_matches_exact_hessian():
    model, x, y = exact.lstm()  # recurrence in a tf.while_loop
    unrolled, _, _ = exact.lstm(unroll=True)
    unrolled.set_weights(model.get_weights())
    _check_against_exact(model, x, y, exact.lstm_loss(unrolled, x, y), reference=unrolled)


def test_loss_and_gradient_of_model():
    model, x, y = exact.mlp()
    loss_fn = exact.mlp_loss(model, x, y)
    g, _ = exact.gradient_and_hessian(loss_fn, model.trainable_variables)
    loss, grads = curvature.model_loss_and_gradient(model, x, y)
    np.testing.assert_allclose(float(loss), float(loss_fn()), rtol=exact.rtol(1e-12))
    np.testing.assert_allclose(exact.flatten(grads), g, rtol=exact.rtol(1e-12), atol=exact.rtol(1e-14))


def test_gradient_hvp_is_hvp_along_the_gradient():
    model, x, y = exact.mlp()
    loss_fn = curvature.loss_closure(model, x, y)
    _, g, hg = curvature.gradient_hvp(loss_fn, model.trainable_variables)
    _, _, hv = curvature.hvp_from_loss(loss_fn, model.trainable_variables, g)
    np.testing.assert_allclose(exact.flatten(hg), exact.flatten(hv), rtol=exact.rtol(1e-12))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.function tracing counts")
def test_traced_once_per_model_and_retraced_after_recompile():
    model, x, y = exact.mlp()
    vectors = [np.ones(v.shape) for v in model.trainable_variables]
    for scale in (1.0, 2.0, 3.0):
        curvature.hvp(model, x, y, [scale * v for v in vectors])
    oracle = model_oracle(model)
    assert oracle.product.tracing_count() == 1  # one signature of (x, y), traced once
    before = exact.flatten(curvature.hvp(model, x, y, vectors))
    model.compile(loss="mae")  # another loss: a new oracle, a different Hessian
    assert model_oracle(model) is not oracle
    assert not np.allclose(exact.flatten(curvature.hvp(model, x, y, vectors)), before)


def test_frozen_layer_changes_the_variables():
    model, x, y = exact.mlp()
    model.layers[0].trainable = False
    model.compile(loss="mse")
    hv = curvature.hvp(model, x, y, [np.ones(v.shape) for v in model.trainable_variables])
    assert [tuple(h.shape) for h in hv] == [(4, 2), (2,)]


def test_errors_are_clear():
    model, x, y = exact.mlp()
    with pytest.raises(ValueError, match="list shaped like"):
        curvature.hvp(model, x, y, [np.ones((3, 4))])
    with pytest.raises(ValueError, match=r"must have shape \(3, 4\)"):
        curvature.hvp(model, x, y, [np.ones((4, 3))] + [np.ones(v.shape) for v in model.trainable_variables[1:]])
    uncompiled = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="no compiled loss"):
        curvature.hvp(uncompiled, x, y, [np.ones(v.shape) for v in uncompiled.trainable_variables])
    unbuilt = keras.Sequential([keras.layers.Dense(1)])
    unbuilt.compile(loss="mse")
    with pytest.raises(ValueError, match="not built"):
        curvature.hvp(unbuilt, x, y, [])
    with pytest.raises(TypeError, match="keras.Model"):
        curvature.hvp("model", x, y, [])
