"""Keras 3.15's own initializer tests (keras/src/initializers/random_initializers_test.py,
constant_initializers_test.py), adapted to keras_optlab's initializers.

Per class: `run_class_serialization_test`'s two round trips (get_config -> from_config,
serialize -> JSON -> deserialize give the same config and the same attributes), the
seed semantics of `test_random_normal` (an int seed: same values every call and after
cloning; a SeedGenerator: new values every call; `None`: one seed drawn at construction,
so same values every call, different after cloning), `initializers.get` by registered
name, and use in a layer as an object and as a name.
"""

import json

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

pytestmark = pytest.mark.backend_agnostic

SEEDED = {  # random classes: factory(seed) and a kernel shape
    "FanInUniform": (lambda seed: FanInUniform(scale=0.5, seed=seed), (25, 20)),
    "NormalizedUniform": (lambda seed: NormalizedUniform(scale=2.0, seed=seed), (25, 20)),
    "SparseK": (lambda seed: SparseK(k=3, scale=0.7, seed=seed), (25, 20)),
    "Scaled": (lambda seed: Scaled(FanInUniform(seed=seed), 2.0), (25, 20)),
}
CONSTANT = {
    "GateBias": (GateBias.lstm(forget=1.0), (8,)),
    "MarginalBias": (MarginalBias.from_labels([0, 1, 1, 2]), (3,)),
    "Scaled(ones)": (Scaled("ones", 0.5), (2, 3)),
}
INSTANCES = {name: (make(1234), shape) for name, (make, shape) in SEEDED.items()}
INSTANCES.update(CONSTANT)


def draw(initializer, shape):
    return keras.ops.convert_to_numpy(initializer(shape))


def to_json(config):
    return json.dumps(config, sort_keys=True)


@pytest.mark.parametrize("name", list(INSTANCES))
def test_run_class_serialization(name):
    # keras.src.testing.TestCase.run_class_serialization_test, restated on public API.
    instance, shape = INSTANCES[name]
    cls = type(instance)
    config = instance.get_config()
    revived = cls.from_config(config)
    assert to_json(revived.get_config()) == to_json(config)
    assert set(dir(revived)) == set(dir(instance))
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(instance)))
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is cls
    assert to_json(revived.get_config()) == to_json(config)
    assert set(dir(revived)) == set(dir(instance))
    np.testing.assert_array_equal(draw(revived, shape), draw(instance, shape))


@pytest.mark.parametrize("name", list(SEEDED))
def test_seed_semantics_as_keras_random_normal(name):
    make, shape = SEEDED[name]
    seeded = make(1337)  # an int seed: the same values every call, and after cloning
    values = draw(seeded, shape)
    np.testing.assert_array_equal(draw(seeded, shape), values)
    np.testing.assert_array_equal(draw(type(seeded).from_config(seeded.get_config()), shape), values)
    generator = make(keras.random.SeedGenerator(1337))  # new values every call
    first = draw(generator, shape)
    assert not np.allclose(draw(generator, shape), first)
    unseeded = make(None)  # one seed drawn at construction: fixed per instance...
    values = draw(unseeded, shape)
    np.testing.assert_array_equal(draw(unseeded, shape), values)
    # ...and a clone from the config (seed None) draws another one.
    assert not np.allclose(draw(type(unseeded).from_config(unseeded.get_config()), shape), values)


@pytest.mark.parametrize("name", list(SEEDED))
@pytest.mark.parametrize("bad", ["abc", 1.5])
def test_a_bad_seed_is_a_value_error_as_in_keras(name, bad):
    # Keras' RandomInitializer raises ValueError for a seed that is neither an int nor a
    # SeedGenerator; our contract says TypeError for a wrong type: both hold.
    make, _ = SEEDED[name]
    for error in (ValueError, TypeError):
        with pytest.raises(error, match="seed"):
            make(bad)


def test_serialization_with_seed_generator():
    # random_initializers_test.test_serialization_with_seed_generator
    for make, shape in SEEDED.values():
        initializer = make(keras.random.SeedGenerator(7))
        config = initializer.get_config()
        revived = type(initializer).from_config(config)
        assert to_json(revived.get_config()) == to_json(config)
        assert draw(revived, shape).shape == shape


@pytest.mark.parametrize("name", ["FanInUniform", "NormalizedUniform", "SparseK", "Scaled", "GateBias",
                                  "MarginalBias"])
def test_get_by_registered_name(name):
    # test_get_method: keras.initializers.get resolves the registered name.
    if name in ("GateBias", "MarginalBias", "Scaled"):  # required constructor arguments
        with pytest.raises(TypeError):
            keras.initializers.get(f"keras_optlab>{name}")
        return
    initializer = keras.initializers.get(f"keras_optlab>{name}")
    assert type(initializer).__name__ == name
    with pytest.raises(ValueError):
        keras.initializers.get("keras_optlab>Typo")


def test_in_layers_as_object_and_as_name():
    x = np.ones((2, 4), "float32")
    for kernel in (FanInUniform(seed=1), NormalizedUniform(seed=1), SparseK(k=2, seed=1),
                   Scaled(FanInUniform(seed=1), 0.5), "keras_optlab>FanInUniform",
                   "keras_optlab>NormalizedUniform", "keras_optlab>SparseK",
                   {"class_name": "keras_optlab>Scaled", "config": {"initializer": "ones", "scale": 0.5}}):
        layer = keras.layers.Dense(3, kernel_initializer=kernel,
                                   bias_initializer=MarginalBias([0.0, 1.0, 2.0]))
        assert layer(x).shape == (2, 3)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.bias), np.float32([0, 1, 2]))
        clone = keras.layers.Dense.from_config(layer.get_config())
        clone.build((None, 4))
        assert type(clone.kernel_initializer) is type(layer.kernel_initializer)


def test_constant_initializers_dtype_and_values():
    # constant_initializers_test: value and dtype as asked.
    for initializer, shape in CONSTANT.values():
        for dtype in ("float16", "float32", "float64"):
            value = initializer(shape, dtype=dtype)
            assert keras.backend.standardize_dtype(value.dtype) == dtype
            assert tuple(value.shape) == shape
