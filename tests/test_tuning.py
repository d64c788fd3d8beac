"""keras_optlab.tuning (initialization hyperparameters, InitSearch, search_init, distributed mode)
and its application keras_optlab.lab.init_search (the digits search, optlab tune)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import keras_tuner as kt
import numpy as np
import pytest

from keras_optlab.initializers import FanInUniform, NormalizedUniform, SparseK
from keras_optlab.lab.init_search import plot_trials, tanh_mlp, write_tables
from keras_optlab.tuning import InitSearch, init_hyperparameters, search_init
from tests.helpers import load_script

pytestmark = pytest.mark.backend_agnostic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_script(name, path):
    return load_script(os.path.join(ROOT, path), name)


def _tiny_data(n=64, features=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def _tiny_model(features=8):
    model = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(8, activation="tanh", name="hidden"),
            keras.layers.Dense(2, activation="softmax", name="out"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _kernel(layer):
    return keras.ops.convert_to_numpy(layer.kernel)


# --- init_hyperparameters -------------------------------------------------------------


def test_declared_names_and_defaults():
    hp = kt.HyperParameters()
    init = init_hyperparameters(hp)
    assert hp.values == {"init_scale": 1.0, "init_density": "dense"}
    space = {p.name: p for p in hp.space}
    assert set(space) == {"init_scale", "init_density", "sparse_k"}
    scale = space["init_scale"].get_config()
    assert (scale["min_value"], scale["max_value"], scale["sampling"], scale["default"]) == (0.1, 10.0, "log", 1.0)
    assert space["init_density"].values == ["dense", "sparse"] and space["init_density"].default == "dense"
    k = space["sparse_k"]
    assert k.values == [5, 15, 25] and k.default == 15
    assert [(c.name, c.values) for c in k.conditions] == [("init_density", ["sparse"])]
    # The default is Keras' default: glorot_uniform, value for value with the same seed.
    assert isinstance(init, NormalizedUniform) and init.scale == 1.0
    seeded = init_hyperparameters(kt.HyperParameters(), seed=3)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(seeded((20, 30))),
        keras.ops.convert_to_numpy(keras.initializers.GlorotUniform(seed=3)((20, 30))),
    )


def test_layer_suffix_and_dense_schemes():
    hp = kt.HyperParameters()
    init_hyperparameters(hp, layer="conv1", dense_schemes=("fan_in", "normalized"), sparse_k=(3, 7))
    names = {p.name for p in hp.space}
    assert names == {"init_scale_conv1", "init_density_conv1", "sparse_k_conv1", "init_scheme_conv1"}
    assert hp.values["init_scheme_conv1"] == "fan_in"
    assert next(p for p in hp.space if p.name == "sparse_k_conv1").default == 7  # 15 absent: the middle
    # A range without 1.0 defaults to its geometric middle.
    hp = kt.HyperParameters()
    init_hyperparameters(hp, scale_min=2.0, scale_max=8.0)
    assert hp.values["init_scale"] == pytest.approx(4.0)


def test_pinned_values_are_obeyed():
    hp = kt.HyperParameters()
    hp.Fixed("init_scale", 3.0)
    hp.Fixed("init_density", "sparse")
    hp.Fixed("sparse_k", 5)
    init = init_hyperparameters(hp, seed=1)
    assert isinstance(init, SparseK) and (init.k, init.scale) == (5, 3.0)
    hp = kt.HyperParameters()
    hp.Fixed("init_scheme", "fan_in")
    init = init_hyperparameters(hp, dense_schemes=("normalized", "fan_in"))
    assert isinstance(init, FanInUniform)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"scale_min": 10.0, "scale_max": 10.0}, "scale_min"),
        ({"scale_min": 5.0, "scale_max": 1.0}, "scale_min"),
        ({"scale_min": 0.0}, "scale_min"),
        ({"scale_max": float("inf")}, "scale_max"),
        ({"sparse_k": 0}, "sparse_k"),
        ({"sparse_k": (5, -1)}, "sparse_k"),
        ({"sparse_k": ()}, "sparse_k"),
        ({"dense_schemes": ("orthogonal",)}, "dense_schemes"),
        ({"layer": ""}, "layer"),
    ],
)
def test_bad_hyperparameter_arguments_are_rejected(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        init_hyperparameters(kt.HyperParameters(), **kwargs)
    if argument != "layer":
        with pytest.raises(ValueError, match=f"`{argument}`"):
            InitSearch(_tiny_model(), **kwargs)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"scale_min": "0.1"}, "scale_min"),
        ({"scale_max": None}, "scale_max"),
        ({"sparse_k": 2.5}, "sparse_k"),
        ({"sparse_k": (5, "15")}, "sparse_k"),
        ({"dense_schemes": 3}, "dense_schemes"),
        ({"layer": 3}, "layer"),
    ],
)
def test_wrong_types_are_type_errors(kwargs, argument):
    with pytest.raises(TypeError, match=f"`{argument}`.*Received: {argument}="):
        init_hyperparameters(kt.HyperParameters(), **kwargs)


def test_numpy_scalars_are_accepted():
    hp = kt.HyperParameters()
    init = init_hyperparameters(hp, scale_min=np.float32(0.5), scale_max=np.float64(2.0), sparse_k=np.int64(7))
    assert isinstance(init, NormalizedUniform)
    assert [p for p in hp.space if p.name == "sparse_k"][0].values == [7]
    assert InitSearch(_tiny_model(), seed=np.int64(3)).seed == 3


def test_bad_search_arguments_are_rejected(tmp_path):
    x, y = _tiny_data()
    for kwargs, argument in [
        ({"tuner": "grid"}, "tuner"),
        ({"max_trials": 0}, "max_trials"),
        ({"epochs": 0}, "epochs"),
    ]:
        with pytest.raises(ValueError, match=f"`{argument}`"):
            search_init(_tiny_model(), x, y, directory=str(tmp_path), **kwargs)
    for kwargs, argument in [
        ({"tuner": 1}, "tuner"),
        ({"max_trials": 2.0}, "max_trials"),
        ({"seed": "0"}, "seed"),
        ({"overwrite": "yes"}, "overwrite"),
    ]:
        with pytest.raises(TypeError, match=f"`{argument}`"):
            search_init(_tiny_model(), x, y, directory=str(tmp_path), **kwargs)
    uncompiled = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="must be compiled"):
        InitSearch(uncompiled)
    with pytest.raises(TypeError, match="`model`"):
        InitSearch(42)
    with pytest.raises(ValueError, match="per_layer"):
        InitSearch(lambda hp, init: None, per_layer=True)


# --- InitSearch ---------------------------------------------------------------------


def test_clone_carries_sparse_initializer_and_compile_settings():
    model = _tiny_model(features=30)
    hp = kt.HyperParameters()
    hp.Fixed("init_density", "sparse")
    hp.Fixed("sparse_k", 5)
    hp.Fixed("init_scale", 2.0)
    clone = InitSearch(model, seed=7).build(hp)
    for layer, fan_in in zip(clone.layers, (30, 8)):
        kernel = _kernel(layer)
        np.testing.assert_array_equal((kernel != 0).sum(axis=0), min(5, fan_in))  # exactly k per unit
        config = layer.get_config()["kernel_initializer"]
        assert config["class_name"] == "SparseK" and config["config"]["k"] == 5
        assert config["config"]["scale"] == 2.0
        assert layer.get_config()["bias_initializer"] == model.get_layer(layer.name).get_config()["bias_initializer"]
    # Different seeds per layer, the original's compile settings, a fresh optimizer.
    assert clone.layers[0].get_config()["kernel_initializer"]["config"]["seed"] == 7
    assert clone.layers[1].get_config()["kernel_initializer"]["config"]["seed"] == 8
    assert clone.optimizer is not model.optimizer and isinstance(clone.optimizer, keras.optimizers.SGD)
    assert float(keras.ops.convert_to_numpy(clone.optimizer.learning_rate)) == pytest.approx(0.1)
    assert clone.loss == model.loss
    assert clone.get_compile_config() == model.get_compile_config()


def test_dense_scale_multiplies_the_schemes_own_scale():
    model = _tiny_model()
    kernels = {}
    for scale in (1.0, 4.0):
        hp = kt.HyperParameters()
        hp.Fixed("init_scale", scale)
        kernels[scale] = _kernel(InitSearch(model).build(hp).layers[0])
    np.testing.assert_allclose(kernels[4.0], 4.0 * kernels[1.0], rtol=1e-6)
    assert np.abs(kernels[1.0]).max() <= np.sqrt(6.0 / (8 + 8))


def test_conv_recurrent_and_functional_kernels_are_replaced_biases_untouched():
    inputs = keras.Input((6, 6, 2))
    h = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    h = keras.layers.Reshape((4, 16))(h)
    h = keras.layers.Bidirectional(keras.layers.LSTM(3, name="lstm"), name="bi")(h)
    outputs = keras.layers.Dense(2, bias_initializer="ones", name="head")(h)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "mse")
    search = InitSearch(model, per_layer=True)
    hp = kt.HyperParameters()
    clone = search.build(hp)
    names = {p.name for p in hp.space}
    for layer in ("conv", "forward_lstm", "backward_lstm", "head"):
        assert f"init_scale_{layer}" in names, names
    assert clone.get_layer("conv").get_config()["kernel_initializer"]["class_name"] == "NormalizedUniform"
    forward = clone.get_layer("bi").get_config()["layer"]["config"]
    assert forward["kernel_initializer"]["class_name"] == "NormalizedUniform"
    assert forward["recurrent_initializer"]["class_name"] == "Orthogonal"  # recurrent kernel untouched
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone.get_layer("head").bias), 1.0)
    # Sparse: exactly k non-zeros per unit of the conv kernel (fan-in 3*3*2 = 18).
    hp = kt.HyperParameters()
    hp.Fixed("init_density_conv", "sparse")
    hp.Fixed("sparse_k_conv", 5)
    kernel = _kernel(search.build(hp).get_layer("conv"))
    np.testing.assert_array_equal((kernel.reshape(18, 4) != 0).sum(axis=0), 5)


def test_builder_receives_the_initializer():
    def build(hp, kernel_initializer):
        model = keras.Sequential(
            [
                keras.Input((8,)),
                keras.layers.Dense(8, kernel_initializer=kernel_initializer),
                keras.layers.Dense(8, kernel_initializer=kernel_initializer),
            ]
        )
        model.compile("sgd", "mse")
        return model

    hp = kt.HyperParameters()
    hp.Fixed("init_density", "sparse")
    hp.Fixed("sparse_k", 3)
    model = InitSearch(build).build(hp)
    first, second = (_kernel(layer) for layer in model.layers)
    np.testing.assert_array_equal((first != 0).sum(axis=0), 3)
    assert not np.array_equal(first, second)  # one shared initializer, different draws


# --- search_init ----------------------------------------------------------------------


class _CountFits(keras.callbacks.Callback):
    fits = 0  # a class attribute: Keras Tuner deep-copies callbacks

    def on_train_begin(self, logs=None):
        type(self).fits += 1


def test_search_completes_saves_exports_and_resumes(tmp_path):
    x, y = _tiny_data()
    kwargs = dict(validation_data=(x, y), epochs=1, batch_size=32, directory=str(tmp_path),
                  project_name="p", verbose=0, callbacks=[_CountFits()])
    _CountFits.fits = 0
    result = search_init(_tiny_model(), x, y, max_trials=3, **kwargs)
    rows = result.trials
    assert [r["status"] for r in rows] == ["COMPLETED"] * 3 and _CountFits.fits == 3
    assert result.role == "local" and result.tuner.oracle.objective.name == "val_loss"
    best = result.best_hyperparameters
    assert best.values["init_scale"] == min(rows, key=lambda r: r["score"])["init_scale"]
    model = result.best_model
    assert model.evaluate(x, y, verbose=0)[0] == pytest.approx(min(r["score"] for r in rows), rel=1e-5)
    path = str(tmp_path / "best.keras")
    model.save(path)
    np.testing.assert_allclose(keras.models.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    if keras.backend.backend() != "torch":  # Keras 3.15 cannot export on torch 2.13 (test_training)
        model.export(str(tmp_path / "saved"), verbose=False)
        assert os.path.exists(tmp_path / "saved" / "saved_model.pb")

    # Rerun on the same directory: nothing is redone; a larger budget adds only the rest.
    again = search_init(_tiny_model(), x, y, max_trials=3, **kwargs)
    assert _CountFits.fits == 3 and again.trials == rows
    more = search_init(_tiny_model(), x, y, max_trials=4, **kwargs)
    assert _CountFits.fits == 4 and more.trials[:3] == rows and len(more.trials) == 4

    # No checkpoint on this machine (a chief whose workers ran elsewhere): the best
    # configuration is rebuilt and trained again, deterministically.
    for trial_dir in tmp_path.joinpath("p").glob("trial_*"):
        for checkpoint in trial_dir.glob("checkpoint*"):
            checkpoint.unlink()
    retrained = again.best_model
    assert retrained is not None and retrained.optimizer is not None
    np.testing.assert_allclose(retrained.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_pinned_hyperparameters_in_a_search(tmp_path):
    x, y = _tiny_data()
    hp = kt.HyperParameters()
    hp.Fixed("init_density", "sparse")
    result = search_init(_tiny_model(), x, y, max_trials=2, epochs=1, directory=str(tmp_path), verbose=0,
                         hyperparameters=hp)
    rows = result.trials
    assert result.tuner.oracle.objective.name == "loss"  # no validation data
    assert {r["init_density"] for r in rows} == {"sparse"} and all(r["sparse_k"] in (5, 15, 25) for r in rows)
    assert len({r["init_scale"] for r in rows}) == 2




# --- issue 13: no result from a failed search ------------------------------------------


def _exploding_model():
    """MSE with SGD at learning rate 1e30: the first step sends every weight to inf/NaN."""
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1e30), "mse")
    return model


@pytest.mark.tensorflow_only  # the tuner's bookkeeping, no backend math: the search itself runs on every backend
def test_every_trial_nan_raises_and_returns_no_best(tmp_path):
    """Keras Tuner marks a NaN-loss trial FAILED with score NaN but still ranks it: the
    'best' hyperparameters were a failed trial's and its model's weights all NaN."""
    x, y = _tiny_data()
    with pytest.raises(RuntimeError, match="none of the 2 trials completed with a finite score") as info:
        search_init(_exploding_model(), x, y.astype("float32"), validation_data=(x, y.astype("float32")),
                    max_trials=2, epochs=2, directory=str(tmp_path), verbose=0)
    result = info.value.result
    assert [r["status"] for r in result.trials] == ["FAILED", "FAILED"]
    assert all(not np.isfinite(r["score"]) for r in result.trials)
    assert result.best_hyperparameters is None and result.best_model is None


@pytest.mark.tensorflow_only  # the tuner's bookkeeping, no backend math: the search itself runs on every backend
def test_a_failed_or_nan_trial_is_never_the_best(tmp_path):
    x, y = _tiny_data()
    result = search_init(_tiny_model(), x, y, max_trials=2, epochs=1, directory=str(tmp_path), verbose=0)
    first, second = (result.tuner.oracle.trials[t] for t in sorted(result.tuner.oracle.trials))
    # A NaN score breaks Keras Tuner's sort (NaN < s and s < NaN are both False): ranked first, it stayed first.
    first.score = float("nan")
    assert result.best_hyperparameters.values == second.hyperparameters.values
    # A FAILED trial is not a completed one, whatever its score.
    first.status, first.score = "FAILED", -1.0
    assert result.best_hyperparameters.values == second.hyperparameters.values


@pytest.mark.tensorflow_only  # the tuner's bookkeeping, no backend math: the search itself runs on every backend
def test_a_retrained_best_model_that_diverges_is_not_returned(tmp_path, monkeypatch):
    x, y = _tiny_data()
    result = search_init(_tiny_model(), x, y, max_trials=1, epochs=1, directory=str(tmp_path), project_name="p",
                         verbose=0)
    for checkpoint in tmp_path.joinpath("p").glob("trial_*/checkpoint*"):
        checkpoint.unlink()

    class _NaNHistory:
        history = {"loss": [float("nan")]}

    monkeypatch.setattr(result.tuner.hypermodel, "fit", lambda *args, **kwargs: _NaNHistory())
    with pytest.raises(RuntimeError, match="non-finite loss"):
        result.best_model


@pytest.mark.parametrize(
    "validation_data, error, message",
    [
        ("wide", ValueError, "validation_data[0]` must match the input shape of `model`, (None, 8)"),
        ("short_y", ValueError, "Received: validation_data[1] with 10 samples"),
        ("x_only", TypeError, "Received: validation_data=ndarray of shape (64, 8)"),
        ("one_item", ValueError, "Received: validation_data with 1 items"),
    ],
)
def test_bad_validation_data_is_refused_before_any_trial(tmp_path, validation_data, error, message):
    """Keras Tuner printed each trial's traceback and search_init returned as if it had searched."""
    x, y = _tiny_data()
    validation_data = {
        "wide": (x[:, :5], y), "short_y": (x, y[:10]), "x_only": x, "one_item": (x,),
    }[validation_data]
    _CountFits.fits = 0
    with pytest.raises(error, match=re.escape(message)):
        search_init(_tiny_model(), x, y, validation_data=validation_data, max_trials=1, epochs=1,
                    directory=str(tmp_path), verbose=0, callbacks=[_CountFits()])
    assert _CountFits.fits == 0 and not list(tmp_path.iterdir())


