"""The `optlab` command, run in-process through `keras_optlab.cli.main`."""

import sys

import pytest

from keras_optlab.cli import main


@pytest.mark.parametrize(
    "argv", [["--help"], ["race", "--help"], ["tune", "--help"], ["figures", "--help"], ["curvature", "--help"]]
)
def test_help_exits_zero(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: optlab" in capsys.readouterr().out


def test_no_command_prints_help():
    assert main([]) == 2


def test_bad_epochs_is_rejected(capsys):
    with pytest.raises(SystemExit) as info:
        main(["race", "--epochs", "0"])
    assert info.value.code == 2
    assert "--epochs" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, option",
    [
        (["tune", "--trials", "0"], "--trials"),
        (["tune", "--depth", "two"], "--depth"),
        (["tune", "--learning-rate", "-0.1"], "--learning-rate"),
        (["tune", "--learning-rate", "inf"], "--learning-rate"),
        (["curvature", "m.keras", "d.npz", "--k", "0"], "--k"),
    ],
)
def test_bad_counts_and_rates_are_rejected(argv, option, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert option in capsys.readouterr().err


def test_tune_help_shows_the_search_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    out = capsys.readouterr().out
    assert "default 24" in out and "runs/tune" in out and "{random,bayesian,hyperband}" in out


def test_race_quick_writes_table_and_curves(tmp_path, capsys):
    out = tmp_path / "race"
    assert main(["race", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = (out / "race.md").read_text()
    for name in ("SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "NesterovRMSProp", "Adam"):
        assert f"| {name} |" in printed and f"| {name} |" in report
    assert "3 epochs" in report and "loss_curves.png" in report
    png = (out / "loss_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_missing_lab_extra_is_a_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import fail
    assert main(["race", "--quick", "--out", str(tmp_path)]) == 1
    assert "pip install keras-optlab[lab]" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["race"], ["tune"], ["figures"], ["curvature"]])
def test_help_imports_neither_keras_nor_tensorflow(command):
    """``optlab [COMMAND] --help`` builds its parser from keras_optlab.lab.options only
    (it took ~5 s and printed TensorFlow's start-up log when it imported Keras)."""
    import subprocess

    code = (
        "import sys\n"
        "from keras_optlab.cli import main\n"
        f"try:\n    main({[*command, '--help']!r})\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = sorted(m for m in ('keras', 'tensorflow', 'keras_tuner', 'jax', 'numpy', 'matplotlib') if m in sys.modules)\n"
        "print('imported:', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("imported: []"), done.stdout[-500:]
    assert done.stderr == "", done.stderr[-2000:]


def test_the_parser_names_agree_with_the_lab():
    """keras_optlab.lab.options lists what the modules that implement the names define."""
    from keras_optlab import tuning
    from keras_optlab.lab import figures, init_search, options, racing, surfaces

    assert options.SURFACE_NAMES == tuple(surfaces.SURFACES)
    assert options.FIGURE_NAMES == tuple(figures.FIGURES)
    assert options.OPTIMIZER_NAMES == racing.OPTIMIZER_NAMES
    assert options.TUNER_NAMES == tuning.TUNERS
    assert (options.DIGITS_EPOCHS, options.DIGITS_BATCH_SIZE, options.DIGITS_HIDDEN_UNITS) == (
        racing.DIGITS_EPOCHS, racing.DIGITS_BATCH_SIZE, racing.DIGITS_HIDDEN_UNITS)
    assert options.DIGITS_SEARCH_DEFAULTS == init_search.DIGITS_SEARCH_DEFAULTS


def test_race_takes_every_optimizer_of_the_package():
    """`optlab race --optimizers` and `race` by name take every optimizer class of
    keras_optlab.optimizers (NonlinearCG and LBFGS were refused), from one list."""
    import keras

    from keras_optlab import optimizers
    from keras_optlab.lab import options, racing, surfaces
    from keras_optlab.cli import build_parser

    classes = {name for name in optimizers.__all__ if isinstance(getattr(optimizers, name), type)
               and issubclass(getattr(optimizers, name), keras.optimizers.Optimizer)
               and name not in ("BookOptimizer", "ClosureOptimizer", "LineSearchOptimizer")}
    assert set(options.RACE_OPTIMIZER_NAMES) == classes and len(options.RACE_OPTIMIZER_NAMES) == len(classes)
    assert options.OPTIMIZER_NAMES == options.RACE_OPTIMIZER_NAMES[:len(options.OPTIMIZER_NAMES)]
    for name in options.RACE_OPTIMIZER_NAMES:
        assert type(racing.make_optimizer(name, surfaces.quadratic())) is getattr(optimizers, name)
    args = build_parser().parse_args(["race", "--optimizers", *options.RACE_OPTIMIZER_NAMES])
    assert args.optimizers == list(options.RACE_OPTIMIZER_NAMES)


@pytest.fixture
def saved_model_and_data(tmp_path):
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="tiny")
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.save(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(16, 4)).astype("float32"), y=rng.integers(0, 3, 16))
    np.savez(tmp_path / "wide.npz", x=rng.normal(size=(16, 5)).astype("float32"), y=rng.integers(0, 3, 16))
    np.savez(tmp_path / "short.npz", x=rng.normal(size=(16, 4)).astype("float32"), y=rng.integers(0, 3, 8))
    np.savez(tmp_path / "nan.npz", x=np.full((16, 4), np.nan, "float32"), y=rng.integers(0, 3, 16))
    np.savez(tmp_path / "words.npz", x=np.array([["a", "b", "c", "d"]] * 16), y=rng.integers(0, 3, 16))
    (tmp_path / "text.keras").write_text("not a model")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="bare").save(tmp_path / "bare.keras")
    return tmp_path


@pytest.mark.parametrize(
    "model, data, extra, named",
    [
        ("missing.keras", "d.npz", [], "`model`"),
        ("text.keras", "d.npz", [], "`model`"),
        ("m.keras", "missing.npz", [], "`data`"),
        ("m.keras", "m.keras", [], "`x_key`"),  # a zip but no arrays: the keys it holds are listed
        ("m.keras", "d.npz", ["--x-key", "inputs"], "`x_key`"),
        ("m.keras", "d.npz", ["--y-key", "labels"], "`y_key`"),
        ("m.keras", "wide.npz", [], "`x`"),
        ("m.keras", "short.npz", [], "`y` must have as many samples as `x`"),
        ("m.keras", "nan.npz", [], "`x` must be finite"),
        # Tracebacks before (issue 22, item 8): strings for x (a 3-line message too), a
        # model saved uncompiled, more eigenvalues than the 15 parameters.
        ("m.keras", "words.npz", [], "`x` must be an array or a tensor of numbers"),
        ("bare.keras", "d.npz", [], "`model` must be compiled with a loss"),
        ("m.keras", "d.npz", ["--k", "16"], "`--k` must be at most the number of trainable parameters of `model`, 15"),
    ],
)
def test_curvature_bad_files_are_one_line_not_a_traceback(saved_model_and_data, capsys, model, data, extra, named):
    """A missing file, a wrong key or inputs the model does not take (13- and 60-line
    tracebacks before) is one line on stderr naming the argument, exit status 2."""
    d = saved_model_and_data
    argv = ["curvature", str(d / model), str(d / data), *extra, "--out", str(d / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("optlab curvature: ") and named in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert not (d / "out").exists()


def test_curvature_backend_cannot_change_once_keras_runs(saved_model_and_data, capsys):
    import keras

    other = "jax" if keras.backend.backend() != "jax" else "torch"
    d = saved_model_and_data
    assert main(["curvature", str(d / "m.keras"), str(d / "d.npz"), "--backend", other, "--out", str(d / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("optlab curvature: `--backend") and other in err and len(err.splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_curvature_report_on_another_backend(saved_model_and_data, backend):
    """A .keras file saved on one backend, reported on another (a fresh process)."""
    import os
    import subprocess
    import sys

    d = saved_model_and_data
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run(
        [sys.executable, "-m", "keras_optlab.cli", "curvature", str(d / "m.keras"), str(d / "d.npz"),
         "--backend", backend, "--k", "2", "--out", str(d / backend)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = (d / backend / "curvature.md").read_text()
    assert "λ" in text or "lambda" in text.lower(), text[:500]


def test_spectrum_help_exits_zero_and_imports_nothing_heavy(capsys):
    import subprocess

    with pytest.raises(SystemExit) as info:
        main(["spectrum", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: optlab spectrum" in out and "{hessian,gauss_newton,fisher}" in out and "--log-y" in out
    code = (
        "import sys\nfrom keras_optlab.cli import main\n"
        "try:\n    main(['spectrum', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "print('imported:', sorted(m for m in ('keras', 'tensorflow', 'jax', 'numpy', 'matplotlib') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("imported: []"), done.stdout + done.stderr[-2000:]


def test_spectrum_curvature_names_agree_with_the_package():
    from keras_optlab.cli import CURVATURE_NAMES
    from keras_optlab.curvature import CURVATURES

    assert CURVATURE_NAMES == CURVATURES


@pytest.mark.parametrize("argv, option", [(["--probes", "0"], "--probes"), (["--points", "1"], "--points"),
                                          (["--sigma", "0"], "--sigma"), (["--curvature", "newton"], "--curvature")])
def test_spectrum_bad_options_are_rejected(argv, option, capsys):
    with pytest.raises(SystemExit) as info:
        main(["spectrum", "m.keras", "d.npz", *argv])
    assert info.value.code == 2
    assert option in capsys.readouterr().err


def test_spectrum_writes_the_density_and_its_summary(saved_model_and_data, capsys):
    import json

    import numpy as np

    d = saved_model_and_data
    out = d / "spectrum"
    # The tiny model: 4 → 3 logits, 15 parameters; 15 steps make every probe exact.
    argv = ["spectrum", str(d / "m.keras"), str(d / "d.npz"), "--probes", "3", "--steps", "15", "--points", "50",
            "--log-y", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "spectrum.json").read_text())
    assert report["num_parameters"] == 15 and report["num_probes"] == 3 and report["curvature"] == "hessian"
    assert len(report["nodes"]) == 3 and all(abs(sum(w) - 1) < 1e-6 for w in report["weights"])
    # Softmax cross-entropy of a linear model is convex in the weights: no negative
    # eigenvalue beyond float32 rounding of the HVPs.
    assert report["lambda_min"] > -1e-5 * report["lambda_max"]
    # negative_mass: the weight at nodes below −kσ (k = zero_band), none here.
    threshold = report["zero_band"] * report["sigma"]
    assert report["zero_threshold"] == pytest.approx(threshold, rel=1e-12)
    assert report["negative_mass"] == pytest.approx(
        np.mean([sum(w for t, w in zip(ts, ws) if t < -threshold) for ts, ws in zip(report["nodes"], report["weights"])]))
    assert report["negative_mass"] == 0.0
    assert report["near_zero_mass"] + report["positive_mass"] == pytest.approx(1.0, abs=1e-9)
    markdown = (out / "spectrum.md").read_text()
    assert f"{report['lambda_max']:.6g}" in markdown and f"{report['lambda_max']:.6g}" in printed
    png = (out / "spectrum.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_spectrum_bad_files_are_one_line(saved_model_and_data, capsys):
    d = saved_model_and_data
    assert main(["spectrum", str(d / "m.keras"), str(d / "wide.npz"), "--out", str(d / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("optlab spectrum: ") and "`x`" in err and len(err.splitlines()) == 1, err
    assert not (d / "o").exists()


def test_curvature_reports_every_eigenvalue_asked_for(tmp_path, capsys):
    """`--k 101` on 110 parameters: 101 eigenvalues (Lanczos' default 100 steps gave 100)."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(10)], name="wide")
    model.compile("sgd", "mse")
    model.save(tmp_path / "wide.keras")
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(64, 10)).astype("float32"),
             y=rng.normal(size=(64, 10)).astype("float32"))
    assert main(["curvature", str(tmp_path / "wide.keras"), str(tmp_path / "d.npz"), "--k", "101",
                 "--out", str(tmp_path / "out")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| top Hessian eigenvalues"))
    values = [float(v) for v in row.split("|")[2].split(",")]
    assert len(values) == 101 and values == sorted(values, reverse=True)


def test_inputs_of_a_model_without_declared_inputs_are_checked_by_a_call():
    """A subclassed model has no `inputs` (an AttributeError before): x it cannot take is a
    ValueError naming `x`; x it takes passes."""
    import keras
    import numpy as np

    from keras_optlab.lab.curvature_report import check_inputs

    class Affine(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, inputs, training=None):
            return self.dense(inputs)

    model = Affine()
    model(np.zeros((1, 3), "float32"))
    check_inputs(model, np.zeros((5, 3), "float32"))
    with pytest.raises(ValueError, match=r"`x` must be inputs that `model` takes.*\(5, 4\)"):
        check_inputs(model, np.zeros((5, 4), "float32"))
