"""CurvatureMonitor and GradientStats: keys in History, batch logs and CSVLogger output."""

import csv
import math

import keras
import numpy as np
import pytest

from keras_optlab import curvature, optimizers
from keras_optlab.callbacks import CURVATURE_KEYS, TELEMETRY_KEYS, CurvatureMonitor, GradientStats
from tests.helpers import needs_keras

pytestmark = pytest.mark.backend_agnostic
TENSORFLOW_ONLY = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="reads TensorBoard's event files with TensorFlow"
)
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
    monitor = CurvatureMonitor(x[:16], y[:16], every_n_batches=2, eigen_iterations=30)
    recorder = BatchRecorder()
    path = tmp_path / "log.csv"
    history = model.fit(
        x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
        callbacks=[monitor, recorder, keras.callbacks.CSVLogger(str(path))],
    )
    measured = [i for i, logs in enumerate(recorder.batches) if "gHg" in logs]
    # Keras' convention (TensorBoard's update_freq): batches 2, 4, 6, 8, 10 of 10
    # (1-based), counted across epochs — (step + 1) % 2 == 0 for the 0-based step.
    assert measured == [1, 3, 5, 7, 9]
    for i in measured:
        assert set(CURVATURE_KEYS) <= set(recorder.batches[i])
    assert [m["step"] for m in monitor.measurements] == [2, 4, 6, 8, 10]
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


def tensorboard_scalars(log_dir):
    """{tag: [(step, value), ...]} of every scalar in the event files under ``log_dir``,
    read back with TensorFlow's own event reader."""
    import pathlib

    import tensorflow as tf

    scalars = {}
    for path in sorted(pathlib.Path(log_dir).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.HasField("tensor") and not value.tensor.tensor_shape.dim:
                    number = float(tf.make_ndarray(value.tensor))
                elif value.HasField("simple_value"):
                    number = value.simple_value
                else:
                    continue
                scalars.setdefault(value.tag, []).append((event.step, number))
    return scalars


def _tensorboard_fit(tmp_path, monitor_first):
    model, x, y = _model()
    x, y = x[:40], y[:40]  # batch 4: 10 batches per epoch, 20 in all
    monitor = CurvatureMonitor(x[:16], y[:16], every_n_batches=10, top_eigenvalue=False)
    board = keras.callbacks.TensorBoard(str(tmp_path / "tb"), update_freq=10, write_graph=False)
    csv_logger = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    callbacks = [monitor, board, csv_logger] if monitor_first else [board, csv_logger, monitor]
    history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=callbacks)
    return monitor, history, tensorboard_scalars(tmp_path / "tb" / "train")


@TENSORFLOW_ONLY
@pytest.mark.parametrize("monitor_first", [True, False], ids=["monitor-first", "tensorboard-first"])
def test_curvature_reaches_tensorboard_at_its_steps_whatever_the_order(tmp_path, monitor_first):
    monitor, history, scalars = _tensorboard_fit(tmp_path, monitor_first)
    # Measured at TensorBoard's steps 10 and 20 (update_freq=10), not 1 and 11.
    assert [m["step"] for m in monitor.measurements] == [10, 20]
    keys = ("g_norm_sq", "gHg", "critical_learning_rate", "ill_conditioned")
    for key in keys:
        # Exactly one event per written step (nothing written twice), equal to the measurement.
        assert [step for step, _ in scalars[f"batch_{key}"]] == [10, 20], (key, scalars.get(f"batch_{key}"))
        for (_, value), measured in zip(scalars[f"batch_{key}"], monitor.measurements):
            assert value == pytest.approx(measured[key], rel=1e-6)  # event files hold float32
        assert [step for step, _ in scalars[f"epoch_{key}"]] == [0, 1]
        assert [v for _, v in scalars[f"epoch_{key}"]] == pytest.approx(history.history[key], rel=1e-6)
    assert "batch_lambda_max" not in scalars
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(row["gHg"]) for row in rows] == pytest.approx(history.history["gHg"], rel=1e-6)


