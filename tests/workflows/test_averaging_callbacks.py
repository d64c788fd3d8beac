"""Polyak averaging beside Keras' own callbacks (issue 22): EarlyStopping, ModelCheckpoint
and BackupAndRestore store what they monitored, in either order of the callbacks, and
BatchNormalization's statistics are recomputed for the averaged weights on request.

Every comparison of a loss is between the same weights on the same batches (validation
and ``evaluate`` both with batch size 4): float32 reductions traced in ``fit`` and run
by ``evaluate`` may round differently, hence rtol 1e-6 (a few float32 ulps, 6e-8 each),
not equality. Weights are compared bit for bit.
"""

import numpy as np
import pytest

import keras
import keras_optlab as ko
from keras_optlab.averaging import SwapAveragedWeights, update_batch_norm
from tests.helpers import jax_state_sync as _sync
from tests.helpers import variable_values as _values

pytestmark = pytest.mark.backend_agnostic

BATCH = 4
ORDERS = ("swap first", "swap last")


def _data():
    """A noisy sin regression, 16 training samples and 32 for validation whose targets
    lack the training targets' offset of 0.5: val_loss falls, then rises as the model
    learns the offset (EarlyStopping stops, the best epoch is not the last)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (np.sin(x @ np.array([[1.0], [-2.0], [0.5]])) + 0.3 * rng.normal(size=(64, 1))).astype("float32")
    return x[:16], y[:16] + np.float32(0.5), x[32:], y[32:]


def _model(batch_norm=False):
    keras.utils.set_random_seed(7)
    layers = [keras.Input((3,)), keras.layers.Dense(32 if not batch_norm else 4)]
    if batch_norm:  # two BN layers: the second's inputs depend on the first's batch statistics
        layers += [keras.layers.BatchNormalization(), keras.layers.Activation("tanh"), keras.layers.Dense(3),
                   keras.layers.BatchNormalization(momentum=0.5)]
    else:
        layers += [keras.layers.Activation("tanh")]
    model = keras.Sequential(layers + [keras.layers.Dense(1)])
    # The same starting weights on every backend (their random streams differ): Glorot
    # uniform kernels from NumPy, zero biases, BN's own initial values.
    rng = np.random.default_rng(7)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            fan_in, fan_out = layer.kernel.shape
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            layer.kernel.assign(rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype("float32"))
    model.compile(optimizer=ko.SGD(0.1, polyak="arithmetic"), loss="mse")
    return model


def _equal(a, b):
    """Bit for bit (a NaN telemetry value equals itself)."""
    a, b = [np.asarray(u) for u in a], [np.asarray(v) for v in b]
    return len(a) == len(b) and all(
        u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes() for u, v in zip(a, b)
    )


class _Record(keras.callbacks.Callback):
    """The optimizer's averages θ̂ at each epoch's end and the raw weights θ after each
    epoch's last batch (the optimizer's variables hold them wherever the model's are)."""

    def __init__(self):
        super().__init__()
        self.averages, self.raw, self._last = [], [], None

    def on_train_batch_end(self, batch, logs=None):
        _sync(self.model)
        self._last = _values(self.model.trainable_variables)

    def on_epoch_end(self, epoch, logs=None):
        self.averages.append(_values(self.model.optimizer.averaged_variables))
        self.raw.append(self._last)


def _fit(model, callbacks, order, epochs, **kwargs):
    """``fit`` with ``SwapAveragedWeights`` first or last among ``callbacks``."""
    xt, yt, xv, yv = _data()
    swap = kwargs.pop("swap", None) or SwapAveragedWeights()
    listed = [swap, *callbacks] if order == "swap first" else [*callbacks, swap]
    return model.fit(xt, yt, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0,
                     validation_data=(xv, yv), callbacks=listed, **kwargs)


def _val_loss(model):
    _, _, xv, yv = _data()
    return model.evaluate(xv, yv, batch_size=BATCH, verbose=0)


