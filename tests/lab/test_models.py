"""keras_optlab.lab.models.digits_mlp: the one digits MLP builder and its kernel schemes."""

import keras
import numpy as np
import pytest

from keras_optlab.initializers import FanInUniform
from keras_optlab.lab import build_mlp, digits_mlp


def _kernels(model):
    return [keras.ops.convert_to_numpy(layer.kernel) for layer in model.layers]


def test_shape_names_and_activations():
    model = digits_mlp((16, 8), "tanh")
    assert [layer.name for layer in model.layers] == ["hidden_0", "hidden_1", "output"]
    assert [tuple(k.shape) for k in _kernels(model)] == [(64, 16), (16, 8), (8, 10)]
    assert model.layers[0].activation is keras.activations.tanh
    assert model.layers[-1].activation is keras.activations.softmax
    assert model.name == "mlp" and not model.compiled
    logits = digits_mlp((4,), output_activation=None, input_dim=3, num_classes=2, name="tiny")
    assert logits.layers[-1].activation is keras.activations.linear
    assert logits.name == "tiny" and logits.predict(np.zeros((1, 3)), verbose=0).shape == (1, 2)


def test_default_kernels_are_glorot_seeded_per_layer():
    model = digits_mlp((8, 8), seed=5)
    for i, kernel in enumerate(_kernels(model)):
        expected = keras.initializers.GlorotUniform(seed=5 + i)(kernel.shape)
        np.testing.assert_array_equal(kernel, keras.ops.convert_to_numpy(expected))
    first, second = _kernels(model)[:2]
    assert not np.array_equal(first[:8], second)  # distinct draws for layers of one shape


def test_one_instance_for_every_layer_is_the_race_model():
    same = digits_mlp((8, 8), kernel_initializer=keras.initializers.GlorotUniform(seed=3), input_dim=8)
    first, second, _ = _kernels(same)
    np.testing.assert_array_equal(first, second)  # an int-seeded instance: same values per shape
    shared = digits_mlp((8, 8), kernel_initializer=keras.initializers.GlorotUniform(seed=3))
    for a, b in zip(_kernels(build_mlp(64, 10, hidden_units=(8, 8), seed=3)), _kernels(shared)):
        np.testing.assert_array_equal(a, b)


def test_a_name_draws_from_the_global_seed():
    keras.utils.set_random_seed(7)
    a = digits_mlp((8,), kernel_initializer="glorot_uniform")
    keras.utils.set_random_seed(7)
    b = digits_mlp((8,), kernel_initializer="glorot_uniform")
    for x, y in zip(_kernels(a), _kernels(b)):
        np.testing.assert_array_equal(x, y)


def test_a_function_of_the_layer_index():
    model = digits_mlp((8,), kernel_initializer=lambda i: FanInUniform(scale=2.0, seed=10 + i))
    expected = FanInUniform(scale=2.0, seed=11)((8, 10))
    np.testing.assert_array_equal(_kernels(model)[1], keras.ops.convert_to_numpy(expected))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"hidden_units": 64}, TypeError, "hidden_units=64"),
        ({"hidden_units": "64"}, TypeError, "hidden_units='64'"),
        ({"hidden_units": (8, 0)}, ValueError, "hidden_units=0"),
        ({"hidden_units": (8.0,)}, TypeError, "hidden_units=8.0"),
        ({"seed": "0"}, TypeError, "seed='0'"),
        ({"input_dim": 0}, ValueError, "input_dim=0"),
        ({"num_classes": True}, TypeError, "num_classes=True"),
        ({"kernel_initializer": 3}, TypeError, "kernel_initializer=3"),
    ],
)
def test_arguments_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        digits_mlp(**kwargs)


def test_numpy_scalars_are_accepted():
    model = digits_mlp((np.int64(4),), seed=np.int32(1), num_classes=np.int64(3))
    assert [tuple(k.shape) for k in _kernels(model)] == [(64, 4), (4, 3)]
