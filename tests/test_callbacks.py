"""CurvatureMonitor and GradientStats: keys in History, batch logs and CSVLogger output."""

import csv
import math

import keras
import numpy as np
import pytest

from keras_optlab import curvature, optimizers
from keras_optlab.callbacks import CURVATURE_KEYS, TELEMETRY_KEYS, CurvatureMonitor, GradientStats

BATCHES_PER_EPOCH = 5


def _model(optimizer=None):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="tanh", kernel_regularizer=keras.regularizers.L2(1e-3)),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        optimizer=optimizers.SGD(0.05) if optimizer is None else optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8 * BATCHES_PER_EPOCH, 6)).astype("float32")
    y = rng.integers(0, 3, len(x))
    return model, x, y


class BatchRecorder(keras.callbacks.Callback):
    """Copies every batch's logs, and the learning rate the next step will use."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_end(self, batch, logs=None):
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.batches.append({**logs, "lr": lr})


def test_monitor_every_n_batches_into_batch_and_epoch_logs(tmp_path):
    model, x, y = _model()
    monitor = CurvatureMonitor(x[:16], y[:16], every_n_batches=3, eigen_iterations=30)
    recorder = BatchRecorder()
    path = tmp_path / "log.csv"
    history = model.fit(
        x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
        callbacks=[monitor, recorder, keras.callbacks.CSVLogger(str(path))],
    )
    measured = [i for i, logs in enumerate(recorder.batches) if "gHg" in logs]
    assert measured == [0, 3, 6, 9]  # batches 1, 4, 7, 10 of 10, counted across epochs
    for i in measured:
        assert set(CURVATURE_KEYS) <= set(recorder.batches[i])
    assert [m["step"] for m in monitor.measurements] == [1, 4, 7, 10]
    for key in CURVATURE_KEYS:
        assert len(history.history[key]) == 2
        # Each epoch carries its last measurement: batch 4 (epoch 1), batch 10 (epoch 2).
        assert history.history[key][0] == recorder.batches[3][key]
        assert history.history[key][1] == recorder.batches[9][key]
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert set(CURVATURE_KEYS) <= set(rows[0])
    assert float(rows[1]["gHg"]) == pytest.approx(history.history["gHg"][1], rel=1e-6)
    # The last measurement was taken at the final weights: it is gradient_curvature now.
    report = curvature.gradient_curvature(model, x[:16], y[:16])
    for key in ("g_norm_sq", "gHg", "critical_learning_rate"):
        assert history.history[key][-1] == pytest.approx(report[key], rel=1e-12)
    # 30 Lanczos steps on 83 parameters, warm-started: λ_max to 1e-4.
    top = curvature.top_eigenvalues(model, x[:16], y[:16], tol=1e-10)
    assert history.history["lambda_max"][-1] == pytest.approx(top[0], rel=1e-4)
    assert history.history["lambda_max"][-1] >= report["gHg"] / report["g_norm_sq"] * (1 - 1e-6)


def test_ill_conditioned_follows_the_scheduled_learning_rate():
    # A schedule from a huge to a tiny rate: the flag reads the rate of the next step.
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([2], [1e3, 1e-6])
    model, x, y = _model(optimizers.SGD(schedule))
    monitor = CurvatureMonitor(x[:16], y[:16], every_n_batches=1, top_eigenvalue=False)
    recorder = BatchRecorder()
    model.fit(x[:32], y[:32], batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[monitor, recorder])
    flags = [logs["ill_conditioned"] for logs in recorder.batches]
    expected = [float(logs["lr"] > logs["critical_learning_rate"]) for logs in recorder.batches]
    assert flags == expected
    assert [m["learning_rate"] for m in monitor.measurements] == [logs["lr"] for logs in recorder.batches]
    assert "lambda_max" not in recorder.batches[0]
    assert recorder.batches[-1]["lr"] == pytest.approx(1e-6)
    assert flags[-1] == 0.0  # 1e-6 is far below any critical rate of this model


def test_monitor_arguments_are_validated():
    x, y = np.zeros((2, 6)), np.zeros(2)
    with pytest.raises(ValueError, match="every_n_batches=0"):
        CurvatureMonitor(x, y, every_n_batches=0)
    with pytest.raises(TypeError, match="every_n_batches=2.5"):
        CurvatureMonitor(x, y, every_n_batches=2.5)
    with pytest.raises(TypeError, match="every_n_batches=True"):
        CurvatureMonitor(x, y, every_n_batches=True)
    with pytest.raises(ValueError, match="eigen_iterations=0"):
        CurvatureMonitor(x, y, eigen_iterations=0)
    with pytest.raises(TypeError, match="top_eigenvalue='yes'"):
        CurvatureMonitor(x, y, top_eigenvalue="yes")
    with pytest.raises(TypeError, match="seed=0.5"):
        CurvatureMonitor(x, y, seed=0.5)
    monitor = CurvatureMonitor(x, y, every_n_batches=np.int64(3), eigen_iterations=np.int32(2),
                               top_eigenvalue=np.bool_(False))
    assert (monitor.every_n_batches, monitor.eigen_iterations, monitor.top_eigenvalue) == (3, 2, False)
    assert type(monitor.every_n_batches) is int and type(monitor.top_eigenvalue) is bool


def test_monitor_needs_a_compiled_loss():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
    monitor = CurvatureMonitor(np.zeros((2, 6)), np.zeros((2, 1)))
    monitor.set_model(model)
    with pytest.raises(ValueError, match="no compiled loss"):
        monitor.on_train_begin()


def test_gradient_stats_equal_the_optimizer_variables(tmp_path):
    model, x, y = _model(optimizers.SGD(0.05, clipnorm=0.05))
    recorder = BatchRecorder()
    path = tmp_path / "log.csv"
    history = model.fit(
        x, y, batch_size=8, epochs=2, verbose=0,
        callbacks=[GradientStats(), recorder, keras.callbacks.CSVLogger(str(path))],
    )
    opt = model.optimizer
    assert history.history["gradient_norm"][-1] == float(opt.gradient_norm.numpy())
    assert history.history["clipped_steps"] == [BATCHES_PER_EPOCH, 2 * BATCHES_PER_EPOCH]  # every step clipped
    assert history.history["skipped_steps"] == [0, 0]
    assert len(recorder.batches) == 2 * BATCHES_PER_EPOCH
    assert [logs["clipped_steps"] for logs in recorder.batches] == list(range(1, 2 * BATCHES_PER_EPOCH + 1))
    assert all(logs["gradient_norm"] > 0.05 for logs in recorder.batches)
    with open(path) as f:
        assert set(TELEMETRY_KEYS) <= set(next(csv.DictReader(f)))


def test_gradient_stats_counts_skipped_steps():
    model, x, y = _model(optimizers.SGD(0.05, skip_nonfinite=True))
    x_bad = x.copy()
    x_bad[:8] = np.nan  # the first batch has a non-finite gradient
    recorder = BatchRecorder()
    history = model.fit(
        x_bad, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[GradientStats(), recorder]
    )
    assert history.history["skipped_steps"] == [1]
    assert math.isnan(recorder.batches[0]["gradient_norm"])  # the norm of the NaN gradient
    assert all(math.isfinite(logs["gradient_norm"]) for logs in recorder.batches[1:])


def test_gradient_stats_turns_on_the_gradient_norm_after_an_earlier_fit():
    model, x, y = _model()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # traced without the norm
    assert math.isnan(float(model.optimizer.gradient_norm.numpy()))
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[GradientStats()])
    assert model.optimizer.track_gradient_norm
    assert history.history["gradient_norm"][0] > 0


def test_gradient_stats_through_a_loss_scale_optimizer():
    model, x, y = _model(keras.optimizers.LossScaleOptimizer(optimizers.SGD(0.05)))
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[GradientStats()])
    assert history.history["gradient_norm"][0] == float(model.optimizer.inner_optimizer.gradient_norm.numpy())


def test_gradient_stats_refuses_other_optimizers():
    model, x, y = _model(keras.optimizers.SGD(0.05))
    with pytest.raises(TypeError, match="keras_optlab optimizers.*keras.src.optimizers.sgd.SGD|SGD"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[GradientStats()])
