"""One table-driven suite that runs every keras_optlab optimizer through the same checks
(optax's habit): config and Keras (de)serialization, model.fit, .keras resume bit for bit,
SavedModel export, mixed precision, gradient accumulation, EMA, skip through fit."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_optlab as ko
from tests.optimizers.cases import NAMES, OPTIMIZERS
from tests.helpers import LOSS, make_mlp


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    opt = OPTIMIZERS[name](
        adaptive_clipnorm=0.5, skip_nonfinite=True, global_clipnorm=2.0, weight_decay=1e-4, track_gradient_norm=True
    )
    config = opt.get_config()
    clone = type(opt).from_config(config)
    assert clone.get_config() == config
    assert config["adaptive_clipnorm"] == 0.5 and config["skip_nonfinite"] is True
    assert config["track_gradient_norm"] is True


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", NAMES)
def test_keras_serialize_get_deserialize(name):
    opt = OPTIMIZERS[name](clipvalue=1.0)
    serialized = keras.optimizers.serialize(opt)
    assert serialized["registered_name"] == f"keras_optlab>{type(opt).__name__}"
    for clone in (keras.optimizers.deserialize(serialized), keras.optimizers.get(serialized)):
        assert type(clone) is type(opt)
        assert clone.get_config() == opt.get_config()


@pytest.mark.backend_agnostic
def test_schedule_survives_serialization():
    opt = ko.Adam(learning_rate=ko.LinearDecay(0.01, 0.001, 100))
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(clone.learning_rate_schedule if hasattr(clone, "learning_rate_schedule") else clone._learning_rate, ko.LinearDecay)
    assert clone.get_config() == opt.get_config()


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", NAMES)
def test_fit_lowers_loss(name, digits):
    x, y = digits
    model = make_mlp()
    model.compile(optimizer=OPTIMIZERS[name](), loss=LOSS)
    history = model.fit(x, y, batch_size=32, epochs=4, verbose=0).history["loss"]
    assert np.isfinite(history).all()
    assert history[-1] < 0.6 * history[0], history


def _fit_steps(model, x, y, epochs):
    model.fit(x, y, batch_size=32, epochs=epochs, shuffle=False, verbose=0)


@pytest.mark.parametrize("name", NAMES)
def test_keras_file_resume_is_bitwise(name, digits, tmp_path):
    """save → load → continue equals uninterrupted training bit for bit (clipping on)."""
    x, y = digits[0][:256], digits[1][:256]
    kwargs = dict(global_clipnorm=1.0, adaptive_clipnorm=0.05)

    straight = make_mlp()
    straight.compile(optimizer=OPTIMIZERS[name](**kwargs), loss=LOSS)
    _fit_steps(straight, x, y, epochs=4)

    first = make_mlp()
    first.compile(optimizer=OPTIMIZERS[name](**kwargs), loss=LOSS)
    _fit_steps(first, x, y, epochs=2)
    path = tmp_path / "m.keras"
    first.save(path)
    resumed = keras.saving.load_model(path)
    assert type(resumed.optimizer) is type(first.optimizer)
    for a, b in zip(first.optimizer.variables, resumed.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    _fit_steps(resumed, x, y, epochs=2)

    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    for a, b in zip(straight.optimizer.variables, resumed.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    assert int(resumed.optimizer.clipped_steps) > 0  # clipping really acted
    assert int(resumed.optimizer.iterations) == 4 * 256 // 32


@pytest.mark.slow
def test_export_serves_without_keras_optlab(digits, tmp_path):
    """model.export() → tf.saved_model.load in a process that never imports keras_optlab."""
    x, y = digits
    expected = {}
    for name in NAMES:
        model = make_mlp()
        model.compile(optimizer=OPTIMIZERS[name](), loss=LOSS)
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        model.export(str(tmp_path / name), verbose=False)
        expected[name] = np.asarray(model.predict(x[:16], verbose=0))
    np.save(tmp_path / "x.npy", x[:16])
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, tensorflow as tf
        x = np.load({str(tmp_path / "x.npy")!r})
        out = {{}}
        for name in {NAMES!r}:
            served = tf.saved_model.load({str(tmp_path)!r} + "/" + name)  # keep it alive
            out[name] = served.serve(x).numpy()
        np.savez({str(tmp_path / "served.npz")!r}, **out)
        assert not any(m.startswith("keras_optlab") for m in sys.modules), "keras_optlab imported"
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path, timeout=300)
    served = np.load(tmp_path / "served.npz")
    for name in NAMES:
        np.testing.assert_allclose(served[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("name", NAMES)
def test_mixed_float16_trains_without_nan(name, digits):
    x, y = digits
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = make_mlp()
        model.compile(optimizer=OPTIMIZERS[name](global_clipnorm=5.0), loss=LOSS)
        history = model.fit(x, y, batch_size=64, epochs=2, verbose=0).history["loss"]
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(history).all()
    assert model.layers[0].kernel.dtype == "float32"  # master weights stay float32
    assert np.isfinite(np.asarray(model.layers[0].kernel)).all()


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", NAMES)
def test_gradient_accumulation_applies_every_n_steps(name, digits):
    x, y = digits[0][:128], digits[1][:128]
    model = make_mlp()
    opt = OPTIMIZERS[name](gradient_accumulation_steps=4, global_clipnorm=1.0)
    model.compile(optimizer=opt, loss=LOSS)
    before = np.asarray(model.layers[0].kernel).copy()
    model.fit(x[:96], y[:96], batch_size=32, epochs=1, shuffle=False, verbose=0)  # 3 micro-steps
    np.testing.assert_array_equal(np.asarray(model.layers[0].kernel), before)
    model.fit(x[96:], y[96:], batch_size=32, epochs=1, shuffle=False, verbose=0)  # the 4th applies
    assert not np.array_equal(np.asarray(model.layers[0].kernel), before)
    assert int(opt.iterations) == 1
    assert float(opt.gradient_norm) > 0


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", NAMES)
def test_ema_is_accepted(name, digits):
    x, y = digits
    model = make_mlp()
    model.compile(optimizer=OPTIMIZERS[name](use_ema=True, ema_momentum=0.9), loss=LOSS)
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < history[0]


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", NAMES)
def test_skip_nonfinite_through_fit(name, digits):
    """A poisoned batch inside model.fit is skipped whole; training goes on."""
    x, y = digits[0][:128].copy(), digits[1][:128]
    x[40, 3] = np.nan  # poisons the second batch of 32
    model = make_mlp()
    opt = OPTIMIZERS[name](skip_nonfinite=True, track_gradient_norm=True)
    model.compile(optimizer=opt, loss=LOSS)
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert int(opt.skipped_steps) == 1
    assert int(opt.iterations) == 3
    for w in model.weights:
        assert np.isfinite(np.asarray(w)).all()
    assert np.isfinite(float(opt.gradient_norm))  # the last (4th) batch was clean