@TENSORFLOW_ONLY
# Keras 3.10's TensorBoard writes every batch's scalars whatever update_freq says (its
# record_if predicate keeps the step it was pushed with); 3.11 re-pushes it per batch.
@needs_keras(3, 11, "TensorBoard's update_freq for batch scalars")
def test_gradient_stats_reach_a_tensorboard_listed_before_them(tmp_path):
    model, x, y = _model()
    board = keras.callbacks.TensorBoard(str(tmp_path / "tb"), update_freq=5, write_graph=False)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[board, GradientStats()])
    scalars = tensorboard_scalars(tmp_path / "tb" / "train")
    for key in TELEMETRY_KEYS:
        assert [step for step, _ in scalars[f"batch_{key}"]] == [5, 10], key
        assert [step for step, _ in scalars[f"epoch_{key}"]] == [0, 1], key
    assert [v for _, v in scalars["batch_clipped_steps"]] == [0, 0]


def test_epochs_before_the_first_measurement_log_nan(tmp_path):
    model, x, y = _model()
    monitor = CurvatureMonitor(x[:16], y[:16], every_n_batches=BATCHES_PER_EPOCH + 2, top_eigenvalue=False)
    path = tmp_path / "log.csv"
    history = model.fit(
        x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
        callbacks=[keras.callbacks.CSVLogger(str(path)), monitor],
    )
    assert [m["step"] for m in monitor.measurements] == [BATCHES_PER_EPOCH + 2]
    for key in monitor.keys:
        assert len(history.history[key]) == 2  # one entry per epoch, as for the loss
        assert math.isnan(history.history[key][0])
        assert history.history[key][1] == monitor.measurements[0][key]
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert math.isnan(float(rows[0]["gHg"])) and float(rows[1]["gHg"]) == pytest.approx(history.history["gHg"][1])


def test_monitor_batch_is_checked_at_the_call_and_against_the_model():
    model, x, y = _model()
    with pytest.raises(ValueError, match=r"same number of samples.*x.shape=\(16, 6\) but y.shape=\(8,\)"):
        CurvatureMonitor(x[:16], y[:8])
    monitor = CurvatureMonitor(x[:16, :5], y[:16])  # 5 features, the model takes 6
    with pytest.raises(ValueError, match=r"does not fit model.*\(16, 5\)"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[monitor])
    assert monitor.measurements == []


@pytest.mark.parametrize("name", ["CurvatureMonitor", "GradientStats"])
def test_callbacks_need_a_backend_with_autodiff_and_say_so_at_construction(name, monkeypatch):
    x, y = np.zeros((2, 6)), np.zeros(2)
    make = {"CurvatureMonitor": lambda: CurvatureMonitor(x, y), "GradientStats": GradientStats}[name]
    assert isinstance(make(), keras.callbacks.Callback)  # TensorFlow, JAX and torch
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    with pytest.raises(RuntimeError, match=f"{name} runs on the TensorFlow, JAX and PyTorch.*'numpy'"):
        make()