def test_a_model_without_kernels_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Activation("softmax", name="act")])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match=re.escape("`model` has no layer with a kernel_initializer")):
        InitSearch(model)
    with pytest.raises(ValueError, match=re.escape("with layers ['Activation']")):
        search_init(model, *_tiny_data(), max_trials=1, epochs=1, directory=str(tmp_path), verbose=0)


def test_trials_is_an_attribute_as_documented(tmp_path):
    x, y = _tiny_data(n=16)
    result = search_init(_tiny_model(), x, y, max_trials=1, epochs=1, directory=str(tmp_path), verbose=0)
    assert isinstance(result.trials, list) and result.trials[0]["status"] == "COMPLETED"
    assert "trials:" in type(result).__doc__


@pytest.mark.tensorflow_only  # the tuner's bookkeeping, no backend math: the search itself runs on every backend
@pytest.mark.slow
@pytest.mark.parametrize("tuner, budget", [("bayesian", {"max_trials": 2, "epochs": 1}), ("hyperband", {"epochs": 2})])
def test_other_tuners_complete(tmp_path, tuner, budget):
    x, y = _tiny_data(n=32)
    result = search_init(_tiny_model(), x, y, validation_data=(x, y), tuner=tuner, directory=str(tmp_path),
                         verbose=0, **budget)
    rows = result.trials
    assert rows and all(r["status"] == "COMPLETED" for r in rows)
    assert type(result.tuner).__name__ == {"bayesian": "BayesianOptimization", "hyperband": "Hyperband"}[tuner]
    assert result.best_model.predict(x[:2], verbose=0).shape == (2, 2)


