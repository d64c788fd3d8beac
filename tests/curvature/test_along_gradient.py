"""gradient_curvature against exact gᵀg and gᵀHg, and Eq. 8.10 against a real step."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_optlab import curvature
from tests.curvature import exact

pytestmark = pytest.mark.backend_agnostic

# float64 throughout: the reference g and H are exact to rounding (see test_hvp.py).
RTOL = exact.rtol(1e-10)


def test_matches_exact_gradient_and_hessian():
    model, x, y = exact.mlp()
    loss_fn = exact.mlp_loss(model, x, y)
    g, hessian = exact.gradient_and_hessian(loss_fn, model.trainable_variables)
    report = curvature.gradient_curvature(model, x, y, learning_rate=0.3)
    g_norm_sq, ghg = g @ g, g @ hessian @ g
    assert set(report) == {"loss", "g_norm_sq", "gHg", "critical_learning_rate", "predicted_change"}
    np.testing.assert_allclose(report["loss"], float(loss_fn()), rtol=exact.rtol(1e-12))
    np.testing.assert_allclose(report["g_norm_sq"], g_norm_sq, rtol=RTOL)
    np.testing.assert_allclose(report["gHg"], ghg, rtol=RTOL)
    assert ghg > 0
    np.testing.assert_allclose(report["critical_learning_rate"], 2 * g_norm_sq / ghg, rtol=RTOL)
    np.testing.assert_allclose(report["predicted_change"], 0.5 * 0.3**2 * ghg - 0.3 * g_norm_sq, rtol=RTOL)


def test_without_learning_rate_no_prediction():
    model, x, y = exact.mlp()
    assert "predicted_change" not in curvature.gradient_curvature(model, x, y)


def test_prediction_is_the_second_order_change_of_a_gradient_step():
    # Eq. 8.10 is the Taylor expansion to second order: the actual change of a step
    # θ − εg differs from it by O(ε³), so halving ε divides the gap by about 8.
    model, x, y = exact.mlp()
    weights = model.get_weights()
    gaps = []
    for eps in (4e-2, 2e-2):  # gaps of ~1e-5: far above float32 rounding (torch, see exact.rtol)
        report = curvature.gradient_curvature(model, x, y, learning_rate=eps)
        _, grads = curvature.model_loss_and_gradient(model, x, y)
        for v, g in zip(model.trainable_variables, grads):
            v.assign(v - eps * g)
        actual = curvature.gradient_curvature(model, x, y)["loss"] - report["loss"]
        model.set_weights(weights)
        gaps.append(abs(actual - report["predicted_change"]))
        assert gaps[-1] < 1e-2 * abs(report["predicted_change"])
    assert 6 < gaps[0] / gaps[1] < 10


def test_negative_curvature_gives_infinite_critical_learning_rate():
    # J = −mean(ŷ²) for a linear ŷ: H = −2 XᵀX / N is negative semi-definite.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(loss=lambda y_true, y_pred: -ops.mean(ops.square(y_pred)))
    x = np.random.default_rng(0).standard_normal((8, 3))
    report = curvature.gradient_curvature(model, x, np.zeros((8, 1)), learning_rate=0.1)
    assert report["gHg"] < 0
    assert report["critical_learning_rate"] == math.inf
    assert report["predicted_change"] < 0


def test_bad_learning_rate_is_refused():
    model, x, y = exact.mlp()
    with pytest.raises(ValueError, match="learning_rate=-1"):
        curvature.gradient_curvature(model, x, y, learning_rate=-1)
    with pytest.raises(ValueError, match="learning_rate=inf"):
        curvature.gradient_curvature(model, x, y, learning_rate=float("inf"))
    with pytest.raises(TypeError, match="learning_rate='0.1'"):
        curvature.gradient_curvature(model, x, y, learning_rate="0.1")


def test_numpy_learning_rate_is_accepted():
    model, x, y = exact.mlp()
    report = curvature.gradient_curvature(model, x, y, learning_rate=np.float32(0.5))
    assert report["predicted_change"] == pytest.approx(0.5 * 0.25 * report["gHg"] - 0.5 * report["g_norm_sq"])
