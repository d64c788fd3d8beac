"""Every curvature function runs on TensorFlow, JAX and PyTorch (this file runs in each
backend's pass), and on a backend without automatic differentiation (NumPy, OpenVINO)
says so at the call, naming the backend."""

import keras
import numpy as np
import pytest

from keras_optlab import curvature

pytestmark = pytest.mark.backend_agnostic


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(loss="mse")
    return model


def _calls():
    x, y = np.ones((4, 3)), np.ones((4, 2))

    def loss_of(m):
        return lambda: keras.ops.mean(m(x) ** 2)

    vectors = lambda m: [np.ones(v.shape) for v in m.trainable_variables]  # noqa: E731
    return {
        "hvp": lambda m: curvature.hvp(m, x, y, vectors(m)),
        "gradient_curvature": lambda m: curvature.gradient_curvature(m, x, y),
        "top_eigenvalues": lambda m: curvature.top_eigenvalues(m, x, y, max_iterations=3),
        "hessian_trace": lambda m: curvature.hessian_trace(m, x, y, num_samples=2),
        "model_loss_and_gradient": lambda m: curvature.model_loss_and_gradient(m, x, y),
        "loss_closure": lambda m: curvature.loss_closure(m, x, y),
        "loss_and_gradient": lambda m: curvature.loss_and_gradient(loss_of(m), m.trainable_variables),
        "gradient_hvp": lambda m: curvature.gradient_hvp(loss_of(m), m.trainable_variables),
        "hvp_from_loss": lambda m: curvature.hvp_from_loss(loss_of(m), m.trainable_variables, vectors(m)),
        "gauss_newton_product": lambda m: curvature.gauss_newton_product(
            lambda: m(x), lambda z: keras.ops.mean(z**2), m.trainable_variables, vectors(m)
        ),
    }


@pytest.mark.parametrize("name", sorted(_calls()))
def test_runs_on_this_backend(name):
    model, call = _model(), _calls()[name]
    assert call(model) is not None


@pytest.mark.parametrize("name", sorted(_calls()))
def test_backend_without_autodiff_refused_at_the_call(name, monkeypatch):
    model, call = _model(), _calls()[name]
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    with pytest.raises(RuntimeError, match=f"curvature.{name} runs on the TensorFlow, JAX and PyTorch.*'numpy'"):
        call(model)
