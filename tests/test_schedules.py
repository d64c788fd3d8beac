"""LinearDecay: the book's Eq. 8.14."""

import keras
import numpy as np
import pytest

import keras_optlab as ko

pytestmark = pytest.mark.backend_agnostic


def test_values_follow_eq_8_14():
    e0, et, tau = 0.1, 0.001, 40
    schedule = ko.LinearDecay(e0, et, tau)
    for k in [0, 1, 10, 20, 39, 40, 41, 1000]:
        a = min(k, tau) / tau
        # float32 (Keras' floatx): a relative error of a few ulps (6e-8 each).
        assert float(schedule(k)) == pytest.approx((1 - a) * e0 + a * et, rel=1e-6), k
    assert float(schedule(0)) == pytest.approx(e0, rel=1e-7)
    assert float(schedule(tau)) == pytest.approx(et, rel=1e-6)


def test_config_round_trip_and_registration():
    schedule = ko.LinearDecay(0.1, 0.001, 40)
    assert schedule.get_config() == {"initial_learning_rate": 0.1, "final_learning_rate": 0.001, "decay_steps": 40}
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(clone, ko.LinearDecay) and clone.get_config() == schedule.get_config()
    assert keras.saving.get_registered_name(ko.LinearDecay) == "keras_optlab>LinearDecay"


def test_first_update_uses_initial_rate_then_decays():
    """k = 0 at the first update: SGD's first step is ε₀·g, the τ+1-th is ε_τ·g."""
    var = keras.Variable(np.zeros(1, dtype="float32"))
    opt = ko.SGD(ko.LinearDecay(1.0, 0.5, decay_steps=2))
    steps = []
    for _ in range(4):
        before = float(var.numpy()[0])
        opt.apply([keras.ops.ones((1,))], [var])
        steps.append(before - float(var.numpy()[0]))
    np.testing.assert_allclose(steps, [1.0, 0.75, 0.5, 0.5], rtol=1e-6)


def test_decay_in_fit_and_keras_file(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=ko.Momentum(ko.LinearDecay(0.05, 0.005, 10)), loss="mse")
    x, y = np.random.default_rng(0).normal(size=(64, 3)), np.zeros((64, 1))
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.005, rel=1e-6)
    if keras.backend.backend() == "tensorflow":
        model.save(tmp_path / "m.keras")
        loaded = keras.saving.load_model(tmp_path / "m.keras")
        assert loaded.optimizer.get_config() == model.optimizer.get_config()


def test_numpy_scalars_accepted_as_python_numbers():
    schedule = ko.LinearDecay(np.float32(0.5), np.float64(0.25), np.int64(10))
    config = schedule.get_config()
    assert config == {"initial_learning_rate": 0.5, "final_learning_rate": 0.25, "decay_steps": 10}
    assert [type(v) for v in config.values()] == [float, float, int]
    assert float(schedule(5)) == pytest.approx(0.375, rel=1e-6)
    assert ko.LinearDecay(np.array(0.1), 0, np.int32(3)).get_config()["decay_steps"] == 3  # 0-d array, int 0


INF, NAN = float("inf"), float("nan")
GOOD = dict(initial_learning_rate=0.1, final_learning_rate=0.001, decay_steps=10)


@pytest.mark.parametrize(
    "name, value, error, echo",
    [
        ("initial_learning_rate", "0.1", TypeError, "'0.1'"),
        ("initial_learning_rate", None, TypeError, "None"),
        ("initial_learning_rate", True, TypeError, "True"),
        ("initial_learning_rate", -0.1, ValueError, "-0.1"),
        ("initial_learning_rate", INF, ValueError, "inf"),
        ("initial_learning_rate", NAN, ValueError, "nan"),
        ("final_learning_rate", [0.1], TypeError, "[0.1]"),
        ("final_learning_rate", np.float32(-1.0), ValueError, "np.float32(-1.0)"),
        ("final_learning_rate", INF, ValueError, "inf"),
        ("decay_steps", 2.5, TypeError, "2.5"),
        ("decay_steps", 10.0, TypeError, "10.0"),
        ("decay_steps", "10", TypeError, "'10'"),
        ("decay_steps", True, TypeError, "True"),
        ("decay_steps", INF, TypeError, "inf"),
        ("decay_steps", 0, ValueError, "0"),
        ("decay_steps", np.int64(-3), ValueError, "np.int64(-3)"),
    ],
)
def test_bad_arguments_named_with_their_value(name, value, error, echo):
    with pytest.raises(error) as info:
        ko.LinearDecay(**{**GOOD, name: value})
    assert type(info.value) is error
    assert f"`{name}`" in str(info.value) and f"{name}={echo}" in str(info.value)
