"""The ``optlab`` command as a user runs it (issue 22, item 8): a fresh process, on tiny
models saved in ``tmp_path``, stdout and stderr pipes (as in a log file or CI).

Every run uses the backend this suite runs on (``KERAS_BACKEND`` is inherited); the
curvature and spectrum of a saved model run on every backend, the argument-handling
cases (one line and exit 2, plain progress lines) on TensorFlow only.
"""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.backend_agnostic

ANSI = "\x1b["


def optlab(*argv, timeout=300):
    """``optlab ARGV`` in a new process; returns the ``CompletedProcess`` (text)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "keras_optlab.cli", *map(str, argv)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def refusal(done):
    """The one ``optlab ...:`` line of a refused run (its stderr also holds the C++
    start-up lines of the backend's libraries, which are not ``optlab``'s)."""
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("optlab")]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def softmax_hessian_eigenvalues(kernel, bias, x):
    """Eigenvalues of the Hessian, in the weights, of the mean softmax cross-entropy of
    the linear model ``x @ kernel + bias``, in float64: (1/N) Σᵢ (x̃ᵢx̃ᵢᵀ) ⊗ (diag pᵢ − pᵢpᵢᵀ)
    with x̃ = (x, 1) (the labels do not enter); descending."""
    x = np.asarray(x, np.float64)
    logits = x @ kernel + bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    x1 = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    h = sum(np.kron(np.outer(a, a), np.diag(q) - np.outer(q, q)) for a, q in zip(x1, p)) / len(x)
    return np.sort(np.linalg.eigvalsh(h))[::-1]


@pytest.fixture
def second_order_model(tmp_path):
    """A ``keras_optlab.SecondOrder`` around a 4 → 3 linear softmax model (15 parameters),
    compiled with Newton, trained one step and saved; its batch in d.npz."""
    import keras_optlab.optimizers  # noqa: F401  (registers the classes: issue 22, item 5)
    import keras_optlab.second_order
    from keras_optlab.optimizers import Newton

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype("float32"), rng.integers(0, 3, 16)
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="inner")
    model = keras_optlab.second_order.SecondOrder(inner)
    model.compile(optimizer=Newton(damping=1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "newton.keras")
    np.savez(tmp_path / "d.npz", x=x, y=y)
    kernel, bias = (np.asarray(w, np.float64) for w in inner.get_weights())
    return tmp_path, softmax_hessian_eigenvalues(kernel, bias, x)


def test_curvature_of_a_saved_second_order_model(second_order_model):
    """`optlab curvature` on a saved SecondOrder (an AttributeError, 'SecondOrder' object
    has no attribute 'inputs', before): the eigenvalues are those of the wrapped model's
    loss, checked against the exact Hessian in NumPy."""
    d, exact = second_order_model
    done = optlab("curvature", d / "newton.keras", d / "d.npz", "--k", 2, "--out", d / "curvature")
    assert done.returncode == 0, done.stderr[-3000:]
    row = next(line for line in (d / "curvature" / "curvature.md").read_text().splitlines()
               if line.startswith("| top Hessian eigenvalues"))
    reported = [float(v) for v in row.split("|")[2].split(",")]
    np.testing.assert_allclose(reported, exact[:2], rtol=1e-4)


def test_spectrum_of_a_saved_second_order_model(second_order_model):
    d, exact = second_order_model
    done = optlab("spectrum", d / "newton.keras", d / "d.npz", "--probes", 2, "--steps", 15, "--points", 50,
                  "--out", d / "spectrum")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((d / "spectrum" / "spectrum.json").read_text())
    # 15 Lanczos steps on 15 parameters: every probe's extreme Ritz values are exact.
    assert report["num_parameters"] == 15
    assert report["lambda_max"] == pytest.approx(exact[0], rel=1e-4)


@pytest.fixture
def plain_models(tmp_path):
    """A compiled 4 → 3 linear model (15 parameters), the same uncompiled, and a batch."""
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="plain")
    model.save(tmp_path / "uncompiled.keras")
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(16, 4)).astype("float32"), y=rng.integers(0, 3, 16))
    return tmp_path


@pytest.mark.tensorflow_only  # CLI argument handling, no backend math: the curvature/spectrum runs above take every backend
def test_more_eigenvalues_than_parameters_is_one_line(plain_models):
    """`--k 5000` on 15 parameters (a ValueError traceback from top_eigenvalues before)."""
    d = plain_models
    line = refusal(optlab("curvature", d / "m.keras", d / "d.npz", "--k", 5000, "--out", d / "out"))
    assert line.startswith("optlab curvature: `--k`") and "15" in line and "5000" in line, line
    assert not (d / "out").exists()


@pytest.mark.tensorflow_only  # CLI argument handling, no backend math: the curvature/spectrum runs above take every backend
def test_an_uncompiled_model_is_one_line(plain_models):
    """A model saved before compile() (a ValueError traceback from the curvature module before)."""
    d = plain_models
    line = refusal(optlab("curvature", d / "uncompiled.keras", d / "d.npz", "--out", d / "out"))
    assert line.startswith("optlab curvature: `model` must be compiled with a loss"), line
    assert "uncompiled.keras" in line, line
    assert not (d / "out").exists()


@pytest.mark.tensorflow_only  # CLI argument handling, no backend math: the curvature/spectrum runs above take every backend
def test_race_takes_the_line_search_optimizers(tmp_path):
    """`--optimizers NonlinearCG LBFGS` (refused by argparse before, though the library's
    race takes them): they race, and the table and report hold them."""
    done = optlab("race", "--problems", "quadratic", "--optimizers", "NonlinearCG", "LBFGS", "--steps", 10,
                  "--out", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "race.md").read_text()
    for name in ("NonlinearCG", "LBFGS"):
        assert f"| quadratic | {name} |" in done.stdout and f"| quadratic | {name} |" in report


@pytest.mark.tensorflow_only  # CLI argument handling, no backend math: the curvature/spectrum runs above take every backend
def test_race_into_a_pipe_prints_no_terminal_codes(tmp_path):
    """Keras' progress bar (ANSI colour codes, backspaces and carriage returns) only on a
    terminal; into a pipe one plain line per run."""
    done = optlab("race", "--problems", "quadratic", "--optimizers", "SGD", "Adam", "--steps", 10,
                  "--out", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for stream in (done.stdout, done.stderr):
        assert ANSI not in stream and "\b" not in stream and "\r" not in stream, repr(stream[:500])
    assert re.search(r"^ *SGD on quadratic: final loss", done.stdout, re.MULTILINE), done.stdout
    assert re.search(r"^ *Adam on quadratic: final loss", done.stdout, re.MULTILINE), done.stdout


@pytest.mark.tensorflow_only  # CLI argument handling, no backend math: the curvature/spectrum runs above take every backend
@pytest.mark.slow
def test_tune_into_a_pipe_prints_no_terminal_codes(tmp_path):
    """`optlab tune` without --verbose: fit's per-epoch lines, not its progress bar."""
    pytest.importorskip("keras_tuner")
    done = optlab("tune", "--trials", 1, "--epochs", 1, "--depth", 1, "--width", 4, "--out", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for stream in (done.stdout, done.stderr):
        assert ANSI not in stream and "\b" not in stream, repr(stream[:500])
    assert re.search(r"^\d+/\d+ - \d+s - .*val_loss: ", done.stdout, re.MULTILINE), done.stdout[-2000:]


@pytest.mark.tensorflow_only  # CLI argument handling, no backend math: the curvature/spectrum runs above take every backend
@pytest.mark.parametrize("command", [
    ["race"], ["figures"], ["tune"], ["curvature", "m.keras", "d.npz"], ["spectrum", "m.keras", "d.npz"],
])
def test_an_output_directory_that_is_a_file_is_one_line(tmp_path, command):
    """`--out` naming a file, or a path through one (a FileExistsError traceback, after the
    whole run for race, before): refused by the parser, before Keras is imported."""
    (tmp_path / "results").write_text("a file, not a folder")
    for out in (tmp_path / "results", tmp_path / "results" / "inside"):
        done = optlab(*command, "--out", out, timeout=60)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
        assert done.stderr.splitlines()[-1] == (
            f"optlab {command[0]}: error: argument --out: must be a directory, but {tmp_path / 'results'} is a "
            f"file, got {out}"), done.stderr[-1000:]
