"""Off TensorFlow, every curvature function says at the call that it is TensorFlow
backend only, naming the backend (run in the JAX pass; on TensorFlow, the same calls work)."""

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
    return {
        "hvp": lambda m: curvature.hvp(m, x, y, [np.ones(v.shape) for v in m.trainable_variables]),
        "gradient_curvature": lambda m: curvature.gradient_curvature(m, x, y),
        "top_eigenvalues": lambda m: curvature.top_eigenvalues(m, x, y, max_iterations=3),
        "hessian_trace": lambda m: curvature.hessian_trace(m, x, y, num_samples=2),
        "model_loss_and_gradient": lambda m: curvature.model_loss_and_gradient(m, x, y),
        "loss_closure": lambda m: curvature.loss_closure(m, x, y),
        "loss_and_gradient": lambda m: curvature.loss_and_gradient(lambda: 0.0, m.trainable_variables),
        "gradient_hvp": lambda m: curvature.gradient_hvp(lambda: 0.0, m.trainable_variables),
        "hvp_from_loss": lambda m: curvature.hvp_from_loss(lambda: 0.0, m.trainable_variables, []),
        "gauss_newton_product": lambda m: curvature.gauss_newton_product(
            lambda: 0.0, lambda z: z, m.trainable_variables, []
        ),
    }


@pytest.mark.parametrize("name", sorted(_calls()))
def test_tensorflow_only_at_the_call(name):
    model, call = _model(), _calls()[name]
    if keras.backend.backend() == "tensorflow":
        if name in ("hvp", "gradient_curvature", "top_eigenvalues", "hessian_trace", "model_loss_and_gradient"):
            call(model)  # the TensorFlow path works
        return
    with pytest.raises(RuntimeError, match=f"curvature.{name} is TensorFlow backend only.*{keras.backend.backend()}"):
        call(model)