@pytest.mark.parametrize("order", ORDERS)
def test_early_stopping_restores_the_averaged_weights_of_its_best_val_loss(order):
    model = _model()
    stop = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    record = _Record()
    history = _fit(model, [stop, record], order, epochs=12)
    assert 0 < stop.best_epoch < stop.stopped_epoch  # it stopped, and not at its best epoch
    assert stop.best == min(history.history["val_loss"])
    assert _equal(model.get_weights(), record.averages[stop.best_epoch])  # θ̂ of the best epoch
    np.testing.assert_allclose(_val_loss(model), stop.best, rtol=1e-6)


@pytest.mark.parametrize("order", ORDERS)
def test_model_checkpoint_saves_the_averaged_weights_of_its_best_val_loss(order, tmp_path):
    model = _model()
    path = str(tmp_path / "best.keras")
    checkpoint = keras.callbacks.ModelCheckpoint(path, save_best_only=True)
    weights = str(tmp_path / "best.weights.h5")
    weights_only = keras.callbacks.ModelCheckpoint(weights, save_best_only=True, save_weights_only=True)
    record = _Record()
    history = _fit(model, [checkpoint, weights_only, record], order, epochs=5)
    losses = history.history["val_loss"]
    best = int(np.argmin(losses))
    assert best < len(losses) - 1  # the file is not simply the last epoch's
    saved = keras.saving.load_model(path)
    assert _equal(saved.get_weights(), record.averages[best])
    np.testing.assert_allclose(_val_loss(saved), losses[best], rtol=1e-6)
    model.load_weights(weights)
    assert _equal(model.get_weights(), record.averages[best])
    # The optimizer saved beside the weights is the run's: its average intact.
    assert _equal(_values(saved.optimizer.averaged_variables), record.averages[best])


def test_a_training_metric_keeps_the_raw_weights():
    """``monitor="loss"`` is measured on the raw iterates: EarlyStopping and ModelCheckpoint
    keep θ at the end of the best epoch, as without averaging — even with
    ``swap_on_epoch=True``, in either order."""
    for order in ORDERS:
        model = _model()
        stop = keras.callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
        record = _Record()
        history = _fit(model, [stop, record], order, epochs=4, swap=SwapAveragedWeights(swap_on_epoch=True))
        assert stop.best == min(history.history["loss"])
        assert _equal(model.get_weights(), record.raw[stop.best_epoch]), order


def test_backup_and_restore_resumes_exactly(tmp_path):
    """A run interrupted after epoch 2 and resumed by BackupAndRestore equals an
    uninterrupted one bit for bit (weights, optimizer state with its average, losses),
    in either order, with or without ``swap_on_epoch``."""

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("interrupted")

    plain_model = _model()
    plain = _fit(plain_model, [], "swap first", epochs=3)
    for swap_on_epoch in (False, True):
        for order in ORDERS:
            backup = str(tmp_path / f"{order}-{swap_on_epoch}".replace(" ", "_"))
            model = _model()
            with pytest.raises(RuntimeError, match="interrupted"):
                _fit(model, [keras.callbacks.BackupAndRestore(backup), Interrupt()], order, epochs=3,
                     swap=SwapAveragedWeights(swap_on_epoch=swap_on_epoch))
            resumed = _fit(model, [keras.callbacks.BackupAndRestore(backup)], order, epochs=3,
                           swap=SwapAveragedWeights(swap_on_epoch=swap_on_epoch))
            case = f"{order}, swap_on_epoch={swap_on_epoch}"
            assert resumed.history["loss"] == plain.history["loss"][2:], case
            assert resumed.history["val_loss"] == plain.history["val_loss"][2:], case
            assert _equal(model.get_weights(), plain_model.get_weights()), case
            assert _equal(_values(model.optimizer.variables), _values(plain_model.optimizer.variables)), case


def test_two_swaps_are_refused_at_fit_start():
    model = _model()
    before = model.get_weights()
    with pytest.raises(ValueError, match="fit got 2 SwapAveragedWeights callbacks; use one"):
        _fit(model, [SwapAveragedWeights()], "swap first", epochs=1)
    assert _equal(model.get_weights(), before)  # refused before the first step


# BatchNormalization ------------------------------------------------------------------