@pytest.mark.tensorflow_only  # the tuner's bookkeeping, no backend math: the search itself runs on every backend
def test_seed_fixes_the_sampled_values(tmp_path):
    """seed=0 too: Keras Tuner's oracle alone would treat 0 as no seed."""
    x, y = _tiny_data(n=16)
    runs = [
        [r["init_scale"] for r in search_init(_tiny_model(), x, y, max_trials=2, epochs=1, directory=str(tmp_path),
                                              project_name=f"run{i}", verbose=0, seed=0).trials]
        for i in range(2)
    ]
    assert runs[0] == runs[1]


def test_plot_trials_writes_png(tmp_path):
    rows = [
        {"init_scale": 0.5, "init_density": "dense", "score": 0.4},
        {"init_scale": 2.0, "init_density": "sparse", "sparse_k": 5, "score": 1.2},
        {"init_scale": 5.0, "init_density": "sparse", "sparse_k": 15, "score": float("nan")},
    ]
    path = plot_trials(rows, str(tmp_path / "f.png"), baseline=0.6)
    png = open(path, "rb").read()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    with pytest.raises(ValueError, match="no trial"):
        plot_trials(rows[2:], str(tmp_path / "g.png"))


def test_write_tables_ranks_by_score(tmp_path):
    rows = [
        {"trial_id": "0", "init_density": "dense", "init_scale": 0.5, "score": 0.9, "status": "COMPLETED"},
        {"trial_id": "1", "init_density": "sparse", "init_scale": 2.0, "sparse_k": 5, "score": None,
         "status": "FAILED"},
        {"trial_id": "2", "init_density": "dense", "init_scale": 1.5, "score": 0.3, "status": "COMPLETED"},
    ]
    csv_path, md_path = write_tables(rows, str(tmp_path))
    assert open(csv_path).read().splitlines()[0] == ",".join(
        ("trial_id", "init_density", "init_scale", "sparse_k", "score", "best_step", "status"))
    ranked = [line.split("|")[1].strip() for line in open(md_path).read().splitlines()[2:]]
    assert ranked == ["2", "0", "1"]


