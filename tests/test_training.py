"""SecondOrder: the wrapper that lets Newton see the loss, through Keras' own API, on
TensorFlow, JAX (a stateless train step) and PyTorch (its eager train step)."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_optlab as ko
from tests.helpers import LOSS, digits_subset, make_mlp, with_null_optimizer

pytestmark = pytest.mark.backend_agnostic


def tiny_classifier(seed=0):
    inner = make_mlp(seed, hidden=8)
    return inner, ko.SecondOrder(inner)


@pytest.mark.parametrize("solver", ["exact", "cg"])
def test_newton_fit_lowers_loss_and_updates_metrics(solver):
    x, y = digits_subset(256)
    inner, model = tiny_classifier()
    model.compile(optimizer=ko.Newton(damping=1.0, solver=solver, adaptive_damping=True, max_cg_iterations=20),
                  loss=LOSS, metrics=["accuracy"])
    history = model.fit(x, y, batch_size=128, epochs=4, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0], history["loss"]
    assert history["accuracy"][-1] > 0.6
    assert model.optimizer.resolved_solver == solver
    evaluated = model.evaluate(x, y, verbose=0, return_dict=True)
    assert evaluated["loss"] == pytest.approx(float(LOSS(y, inner.predict(x, verbose=0))), rel=1e-5)


def test_first_order_optimizers_work_inside():
    x, y = digits_subset(256)
    _, model = tiny_classifier()
    model.compile(optimizer=ko.Adam(3e-3), loss=LOSS)
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0).history["loss"]
    assert history[-1] < history[0]


def test_keras_file_round_trip_and_resume(tmp_path):
    x, y = digits_subset(128)
    inner, model = tiny_classifier()
    model.compile(optimizer=ko.Newton(damping=0.5, solver="cg", adaptive_damping=True, max_cg_iterations=10), loss=LOSS)
    model.fit(x, y, batch_size=128, epochs=2, verbose=0)
    model.save(tmp_path / "newton.keras")
    loaded = keras.saving.load_model(tmp_path / "newton.keras")
    assert isinstance(loaded, ko.SecondOrder) and isinstance(loaded.optimizer, ko.Newton)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # directions, damping, step
    model.fit(x, y, batch_size=128, epochs=1, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=128, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.xfail(
    keras.backend.backend() == "torch", strict=True, raises=Exception,
    reason="Keras 3.15's export fails on torch 2.13 for a plain keras.Sequential too "
    "(torch.export: structure of `inputs` and `dynamic_shapes` mismatch)",
)
def test_export_serves_the_wrapped_model(tmp_path):
    """export() writes a SavedModel that TensorFlow serves without keras_optlab (from the
    TensorFlow and JAX backends; both need TensorFlow installed to export)."""
    x, y = digits_subset(64)
    inner, model = tiny_classifier()
    model.compile(optimizer=ko.Newton(damping=1.0), loss=LOSS)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    model.export(str(tmp_path / "exported"), verbose=False)
    np.save(tmp_path / "x.npy", x)
    code = (
        "import numpy as np, tensorflow as tf, sys;"
        f"m = tf.saved_model.load({str(tmp_path / 'exported')!r});"
        f"np.save({str(tmp_path / 'out.npy')!r}, m.serve(np.load({str(tmp_path / 'x.npy')!r})).numpy());"
        "assert 'keras_optlab' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), inner.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_wrapper_validates_its_argument():
    with pytest.raises(TypeError, match="keras.Model"):
        ko.SecondOrder("not a model")


def test_a_saved_compile_config_without_optimizer_is_refused_naming_it(tmp_path):
    x, y = digits_subset(64)
    inner, model = tiny_classifier()
    model.compile(optimizer=ko.Newton(damping=1.0), loss=LOSS)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    model.save(tmp_path / "saved.keras")
    with_null_optimizer(tmp_path / "saved.keras", tmp_path / "edited.keras")
    with pytest.raises(ValueError, match=r"no `optimizer`.*compile=False.*Received: optimizer=None"):
        keras.saving.load_model(tmp_path / "edited.keras")
    loaded = keras.saving.load_model(tmp_path / "edited.keras", compile=False)  # the way out it names
    assert isinstance(loaded, ko.SecondOrder) and not loaded.compiled
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_gauss_newton_on_probabilities_splits_at_the_logits():
    """Newton-CG with curvature="gauss_newton" on a softmax output under a cross-entropy
    on probabilities takes the step of the logits' Gauss-Newton matrix: the same step as
    the linear model compiled with from_logits=True (at the probabilities G would be the
    empirical Fisher, a different matrix)."""
    x, y = digits_subset(64)
    steps = []
    for activation, from_logits in (("softmax", False), (None, True)):
        keras.utils.set_random_seed(3)
        inner = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation=activation)])
        model = ko.SecondOrder(inner)
        model.compile(optimizer=ko.Newton(solver="cg", curvature="gauss_newton", damping=1.0, max_cg_iterations=5),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits))
        before = [np.asarray(w) for w in inner.get_weights()]
        model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)
        steps.append([a - np.asarray(b) for a, b in zip(inner.get_weights(), before)])
    for a, b in zip(*steps):
        # float32: the two losses differ by rounding (log of a softmax vs log-sum-exp).
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-6)
