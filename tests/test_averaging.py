"""SwapAveragedWeights: evaluation sees the Polyak average, training goes on from the raw
weights (keras.callbacks.SwapEMAWeights' tests, for ``polyak="arithmetic"``)."""

import numpy as np
import pytest

import keras
import keras_optlab as ko
from keras_optlab.averaging import SwapAveragedWeights
from tests.helpers import jax_state_sync as _sync
from tests.helpers import variable_values as _values

pytestmark = pytest.mark.backend_agnostic


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3 * rng.normal(size=(64, 1))).astype("float32")
    return x, y


def _model(optimizer=None):
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer or ko.SGD(0.2, polyak="arithmetic"), loss="mse")
    return model


class _Seen(keras.callbacks.Callback):
    """What a callback after SwapAveragedWeights sees: the model's weights and the
    optimizer's averages at each event."""

    def __init__(self):
        super().__init__()
        self.events = []

    def _record(self, event):
        _sync(self.model)
        model = _values(self.model.trainable_variables)
        averages = _values(self.model.optimizer.averaged_variables or [])  # [] before the build (TF)
        self.events.append((event, model, averages))

    def on_train_batch_end(self, batch, logs=None):
        self._record("batch_end")

    def on_test_begin(self, logs=None):
        self._record("test_begin")

    def on_test_end(self, logs=None):
        self._record("test_end")

    def on_epoch_end(self, epoch, logs=None):
        self._record("epoch_end")

    def on_epoch_begin(self, epoch, logs=None):
        self._record("epoch_begin")


def _fit(callbacks, epochs=2, **kwargs):
    x, y = _data()
    model = _model()
    history = model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0,
                        validation_data=(x, y), callbacks=callbacks, **kwargs)
    return model, history


def _equal(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))


def test_validation_sees_the_average_and_training_continues_from_the_raw_weights():
    seen = _Seen()
    model, history = _fit([SwapAveragedWeights(), seen])
    plain, plain_history = _fit([])
    events = dict()
    for event, weights, averages in seen.events:
        events.setdefault(event, []).append((weights, averages))
    for (weights, averages), (raw, _) in zip(events["test_begin"], events["batch_end"][3::4]):
        assert _equal(weights, averages)  # the model holds θ̂ while it is evaluated
        assert not _equal(weights, raw)
    for event in ("test_end", "epoch_end"):  # θ̂ stays for the callbacks' on_epoch_end
        assert len(events[event]) == 2 and all(_equal(w, a) for w, a in events[event])
    for (weights, _), (raw, _) in zip(events["epoch_begin"][1:], events["batch_end"][3::4]):
        assert _equal(weights, raw)  # the next epoch begins from θ (the last batch's)
    # Training went on from θ: the run equals one without the callback, bit for bit.
    assert _equal(model.get_weights(), plain.get_weights())
    assert history.history["loss"] == plain_history.history["loss"]
    # val_loss is the average's loss: at the end the model holds θ̂ (finalize_variable_values).
    x, y = _data()
    np.testing.assert_allclose(history.history["val_loss"][-1], model.evaluate(x, y, verbose=0), rtol=1e-6)
    assert history.history["val_loss"] != plain_history.history["val_loss"]


def test_swap_on_epoch_holds_the_average_between_epochs():
    """Validation in the 2nd epoch only: its end holds θ̂ in any case, the others' only
    with ``swap_on_epoch``."""
    seen = _Seen()
    model, _ = _fit([SwapAveragedWeights(swap_on_epoch=True), seen], epochs=3, validation_freq=2)
    plain, _ = _fit([], epochs=3)
    ends = [(w, a) for event, w, a in seen.events if event == "epoch_end"]
    assert len(ends) == 3 and all(_equal(w, a) for w, a in ends)  # a checkpoint here saves θ̂
    assert _equal(model.get_weights(), plain.get_weights())  # each epoch began from θ
    seen = _Seen()
    _fit([SwapAveragedWeights(), seen], epochs=3, validation_freq=2)
    ends = [(w, a) for event, w, a in seen.events if event == "epoch_end"]
    assert [_equal(w, a) for w, a in ends] == [False, True, False]


def test_evaluate_and_predict_with_the_callback_swap_back():
    x, y = _data()
    model = _model()
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    # finalize_variable_values wrote θ̂: make the weights differ from it again.
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for v in model.trainable_variables:
        v.assign(v.value + 1.0)
    raw = model.get_weights()
    averages = _values(model.optimizer.averaged_variables)
    swapped = model.predict(x, verbose=0, callbacks=[SwapAveragedWeights()])
    assert _equal(model.get_weights(), raw)
    unswapped = model.predict(x, verbose=0)
    loss = model.evaluate(x, y, verbose=0, callbacks=[SwapAveragedWeights()])
    assert _equal(model.get_weights(), raw)
    model.set_weights(averages)
    np.testing.assert_array_equal(swapped, model.predict(x, verbose=0))
    assert not np.array_equal(swapped, unswapped)
    assert loss == model.evaluate(x, y, verbose=0)


def test_an_optimizer_without_polyak_is_refused():
    x, y = _data()
    model = _model(ko.SGD(0.1))
    with pytest.raises(ValueError, match="optimizer keeps a Polyak average.*polyak='arithmetic'.*polyak=None"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[SwapAveragedWeights()])
    model = _model(keras.optimizers.SGD(0.1, use_ema=True))
    with pytest.raises(ValueError, match="keras.callbacks.SwapEMAWeights"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[SwapAveragedWeights()])


def test_before_any_step_the_average_is_the_weights():
    """Evaluating before training (the optimizer may be unbuilt, as on TF) swaps nothing."""
    x, y = _data()
    model = _model()
    loss = model.evaluate(x, y, verbose=0, callbacks=[SwapAveragedWeights()])
    assert loss == model.evaluate(x, y, verbose=0)


def test_bad_argument():
    with pytest.raises(TypeError, match="`swap_on_epoch` must be a bool. Received: swap_on_epoch='yes'"):
        SwapAveragedWeights(swap_on_epoch="yes")