def _statistics_by_hand(model, x, batch_size):
    """The moving statistics ``update_batch_norm`` should set, in float64 NumPy: per batch,
    the forward pass in training mode (each BN normalizes with its batch's mean and biased
    variance), then the mean over batches (each weighted equally) of each BN's batch
    mean and variance."""
    dense1, bn1, _, dense2, bn2, _ = model.layers
    w1, b1, w2, b2 = (np.float64(keras.ops.convert_to_numpy(v)) for v in (*dense1.weights, *dense2.weights))
    g1, c1 = (np.float64(keras.ops.convert_to_numpy(v)) for v in (bn1.gamma, bn1.beta))
    sums = [np.zeros(4), np.zeros(4), np.zeros(3), np.zeros(3)]
    batches = range(0, len(x), batch_size)
    for start in batches:
        h1 = np.float64(x[start:start + batch_size]) @ w1 + b1
        m1, v1 = h1.mean(0), h1.var(0)
        h2 = np.tanh(g1 * (h1 - m1) / np.sqrt(v1 + bn1.epsilon) + c1) @ w2 + b2
        for total, value in zip(sums, (m1, v1, h2.mean(0), h2.var(0))):
            total += value
    return [total / len(batches) for total in sums], (bn1, bn2)


def _check_statistics(model, x, batch_size):
    """The model's BN statistics against the hand computation. float32 forward pass
    (two matrix products, a tanh, a normalization: ~10 roundings of 6e-8 relative)
    against float64: rtol 1e-5; the variance may be formed as E[h²] − E[h]² (JAX), whose
    absolute error is ~1e-6 of E[h²]: atol 1e-5 at these O(1) magnitudes."""
    expected, (bn1, bn2) = _statistics_by_hand(model, x, batch_size)
    actual = _values([bn1.moving_mean, bn1.moving_variance, bn2.moving_mean, bn2.moving_variance])
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


