"""Every initializer through Keras serialization, `.keras` files and SavedModel export."""

import keras
import numpy as np
import pytest

from keras_optlab.initializers import (
    FanInUniform,
    GateBias,
    MarginalBias,
    NormalizedUniform,
    Scaled,
    SparseK,
)

ALL = [
    (FanInUniform(scale=0.5, seed=1), (6, 4)),
    (NormalizedUniform(scale=2.0, seed=2), (3, 3, 2, 4)),
    (SparseK(k=3, scale=0.7, seed=3), (8, 5)),
    (Scaled(FanInUniform(seed=4), 2.0), (6, 4)),
    (Scaled("ones", 0.5), (2, 3)),
    (GateBias.lstm(forget=1.0), (8,)),
    (GateBias.gru(reset=-1.0), (2, 6)),
    (GateBias.gate(0.8), (5,)),
    (MarginalBias.from_labels([0, 1, 1, 2]), (3,)),
    (MarginalBias.from_targets([[1.0, 2.0], [3.0, 5.0]]), (2,)),
]


def draw(initializer, shape):
    return keras.ops.convert_to_numpy(initializer(shape))


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("initializer, shape", ALL, ids=[type(i).__name__ for i, _ in ALL])
def test_config_round_trip_and_keras_serialization(initializer, shape):
    config = initializer.get_config()
    cls = type(initializer)
    expected = draw(initializer, shape)
    np.testing.assert_array_equal(draw(cls.from_config(config), shape), expected)
    serialized = keras.initializers.serialize(initializer)
    assert serialized["registered_name"] == f"keras_optlab>{cls.__name__}"
    np.testing.assert_array_equal(draw(keras.initializers.deserialize(serialized), shape), expected)
    if cls is not Scaled:  # Scaled's config holds a serialized dict, handled by from_config
        np.testing.assert_array_equal(draw(cls(**config), shape), expected)


def model_using_every_initializer():
    inputs = keras.Input((6, 4))
    conv = keras.layers.Conv1D(4, 3, padding="same", kernel_initializer=NormalizedUniform(seed=2))
    h = conv(inputs)
    h = keras.layers.LSTM(
        4,
        return_sequences=True,
        unit_forget_bias=False,
        kernel_initializer=SparseK(k=3, seed=3),
        recurrent_initializer=Scaled(FanInUniform(seed=4), 2.0),
        bias_initializer=GateBias.lstm(forget=1.0),
    )(h)
    h = keras.layers.GRU(
        3,
        kernel_initializer=FanInUniform(seed=5),
        recurrent_initializer=NormalizedUniform(seed=6),
        bias_initializer=GateBias.gru(update=1.0, candidate=0.5),
    )(h)
    h = keras.layers.Dense(5, activation="sigmoid", kernel_initializer=FanInUniform(seed=1),
                           bias_initializer=GateBias.gate(0.8))(h)
    outputs = keras.layers.Dense(3, activation="softmax", kernel_initializer=Scaled("ones", 0.1),
                                 bias_initializer=MarginalBias.from_labels([0, 1, 1, 2]))(h)
    return keras.Model(inputs, outputs)


def test_keras_file_round_trip(tmp_path):
    model = model_using_every_initializer()
    x = np.random.default_rng(0).normal(size=(4, 6, 4)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    for before, after in zip(model.layers, loaded.layers):
        for attr in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            if hasattr(before, attr):
                assert type(getattr(after, attr)) is type(getattr(before, attr))
                assert getattr(after, attr).get_config() == getattr(before, attr).get_config()
    # The reloaded initializers rebuild the same weights (all seeded or constant).
    rebuilt = keras.Model.from_config(model.get_config())
    for a, b in zip(rebuilt.weights, model.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_savedmodel_export_serves_same_predictions(tmp_path):
    import tensorflow as tf

    model = model_using_every_initializer()
    x = np.random.default_rng(1).normal(size=(4, 6, 4)).astype("float32")
    model.export(str(tmp_path / "export"), verbose=False)
    # Keep the loaded object alive while serving: its variables die with it.
    reloaded = tf.saved_model.load(str(tmp_path / "export"))
    served = reloaded.serve(x)
    np.testing.assert_allclose(served.numpy(), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