# --- command line and scripts -----------------------------------------------------------


def test_search_digits_script_help(capsys):
    script = _load_script("search_digits", "tuning/search_digits.py")
    with pytest.raises(SystemExit) as info:
        script.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--trials" in out and "default 24" in out and "tuning/results" in out


@pytest.mark.tensorflow_only  # the tuner's bookkeeping, no backend math: the search itself runs on every backend
@pytest.mark.slow
def test_optlab_tune_writes_report(tmp_path, capsys):
    from keras_optlab.cli import main

    out = tmp_path / "tune"
    argv = ["tune", "--trials", "2", "--epochs", "1", "--depth", "2", "--width", "8", "--out", str(out),
            "--verbose", "0"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "glorot_uniform" in printed and "2/2 trials completed" in printed
    report = json.loads((out / "best.json").read_text())
    assert report["trials"] == 2 and report["completed"] == 2
    assert {"init_scale", "init_density"} <= set(report["best_hyperparameters"])
    assert report["best_val_loss"] > 0 and report["glorot_val_loss"] > 0
    assert (out / "trials.csv").read_text().count("\n") == 3
    assert (out / "val_loss_vs_init_scale.png").read_bytes().startswith(b"\x89PNG")


# --- distributed ------------------------------------------------------------------------


def test_launcher_stops_everything_it_started(tmp_path):
    """A chief that never exits (Keras Tuner's, when a worker dies) is stopped at the time limit."""
    launcher = _load_script("distributed", "tuning/distributed.py")
    # Each process starts a grandchild that ignores SIGTERM: the group must be SIGKILLed.
    code = (
        "import os, subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)']); "
        "open(os.path.join(sys.argv[1], os.environ['KERASTUNER_TUNER_ID']), 'w').write(str(os.getpgrp())); "
        "time.sleep(0.5 if os.environ['KERASTUNER_TUNER_ID'] != 'chief' else 600)"
    )
    start = time.monotonic()
    status = launcher.run([sys.executable, "-c", code, str(tmp_path)], workers=2, time_limit=4.0,
                          chief_grace=1.0)
    assert status == 1  # the workers finished, the chief did not exit within its grace
    assert time.monotonic() - start < 30
    groups = {int((tmp_path / name).read_text()) for name in ("chief", "tuner0", "tuner1")}
    assert len(groups) == 3  # each process in its own group
    time.sleep(0.5)
    assert not _live_members(groups)  # no process of any group is left, grandchildren included


def _live_members(groups):
    """Pids of processes (zombies excepted) whose process group is in ``groups``."""
    live = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp in groups and state != "Z":
            live.append(int(entry))
    return live


@pytest.mark.slow
@pytest.mark.tensorflow_only  # chief + 2 worker processes: 34 s; the search itself runs on every backend above
def test_distributed_search_chief_and_two_workers(tmp_path):
    """Keras Tuner's own distributed mode: chief + 2 workers on loopback complete every trial."""
    launcher = _load_script("distributed", "tuning/distributed.py")
    port = launcher.free_port()
    max_trials = 4
    processes = []
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = dict(os.environ, KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1",
                       KERASTUNER_ORACLE_PORT=str(port), PYTHONPATH=ROOT)
            log = open(tmp_path / f"{tuner_id}.log", "wb")
            processes.append(subprocess.Popen(
                [sys.executable, os.path.join(ROOT, "tests", "tuning_worker.py"), str(tmp_path / "search"),
                 str(max_trials), str(tmp_path / f"{tuner_id}.json")],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            ))
            log.close()
        deadline = time.monotonic() + 240  # hard timeout
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        logs = {p: (tmp_path / f"{p}.log").read_text(errors="replace")[-3000:] for p in ("chief", "tuner0", "tuner1")}
        assert [p.returncode for p in processes] == [0, 0, 0], logs
    finally:
        for process in processes:  # whatever happened, every process, by id
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    chief = json.loads((tmp_path / "chief.json").read_text())
    assert chief["role"] == "chief"
    assert [t["status"] for t in chief["trials"]] == ["COMPLETED"] * max_trials
    assert chief["prediction_shape"] == [3, 2]
    best = min(chief["trials"], key=lambda t: t["score"])
    assert chief["best_hyperparameters"]["init_scale"] == best["init_scale"]
    for worker in ("tuner0", "tuner1"):
        assert json.loads((tmp_path / f"{worker}.json").read_text())["role"] == "worker"


def test_default_hyperparameters_reproduce_the_digits_baseline():
    """At init_scale 1, dense, InitSearch redraws exactly the Glorot kernels of the model it clones."""
    model = tanh_mlp(depth=2, width=8, seed=5)
    assert model.name == "tanh_mlp_2x8" and model.compiled
    clone = InitSearch(model, seed=5).build(kt.HyperParameters())
    for original, cloned in zip(model.layers, clone.layers):
        np.testing.assert_array_equal(_kernel(cloned), _kernel(original))