def test_update_batch_norm_equals_the_statistics_by_hand():
    xt, yt, xv, _ = _data()
    model = _model(batch_norm=True)
    model.fit(xt, yt, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)  # ends with θ̂
    trainable = _values(model.trainable_variables)
    momenta = [layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    update_batch_norm(model, xv, batch_size=12)  # 32 samples: batches of 12, 12 and 8
    _check_statistics(model, xv, 12)
    assert _equal(_values(model.trainable_variables), trainable)
    assert momenta == [0.99, 0.5] == [layer.momentum for layer in model.layers
                                      if isinstance(layer, keras.layers.BatchNormalization)]
    # An iterable of (x, y) batches gives the same statistics as the arrays.
    by_arrays = _values(model.non_trainable_variables)
    update_batch_norm(model, ((xv[i:i + 12], None) for i in range(0, 32, 12)))
    assert _equal(_values(model.non_trainable_variables), by_arrays)
    update_batch_norm(model, xv, batch_size=12, steps=2)  # the first 24 samples
    _check_statistics(model, xv[:24], 12)


@pytest.mark.parametrize("order", ORDERS)
def test_swap_recomputes_batch_norm_for_the_average_and_restores_the_run(order):
    """``SwapAveragedWeights(update_batch_norm=x)``: validation sees θ̂ with its own BN
    statistics and EarlyStopping keeps both; training continues from θ and the run's BN
    statistics (the run is the one without the callback, bit for bit)."""
    xt, yt, xv, yv = _data()
    model, plain = _model(batch_norm=True), _model(batch_norm=True)
    stop = keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    swap = SwapAveragedWeights(update_batch_norm=xt, batch_norm_batch_size=BATCH)
    history = _fit(model, [stop], order, epochs=3, swap=swap)
    plain_history = plain.fit(xt, yt, batch_size=BATCH, epochs=3, shuffle=False, verbose=0,
                              validation_data=(xv, yv))
    assert history.history["loss"] == plain_history.history["loss"]
    assert _equal(_values(model.optimizer.variables), _values(plain.optimizer.variables))
    assert history.history["val_loss"] != plain_history.history["val_loss"]
    np.testing.assert_allclose(_val_loss(model), stop.best, rtol=1e-6)


def test_fit_ends_with_the_average_and_its_batch_norm_statistics():
    xt, _, _, _ = _data()
    model = _model(batch_norm=True)
    swap = SwapAveragedWeights(update_batch_norm=xt, batch_norm_batch_size=BATCH)
    # validation_freq=2: the last epoch (3rd) has no validation pass and ends with θ in
    # the model; on_train_end recomputes the statistics for θ̂ (finalize_variable_values).
    history = _fit(model, [], "swap last", epochs=3, swap=swap, validation_freq=2)
    assert len(history.history["val_loss"]) == 1
    assert _equal(_values(model.trainable_variables), _values(model.optimizer.averaged_variables))
    _check_statistics(model, xt, BATCH)


def test_evaluate_with_update_batch_norm_swaps_the_statistics_back():
    xt, yt, xv, yv = _data()
    model = _model(batch_norm=True)
    model.fit(xt, yt, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    for v in model.trainable_variables:  # raw weights that differ from θ̂
        v.assign(v.value + 0.1)
    before = model.get_weights()
    loss = model.evaluate(xv, yv, batch_size=BATCH, verbose=0,
                          callbacks=[SwapAveragedWeights(update_batch_norm=xt, batch_norm_batch_size=BATCH)])
    assert _equal(model.get_weights(), before)  # θ and the run's BN statistics are back
    for v, average in zip(model.trainable_variables, model.optimizer.averaged_variables):
        v.assign(average.value)
    update_batch_norm(model, xt, batch_size=BATCH)
    np.testing.assert_allclose(_val_loss(model), loss, rtol=1e-6)


# Bad arguments ---------------------------------------------------------------------


def test_bad_arguments():
    xt, _, _, _ = _data()
    model = _model(batch_norm=True)
    cases = [
        (TypeError, "`model` must be a keras.Model. Received: model='m'", lambda: update_batch_norm("m", xt)),
        (TypeError, "`x` must be an array, .* Received: x=None", lambda: update_batch_norm(model, None)),
        (TypeError, "`x` must be an array, .* Received: x=3", lambda: update_batch_norm(model, 3)),
        (ValueError, "`x` holds no samples", lambda: update_batch_norm(model, xt[:0])),
        (ValueError, "same number of samples; their leading sizes are \\[8, 16\\]",
         lambda: update_batch_norm(model, [xt, xt[:8]])),
        (ValueError, "`batch_size` must be an integer in \\[1, inf\\]. Received: batch_size=0",
         lambda: update_batch_norm(model, xt, batch_size=0)),
        (TypeError, "`steps` must be an integer >= 1. Received: steps=1.5",
         lambda: update_batch_norm(model, xt, steps=1.5)),
        (ValueError, "`batch_size` cuts arrays into batches; .* Received: batch_size=4",
         lambda: update_batch_norm(model, iter([xt]), batch_size=4)),
        (ValueError, "`x` yielded no batch: .* Received: x=<list_iterator", lambda: update_batch_norm(model, iter([]))),
        (ValueError, "`model` must be built", lambda: update_batch_norm(keras.Sequential([keras.layers.Dense(1)]), xt)),
        (TypeError, "`update_batch_norm` must be iterable more than once .* generator",
         lambda: SwapAveragedWeights(update_batch_norm=(b for b in [xt]))),
        (TypeError, "`update_batch_norm` must be an array, .* Received: update_batch_norm='x'",
         lambda: SwapAveragedWeights(update_batch_norm="x")),
        (ValueError, "`batch_norm_batch_size` cuts the arrays of `update_batch_norm` into batches; there is none. "
         "Received: batch_norm_batch_size=8", lambda: SwapAveragedWeights(batch_norm_batch_size=8)),
        (ValueError, "`batch_norm_steps` counts the batches of `update_batch_norm`; there is none. "
         "Received: batch_norm_steps=2", lambda: SwapAveragedWeights(batch_norm_steps=2)),
        (ValueError, "`batch_norm_batch_size` must be an integer in \\[1, inf\\]. Received: batch_norm_batch_size=0",
         lambda: SwapAveragedWeights(update_batch_norm=xt, batch_norm_batch_size=0)),
        (TypeError, "`batch_norm_steps` must be an integer >= 1. Received: batch_norm_steps='2'",
         lambda: SwapAveragedWeights(update_batch_norm=xt, batch_norm_steps="2")),
    ]
    statistics = _values(model.non_trainable_variables)
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
    assert _equal(_values(model.non_trainable_variables), statistics)  # a failed call changes nothing
