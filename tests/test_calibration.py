"""activation_report and calibrate, checked against a NumPy forward pass of the same weights."""

import re

import keras
import numpy as np
import pytest

from keras_optlab.calibration import Report, activation_report, calibrate
from tests.helpers import Subclassed

pytestmark = pytest.mark.backend_agnostic


def tiny_tanh_mlp(depth=8, width=32, inputs=20, outputs=3, bias_std=0.0):
    tiny = keras.initializers.RandomNormal(stddev=1e-3, seed=0)
    layers = [keras.Input((inputs,))]
    for i in range(depth):
        layers.append(
            keras.layers.Dense(
                width,
                activation="tanh",
                kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3, seed=i),
                bias_initializer=keras.initializers.RandomNormal(stddev=bias_std, seed=100 + i),
            )
        )
    layers.append(keras.layers.Dense(outputs, kernel_initializer=tiny))
    return keras.Sequential(layers)


def numpy_pre_activations(model, x):
    """z_l = h_{l-1} W_l + b_l, h_l = act(z_l), computed from the weights alone."""
    h, zs = x.astype("float64"), []
    for layer in model.layers:
        kernel, bias = (keras.ops.convert_to_numpy(w).astype("float64") for w in layer.weights)
        z = h @ kernel + bias
        zs.append(z)
        h = np.tanh(z) if layer.activation is keras.activations.tanh else z
    return zs


@pytest.fixture
def batch():
    return np.random.default_rng(0).normal(size=(256, 20)).astype("float32")


def test_tiny_weights_vanish_then_calibration_puts_every_layer_on_target(batch):
    model = tiny_tanh_mlp()
    before = [z.std() for z in numpy_pre_activations(model, batch)]
    assert before[-1] < 1e-15  # the manual procedure's symptom: activations shrink away
    report = calibrate(model, batch, target_std=1.0, tolerance=0.05)
    assert len(report) == 9
    after = [z.std() for z in numpy_pre_activations(model, batch)]
    # Independent check of every layer, from the rescaled weights.
    np.testing.assert_allclose(after, 1.0, rtol=0.05)
    for row, std in zip(report, after):
        assert row["converged"]
        assert row["final_std"] == pytest.approx(std, rel=1e-4)
    # With zero biases the linear output scales exactly with the kernel: one step each.
    assert [row["iterations"] for row in report] == [1] * 9


def test_biases_need_more_than_one_step_and_still_converge(batch):
    # Biases that differ across units add a std the kernel scale does not touch, so the
    # first rescaling overshoots and the loop must repeat.
    model = tiny_tanh_mlp(depth=3, bias_std=0.5)
    report = calibrate(model, batch, target_std=2.0, tolerance=0.01, max_iterations=20)
    stds = [z.std() for z in numpy_pre_activations(model, batch)]
    np.testing.assert_allclose(stds[:3], 2.0, rtol=0.01)
    assert all(row["converged"] for row in report)
    assert min(row["iterations"] for row in report[:3]) > 1


def test_unreachable_target_is_reported_not_converged(batch):
    # Bias std 3 across units: the linear output's std never drops below ~3, whatever
    # the kernel scale, so a target of 1 cannot be met.
    model = tiny_tanh_mlp(depth=1, bias_std=3.0)
    report = calibrate(model, batch, target_std=1.0, tolerance=0.1, max_iterations=4)
    assert report[0]["iterations"] == 4
    assert report[0]["converged"] is False
    assert report[0]["final_std"] > 2.0