def test_monitor_spectrum_every_k_measurements():
    # float32 model: the spectrum keys are compared with a direct SLQ run on the same
    # weights and probes (the same computation: equal to float32 rounding of the HVPs).
    from keras_optlab.callbacks import SPECTRUM_KEYS

    model, x, y = _model()
    monitor = CurvatureMonitor(x[:16], y[:16], every_n_batches=2, top_eigenvalue=False, spectrum_every=2,
                               spectrum_probes=2, spectrum_steps=8)
    assert set(SPECTRUM_KEYS) <= set(monitor.keys)
    recorder = BatchRecorder()
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[monitor, recorder])
    # Measurements at batches 2, 4, 6, 8, 10; the spectrum at the 2nd and 4th (batches 4, 8).
    spectra = [i for i, logs in enumerate(recorder.batches) if "spectrum_lambda_max" in logs]
    assert spectra == [3, 7]
    assert [("spectrum_negative_mass" in m) for m in monitor.measurements] == [False, True, False, True, False]
    for i in spectra:
        logs = recorder.batches[i]
        assert logs["spectrum_lambda_min"] <= logs["spectrum_lambda_max"]
        assert 0.0 <= logs["spectrum_negative_mass"] <= 1.0
    # Epoch logs carry the last spectrum: batch 4's in epoch 1, batch 8's in epoch 2.
    for key in SPECTRUM_KEYS:
        assert history.history[key] == [recorder.batches[3][key], recorder.batches[7][key]]
    # The last spectrum was of the weights after batch 8; now (after batch 10) a direct
    # run differs, but 8 Lanczos steps bound it inside the Hessian's extreme eigenvalues.
    top = curvature.top_eigenvalues(model, x[:16], y[:16], tol=1e-8)[0]
    summary = curvature.hessian_spectral_density(model, x[:16], y[:16], num_probes=2, lanczos_steps=8).summary
    assert summary["lambda_max"] <= top * (1 + 1e-4)
    measured = monitor.measure()  # the 6th measurement: a spectrum, of the current weights
    # float32 HVPs: the same probes and weights agree to ~1e-6 relative after 8 steps.
    assert measured["spectrum_lambda_max"] == pytest.approx(summary["lambda_max"], rel=1e-4)
    assert measured["spectrum_negative_mass"] == pytest.approx(summary["negative_mass"], abs=1e-4)
    assert set(SPECTRUM_KEYS).isdisjoint(monitor.measure())  # the 7th: none


def test_monitor_spectrum_arguments_are_validated():
    _, x, y = _model()
    with pytest.raises(ValueError, match="spectrum_every=0"):
        CurvatureMonitor(x, y, spectrum_every=0)
    with pytest.raises(TypeError, match="spectrum_every=1.5"):
        CurvatureMonitor(x, y, spectrum_every=1.5)
    with pytest.raises(ValueError, match="spectrum_probes=0"):
        CurvatureMonitor(x, y, spectrum_every=1, spectrum_probes=0)
    with pytest.raises(TypeError, match="spectrum_steps='8'"):
        CurvatureMonitor(x, y, spectrum_every=1, spectrum_steps="8")
    assert "spectrum_lambda_max" not in CurvatureMonitor(x, y).keys
    assert CurvatureMonitor(x, y, spectrum_every=np.int64(3)).spectrum_every == 3


def test_monitor_on_a_whole_data_set_measures_its_mean_loss():
    # The same fit measured on all 40 samples at once and in batches of 16 (16, 16, 8)
    # and from a PyDataset of the same batches: the same figures, up to float32 rounding
    # of the model (≤ 1e-4 relative between summation orders over 40 samples).
    model, x, y = _model()
    initial = model.get_weights()

    class Pieces(keras.utils.PyDataset):
        def __len__(self):
            return 3

        def __getitem__(self, index):
            return x[16 * index:16 * index + 16], y[16 * index:16 * index + 16]

    monitors = [CurvatureMonitor(x, y, every_n_batches=5, eigen_iterations=8),
                CurvatureMonitor(x, y, every_n_batches=5, eigen_iterations=8, batch_size=16),
                CurvatureMonitor(Pieces(), every_n_batches=5, eigen_iterations=8)]
    for monitor in monitors:
        model.set_weights(initial)
        model.compile(optimizer=optimizers.SGD(0.05), loss=model.loss)
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[monitor])
        assert len(monitor.measurements) == 2
    for key in ("loss", "g_norm_sq", "gHg", "critical_learning_rate", "lambda_max"):
        first = [m[key] for m in monitors[0].measurements]
        for other in monitors[1:]:
            np.testing.assert_allclose([m[key] for m in other.measurements], first, rtol=1e-4, err_msg=key)
    with pytest.raises(TypeError, match="iterator"):
        CurvatureMonitor((piece for piece in [(x, y)]))
    with pytest.raises(ValueError, match="batch_size=0"):
        CurvatureMonitor(x, y, batch_size=0)
