"""Auto-naming as Keras does it (issue 13, item 10).

Before: every constructor defaulted to its base name (``name="adam"``), so two unnamed
``Adam()`` were both ``adam``. Now ``name=None`` gives Keras' auto-naming on Keras'
own counter (``keras.backend.get_uid``): ``adam``, ``adam_1``, …
"""

import keras
import numpy as np
import pytest

import keras_optlab as ko
from tests.helpers import KERAS_VERSION
from tests.optimizers.cases import NAMES, OPTIMIZERS

pytestmark = pytest.mark.backend_agnostic

BASE = {
    "SGD": "sgd",
    "Momentum": "momentum",
    "Nesterov": "nesterov",
    "AdaGrad": "adagrad",
    "RMSProp": "rmsprop",
    "NesterovRMSProp": "nesterov_rmsprop",
    "Adam": "adam",
}


@pytest.mark.parametrize("name", NAMES)
def test_unnamed_optimizers_get_unique_names(name):
    keras.backend.clear_session()  # resets Keras' name counters
    first, second, third = (OPTIMIZERS[name]() for _ in range(3))
    assert [first.name, second.name, third.name] == [BASE[name], f"{BASE[name]}_1", f"{BASE[name]}_2"]


def test_the_counter_is_keras_own():
    keras.backend.clear_session()
    keras.backend.get_uid("adam")  # Keras' public counter, the one its layers draw from
    assert ko.Adam().name == "adam_1"
    if KERAS_VERSION >= (3, 15):  # Keras' own optimizers auto-name from 3.15 (before: name="adam")
        keras.backend.clear_session()
        assert keras.optimizers.Adam().name == "adam"
        assert ko.Adam().name == "adam_1"
    assert ko.Adam(name="mine").name == "mine"


@pytest.mark.parametrize("name", NAMES)
def test_config_keeps_the_name(name):
    keras.backend.clear_session()
    OPTIMIZERS[name]()
    opt = OPTIMIZERS[name]()
    config = opt.get_config()
    assert config["name"] == f"{BASE[name]}_1"
    assert type(opt).from_config(config).name == f"{BASE[name]}_1"
    assert OPTIMIZERS[name](name="custom").get_config()["name"] == "custom"


def test_keras_file_round_trip_keeps_names_and_state(tmp_path):
    keras.backend.clear_session()
    ko.Adam()  # takes "adam": the model's optimizer is adam_1
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=ko.Adam(0.01), loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    model.fit(x, x[:, :2], epochs=2, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.optimizer.name == "adam_1"
    assert type(loaded.optimizer) is ko.Adam
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