def test_functional_conv_model_and_untouched_other_layers():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 12, 12, 3)).astype("float32")
    inputs = keras.Input((12, 12, 3))
    small = keras.initializers.RandomNormal(stddev=1e-2, seed=1)
    h = keras.layers.Conv2D(8, 3, activation="relu", kernel_initializer=small)(inputs)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(8, 3, activation="relu", kernel_initializer=small)(h)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(4, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    report = calibrate(model, x, target_std=1.0, tolerance=0.05)
    assert [row["type"] for row in report] == ["Conv2D", "Conv2D", "Dense"]
    # Linear outputs checked from outside: the same layer with a linear activation.
    for row in report:
        layer = model.get_layer(row["layer"])
        layer_input = keras.Model(model.input, layer.input)(x)
        linear = type(layer).from_config({**layer.get_config(), "activation": "linear"})
        linear.build(layer_input.shape)
        linear.set_weights(layer.get_weights())
        std = keras.ops.convert_to_numpy(linear(layer_input)).std()
        assert std == pytest.approx(1.0, rel=0.05)
        assert row["converged"]
    # The fused activations are restored after calibration.
    assert model.layers[1].activation is keras.activations.relu


def test_unbuilt_sequential_is_built_on_the_batch(batch):
    model = keras.Sequential([keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(2)])
    report = calibrate(model, batch, target_std=0.5)
    assert len(report) == 2 and all(row["converged"] for row in report)


def test_activation_report_matches_numpy_forward(batch):
    model = tiny_tanh_mlp(depth=3)
    calibrate(model, batch)
    report = activation_report(model, batch)
    zs = numpy_pre_activations(model, batch)
    outputs = [np.tanh(z) for z in zs[:-1]] + [zs[-1]]
    assert report.columns == ["layer", "type", "mean", "std"]
    for row, out in zip(report, outputs):
        assert row["mean"] == pytest.approx(out.mean(), abs=1e-5)
        assert row["std"] == pytest.approx(out.std(), rel=1e-4)
    assert report[model.layers[0].name] is report[0]
    with pytest.raises(KeyError):
        report["no_such_layer"]


def test_activation_report_gradients_of_compiled_loss(batch):
    model = tiny_tanh_mlp(depth=2, outputs=3)
    calibrate(model, batch)
    model.compile(loss="mse")
    y = np.random.default_rng(2).normal(size=(256, 3)).astype("float32")
    report = activation_report(model, batch, y)
    assert report.columns[-2:] == ["grad_mean", "grad_std"]
    # For the mean squared error the gradient w.r.t. the output is 2(ŷ − y)/(N·D).
    y_pred = model.predict(batch, verbose=0).astype("float64")
    grad = 2 * (y_pred - y) / y.size
    assert report[-1]["grad_mean"] == pytest.approx(grad.mean(), rel=1e-3, abs=1e-9)
    assert report[-1]["grad_std"] == pytest.approx(grad.std(), rel=1e-3)
    assert all(row["grad_std"] > 0 for row in report)


def test_report_prints_as_a_table(batch):
    model = tiny_tanh_mlp(depth=2)
    text = str(activation_report(model, batch))
    lines = text.splitlines()
    assert lines[0].startswith("activation report")
    assert lines[1].split() == ["layer", "type", "mean", "std"]
    assert set(lines[2].replace(" ", "")) == {"-"}
    assert len(lines) == 3 + 3 and model.layers[0].name in lines[3]
    assert isinstance(calibrate(model, batch), Report)
    assert "converged" in str(calibrate(model, batch))


def test_gradients_need_a_compiled_loss(batch):
    model = tiny_tanh_mlp(depth=1)
    with pytest.raises(ValueError, match="compile"):
        activation_report(model, batch, np.zeros((256, 3)))


def test_constant_linear_output_is_an_error(batch):
    dead = keras.layers.Dense(4, kernel_initializer="zeros", name="dead")
    model = keras.Sequential([keras.Input((20,)), dead])
    with pytest.raises(ValueError, match="'dead'"):
        calibrate(model, batch)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"target_std": 0}, ValueError, "target_std=0"),
        ({"target_std": -1.0}, ValueError, "target_std=-1.0"),
        ({"target_std": float("inf")}, ValueError, "target_std=inf"),
        ({"target_std": "1"}, TypeError, "target_std='1'"),
        ({"tolerance": 0.0}, ValueError, "tolerance=0.0"),
        ({"tolerance": float("nan")}, ValueError, "tolerance=nan"),
        ({"max_iterations": 0}, ValueError, "max_iterations=0"),
        ({"max_iterations": 2.5}, TypeError, "max_iterations=2.5"),
        ({"max_iterations": True}, TypeError, "max_iterations=True"),
    ],
)
def test_bad_arguments(batch, kwargs, error, message):
    """TypeError for a wrong type, ValueError for a wrong value; the message echoes it."""
    with pytest.raises(error, match=re.escape(message)):
        calibrate(tiny_tanh_mlp(depth=1), batch, **kwargs)


def test_numpy_scalars_are_accepted(batch):
    report = calibrate(tiny_tanh_mlp(depth=2), batch, target_std=np.float32(1.0), tolerance=np.float64(0.1),
                       max_iterations=np.int64(10))
    assert all(row["converged"] for row in report)


# --- issue 13: no silent wrong answers -----------------------------------------------


def _probability_model(activation):
    units = 3 if activation == "softmax" else 1
    model = keras.Sequential(
        [
            keras.Input((20,)),
            keras.layers.Dense(16, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(seed=0)),
            keras.layers.Dense(units, activation=activation, kernel_initializer=keras.initializers.GlorotUniform(seed=1)),
        ]
    )
    loss = "sparse_categorical_crossentropy" if activation == "softmax" else "binary_crossentropy"
    model.compile(loss=loss)
    return model, keras.losses.get(loss)


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_probability_output_gradient_equals_a_tape_on_the_output(batch, activation):
    """Keras' cross-entropies read the logits hidden on a softmax/sigmoid output, so the
    output itself was off the loss's path: its gradient was None and reported as 0."""
    model, loss_fn = _probability_model(activation)
    labels = np.random.default_rng(3).integers(0, 3 if activation == "softmax" else 2, size=(256, 1))
    y = labels if activation == "softmax" else labels.astype("float32")
    report = activation_report(model, batch, y)
    # Independent: a fresh tensor holding the output's values, the loss as a function of
    # it (compile's default reduction: the batch mean), differentiated by the backend.
    p = keras.ops.convert_to_numpy(model(batch))
    grad = _backend_gradient(lambda t: keras.ops.mean(loss_fn(y, t)), p).astype("float64")
    assert np.abs(grad).max() > 0
    assert report[-1]["grad_mean"] == pytest.approx(grad.mean(), rel=1e-4, abs=1e-9)
    assert report[-1]["grad_std"] == pytest.approx(grad.std(), rel=1e-4)
    assert report[-1]["grad_std"] > 0 and report[0]["grad_std"] > 0


def _backend_gradient(f, value):
    """∇f at ``value`` (NumPy), by the backend's own autodiff."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        t = tf.constant(value)
        with tf.GradientTape() as tape:
            tape.watch(t)
            out = f(t)
        return tape.gradient(out, t).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(f)(jax.numpy.asarray(value)))
    import torch

    t = torch.tensor(value, requires_grad=True)
    return torch.autograd.grad(f(t), t)[0].numpy()


def test_a_layer_the_loss_does_not_reach_is_missing_not_zero(batch):
    inputs = keras.Input((20,))
    cut = keras.layers.Dense(4, name="cut")(inputs)
    stopped = keras.layers.Lambda(keras.ops.stop_gradient, name="stop")(cut)
    outputs = keras.layers.Dense(2, name="out")(stopped)
    model = keras.Model(inputs, outputs)
    model.compile(loss="mse")
    report = activation_report(model, batch, np.zeros((256, 2), "float32"))
    assert report["cut"]["grad_mean"] is None and report["cut"]["grad_std"] is None
    assert report["out"]["grad_std"] > 0
    line = next(line for line in str(report).splitlines() if line.startswith("cut"))
    assert line.split()[-2:] == ["missing", "missing"]


def test_nan_weights_are_refused_not_reported_and_calibrate_restores_kernels(batch):
    model = tiny_tanh_mlp(depth=3)
    before = [keras.ops.convert_to_numpy(layer.kernel) for layer in model.layers]
    poisoned = model.layers[2]
    kernel = before[2].copy()
    kernel[0, 0] = np.nan
    poisoned.kernel.assign(kernel)
    with pytest.raises(ValueError, match=f"Layer '{poisoned.name}' gives a non-finite output"):
        activation_report(model, batch)
    with pytest.raises(ValueError, match=f"Layer '{poisoned.name}' gives a non-finite linear output"):
        calibrate(model, batch)
    # The two layers calibrated before the poisoned one are put back as they were.
    for layer, original in zip(model.layers[:2], before[:2]):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel), original)


@pytest.mark.parametrize("function", [calibrate, activation_report])
def test_subclassed_model_is_refused_naming_model(batch, function):
    model = Subclassed()
    model(batch)
    with pytest.raises(ValueError, match=re.escape("Received: model=Subclassed(name='sub'), a subclassed")):
        function(model, batch)


def test_a_model_with_nothing_to_calibrate_is_refused(batch):
    model = keras.Sequential([keras.Input((20,)), keras.layers.Activation("tanh", name="act")])
    with pytest.raises(ValueError, match=re.escape("with layers ['Activation']")):
        calibrate(model, batch)
