"""Curvature as a user meets it (issue 22): a diverging fit under CurvatureMonitor, the
curvature functions on a NaN batch, calls with labels of another rank, the first call on
TensorFlow, Gauss-Newton on a probability output, and ill_conditioned under an optimizer
whose step is not −εg.

Each case failed before issue 22's fixes: the monitor ended ``fit`` with
``LinAlgError`` or logged ``critical_learning_rate=inf`` / ``ill_conditioned=0.0`` for a
NaN loss, the functions returned numbers from a NaN loss, TensorFlow could not retrace
for a label of another rank, AutoGraph warned about ``_gcd_import``, Gauss-Newton at
softmax probabilities was the empirical Fisher, and ill_conditioned compared Adam's ε
with SGD's critical rate.
"""

import math
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from keras import ops

from keras_optlab import curvature, optimizers
from keras_optlab.callbacks import CurvatureMonitor
from tests.curvature import exact

pytestmark = pytest.mark.backend_agnostic


def _regression(seed=0):
    """y = 100 x through a 1 → 4 tanh → 1 MLP, float32 (SGD(50) diverges on it)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 1)).astype("float32")
    model = keras.Sequential([
        keras.Input((1,)),
        keras.layers.Dense(4, activation="tanh", kernel_initializer=keras.initializers.GlorotNormal(seed)),
        keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotNormal(seed + 1)),
    ])
    return model, x, 100.0 * x


def _monitor_warnings(caught):
    return [w for w in caught if issubclass(w.category, RuntimeWarning) and "CurvatureMonitor" in str(w.message)]


# ------------------------------------------------------------------ diverging fit (3, 6)


@pytest.mark.parametrize("options", [{}, {"top_eigenvalue": False}, {"spectrum_every": 2}], ids=str)
def test_a_diverging_fit_logs_nan_curvature_warns_once_and_goes_on(options):
    # SGD(50) on y = 100x: the loss overflows to inf by the 7th step and is NaN after.
    model, x, y = _regression()
    model.compile(optimizer=optimizers.SGD(50.0), loss="mse")
    monitor = CurvatureMonitor(x, y, every_n_batches=1, spectrum_probes=1, spectrum_steps=3, **options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[monitor])
    assert len(history.history["loss"]) == 3 and math.isnan(history.history["loss"][-1])  # fit went on
    assert len(_monitor_warnings(caught)) == 1
    assert "non-finite" in str(_monitor_warnings(caught)[0].message)
    diverged = [m for m in monitor.measurements if not math.isfinite(m["loss"])]
    assert len(diverged) >= 4 and len(monitor.measurements) == 12
    for measurement in diverged:
        values = {k: v for k, v in measurement.items() if k not in ("step", "learning_rate", "loss")}
        assert set(monitor.keys) - {"spectrum_" + k for k in ("lambda_max", "lambda_min", "negative_mass")} <= set(values)
        assert all(math.isnan(v) for v in values.values()), measurement  # never inf, never 0.0
    for key in monitor.keys:
        assert math.isnan(history.history[key][-1]), key


# ------------------------------------------------------------------ functions on NaN (3, 6)


CALLS = {
    "hvp": lambda m, x, y: curvature.hvp(m, x, y, [np.ones(v.shape) for v in m.trainable_variables]),
    "hvp_gauss_newton": lambda m, x, y: curvature.hvp(
        m, x, y, [np.ones(v.shape) for v in m.trainable_variables], curvature="gauss_newton"),
    "hvp_fisher": lambda m, x, y: curvature.hvp(
        m, x, y, [np.ones(v.shape) for v in m.trainable_variables], curvature="fisher"),
    "gradient_curvature": lambda m, x, y: curvature.gradient_curvature(m, x, y, learning_rate=0.1),
    "gradient_curvature_gauss_newton": lambda m, x, y: curvature.gradient_curvature(m, x, y, curvature="gauss_newton"),
    "gradient_curvature_per_layer": lambda m, x, y: curvature.gradient_curvature(m, x, y, per_layer=True),
    "top_eigenvalues": lambda m, x, y: curvature.top_eigenvalues(m, x, y, max_iterations=4),
    "top_eigenvalues_power": lambda m, x, y: curvature.top_eigenvalues(m, x, y, method="power", max_iterations=4),
    "top_eigenvalues_per_layer": lambda m, x, y: curvature.top_eigenvalues(m, x, y, max_iterations=4, per_layer=True),
    "hessian_trace": lambda m, x, y: curvature.hessian_trace(m, x, y, num_samples=2),
    "hessian_trace_per_layer": lambda m, x, y: curvature.hessian_trace(m, x, y, num_samples=2, per_layer=True),
    "hessian_spectral_density": lambda m, x, y: curvature.hessian_spectral_density(
        m, x, y, num_probes=1, lanczos_steps=3),
    "density_fisher": lambda m, x, y: curvature.hessian_spectral_density(
        m, x, y, num_probes=1, lanczos_steps=3, curvature="fisher"),
    # issue 23: the operator, the new estimators, and a data set in batches (the NaN
    # sample is in the first batch of 8 of 32; with batch_size 8, in its first batch)
    "operator": lambda m, x, y: curvature.operator(m, x, y) @ np.ones(sum(int(np.prod(v.shape))
                                                                           for v in m.trainable_variables)),
    "hessian_trace_hutch++": lambda m, x, y: curvature.hessian_trace(m, x, y, num_samples=4, method="hutch++"),
    "hessian_diagonal": lambda m, x, y: curvature.hessian_diagonal(m, x, y, num_probes=2),
    "hvp_batches": lambda m, x, y: curvature.hvp(m, x, y, [np.ones(v.shape) for v in m.trainable_variables],
                                                 batch_size=8),
    "gradient_curvature_batches": lambda m, x, y: curvature.gradient_curvature(m, x, y, batch_size=8),
    "top_eigenvalues_batches": lambda m, x, y: curvature.top_eigenvalues(m, x, y, max_iterations=4, batch_size=8),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_nan_label_is_refused_naming_the_loss(name):
    model, x, y = _regression()
    model.compile(loss="mse")
    y = y.copy()
    y[3] = np.nan
    with pytest.raises(ValueError, match=r"compiled loss of model .* is non-finite \(loss=nan\)"):
        CALLS[name](model, x, y)


@pytest.mark.parametrize("power, what", [(1.5, "product"), (0.5, "gradient")])
def test_a_finite_loss_with_a_non_finite_derivative_is_refused_naming_it(power, what):
    # |r|^1.5 at r = 0: finite loss and gradient, second derivative 0.75|r|^-0.5 = inf.
    # |r|^0.5 at r = 0: the gradient is already non-finite.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(loss=lambda y_true, y_pred: ops.mean(ops.abs(y_pred - y_true) ** power))
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    expected = {"product": r"\(loss=0.0\) and its gradient are finite but the Hessian-vector product",
                "gradient": r"is finite \(loss=0.0\) but its gradient is not"}[what]
    for name in ("hvp", "gradient_curvature", "top_eigenvalues", "hessian_trace"):
        with pytest.raises(ValueError, match=expected):
            CALLS[name](model, x, y)


# ------------------------------------------------------------------ labels of another rank (7)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_labels_of_another_rank_after_a_first_call(name):
    # TensorFlow's relaxed retrace generalized y's shape to an unknown rank, which
    # Keras' losses cannot trace: each call alone worked, the second failed.
    model, x, y = _regression()
    model.compile(loss="mse")
    first = CALLS[name](model, x, y[:, 0])
    second = CALLS[name](model, x, y)
    if name == "gradient_curvature":  # the same loss either way (Keras squeezes y)
        assert second["gHg"] == pytest.approx(first["gHg"], rel=1e-6)  # float32 sums, two traces


def test_the_monitor_after_a_call_with_labels_of_another_rank():
    model, x, y = _regression()
    model.compile(optimizer=optimizers.SGD(1e-4), loss="mse")
    curvature.gradient_curvature(model, x, y[:, 0])
    monitor = CurvatureMonitor(x, y, every_n_batches=2, eigen_iterations=3)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[monitor])
    assert math.isfinite(history.history["gHg"][0]) and len(monitor.measurements) == 2


# ------------------------------------------------------------------ first call on TensorFlow (9)


@pytest.mark.tensorflow_only
@pytest.mark.slow
def test_the_first_curvature_call_prints_no_autograph_warning():
    code = (
        "import numpy as np, keras\n"
        "from keras_optlab import curvature\n"
        "m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
        "m.compile(loss='mse')\n"
        "x, y = np.ones((4, 2)), np.ones((4, 1))\n"
        "curvature.gradient_curvature(m, x, y)\n"
        "curvature.top_eigenvalues(m, x, y, max_iterations=2)\n"
        "print('measured')\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("measured")
    output = done.stdout + done.stderr
    assert "AutoGraph" not in output and "_gcd_import" not in output, output[-2000:]


# ------------------------------------------------------------------ Gauss-Newton at the logits (14)


def _classifier(link, loss):
    """exact.mlp()'s network and weights with ``link`` on its 2 outputs, float64."""
    base, x, _ = exact.mlp()
    model = keras.Sequential([
        keras.Input((3,), dtype="float64"),
        keras.layers.Dense(4, activation=exact.tanh, dtype="float64"),
        keras.layers.Dense(2, activation=link, dtype="float64"),
    ])
    model.compile(loss=loss() if isinstance(loss, type) else loss)
    model.set_weights(base.get_weights())
    return model, x


@pytest.mark.parametrize(
    "link, loss, one_hot",
    [
        ("softmax", "sparse_categorical_crossentropy", False),
        ("softmax", keras.losses.CategoricalCrossentropy, True),  # made under float64: its dtype
        ("sigmoid", "binary_crossentropy", True),
    ],
    ids=["softmax-sparse", "softmax-categorical", "sigmoid-binary"],
)
def test_gauss_newton_of_a_probability_output_is_split_at_the_logits(link, loss, one_hot):
    # The exact GGN of the logits z: G = (1/N) Σᵢ Jᵢᵀ H_z Jᵢ with H_z = diag(p) − ppᵀ
    # (softmax cross-entropy) or diag(p(1 − p))/K (sigmoid, mean over the K outputs),
    # Jᵢ = ∂zᵢ/∂θ by hand (exact.mlp_jacobians). Split at p instead, the
    # product was the empirical Fisher's, far from it.
    with exact.float64():
        model, x = _classifier(link, loss)
        labels = np.random.default_rng(7).integers(0, 2, len(x))
        y = np.eye(2)[labels] if one_hot else labels
        z, jac = exact.mlp_jacobians(model, x)
        n, k = z.shape
        if link == "softmax":
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            h_z = np.einsum("ik,kl->ikl", p, np.eye(k)) - np.einsum("ik,il->ikl", p, p)
        else:
            p = 1.0 / (1.0 + np.exp(-z))
            h_z = np.einsum("ik,kl->ikl", p * (1.0 - p), np.eye(k)) / k
        gauss_newton = np.einsum("ika,ikl,ilb->ab", jac, h_z, jac) / n
        v = np.random.default_rng(1).standard_normal(gauss_newton.shape[0])
        got = exact.flatten(curvature.hvp(model, x, y, exact.split_like(v, model.trainable_variables),
                                          curvature="gauss_newton"))
        # float64 throughout; torch's float32-accurate matmuls: exact.rtol.
        np.testing.assert_allclose(got, gauss_newton @ v, rtol=exact.rtol(1e-10),
                                   atol=exact.rtol(1e-10) * np.abs(gauss_newton @ v).max())
        top = curvature.top_eigenvalues(model, x, y, k=2, curvature="gauss_newton", tol=1e-10)
        np.testing.assert_allclose(top, np.linalg.eigvalsh(gauss_newton)[::-1][:2], rtol=exact.rtol(1e-8))


def test_gauss_newton_refuses_probabilities_it_cannot_trace_to_logits():
    # A cross-entropy on probabilities after a linear last layer: no logits to split at.
    with exact.float64():
        model, x = _classifier(None, "categorical_crossentropy")
        y = np.eye(2)[np.zeros(len(x), dtype=int)]
        vectors = [np.ones(v.shape) for v in model.trainable_variables]
        with pytest.raises(ValueError, match=r"categorical_crossentropy \(from_logits=False\).*curvature='fisher'"):
            curvature.hvp(model, x, y, vectors, curvature="gauss_newton")
        with pytest.raises(ValueError, match="from_logits=False"):
            curvature.gradient_curvature(model, x, y, curvature="gauss_newton")
        curvature.hvp(model, x, y, vectors)  # the Hessian has no such question
        # Several outputs, one of them probabilities: refused too (no split per output).
        inputs = keras.Input((3,), dtype="float64")
        two = keras.Model(inputs, [keras.layers.Dense(2, activation="softmax", dtype="float64")(inputs),
                                   keras.layers.Dense(1, dtype="float64")(inputs)])
        two.compile(loss=["categorical_crossentropy", "mse"])
        with pytest.raises(ValueError, match="one of several outputs"):
            curvature.top_eigenvalues(two, x, [y, np.ones((len(x), 1))], curvature="gauss_newton")


# ------------------------------------------------------------------ ill_conditioned (14)


def _ill_conditioned_flags(optimizer):
    """(the monitor's ill_conditioned per batch, the rows it measured, its warnings)
    over one epoch of 4 batches."""
    model, x, y = _regression()
    model.compile(optimizer=optimizer, loss="mse")
    monitor = CurvatureMonitor(x, y, every_n_batches=1, top_eigenvalue=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[monitor])
    assert math.isfinite(history.history["gHg"][0])  # the other keys are measured
    assert history.history["ill_conditioned"][0] == monitor.measurements[-1]["ill_conditioned"] or (
        math.isnan(history.history["ill_conditioned"][0]) and math.isnan(monitor.measurements[-1]["ill_conditioned"])
    )
    return [m["ill_conditioned"] for m in monitor.measurements], monitor.measurements, _monitor_warnings(caught)


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.optimizers.Adam(0.01),
        lambda: optimizers.Momentum(0.01),
        lambda: optimizers.Nesterov(0.01),
        lambda: keras.optimizers.SGD(0.01, weight_decay=0.1),
    ],
    ids=["keras-Adam", "optlab-Momentum", "optlab-Nesterov", "keras-SGD-decay"],
)
def test_ill_conditioned_is_nan_where_the_step_is_not_minus_epsilon_g(make):
    optimizer = make()
    flags, _, caught = _ill_conditioned_flags(optimizer)
    assert len(flags) == 4 and all(math.isnan(f) for f in flags)
    [warning] = caught  # once per monitor
    assert type(optimizer).__name__ in str(warning.message) and "ill_conditioned=NaN" in str(warning.message)


def test_ill_conditioned_keeps_its_meaning_for_sgd_and_not_with_momentum():
    # keras.optimizers.SGD without momentum steps by −εg like Alg. 8.1 (and
    # keras_optlab's SGD, tests/test_callbacks.py): the flag is ε > 2gᵀg/gᵀHg, silently.
    for optimizer in (keras.optimizers.SGD(0.01), optimizers.SGD(0.01)):
        flags, rows, caught = _ill_conditioned_flags(optimizer)
        assert flags == [float(r["learning_rate"] > r["critical_learning_rate"]) for r in rows] and not caught
    flags, _, caught = _ill_conditioned_flags(keras.optimizers.SGD(0.01, momentum=0.9))
    assert all(math.isnan(f) for f in flags) and "momentum=0.9" in str(caught[0].message)


# ------------------------------------------------------------------ issue 23: --batch-size


def test_optlab_curvature_and_spectrum_over_a_whole_npz_in_batches(tmp_path, capsys):
    # `--batch-size N` computes over every sample of the .npz, N at a time: the same
    # figures as all at once (float32 model: summation order, ≤ 1e-4 relative).
    import json

    from keras_optlab.cli import main

    model, x, y = _regression()
    model.compile(loss="mse")
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "d.npz", x=x, y=y)
    reports = {}
    for size in (None, 5):
        extra = [] if size is None else ["--batch-size", str(size)]
        out = tmp_path / f"curvature_{size}"
        assert main(["curvature", str(tmp_path / "m.keras"), str(tmp_path / "d.npz"), "--k", "2",
                     "--learning-rate", "0.01", "--out", str(out), *extra]) == 0
        reports[size] = (out / "curvature.md").read_text()
        out = tmp_path / f"spectrum_{size}"
        assert main(["spectrum", str(tmp_path / "m.keras"), str(tmp_path / "d.npz"), "--probes", "2", "--steps",
                     "5", "--out", str(out), *extra]) == 0
        reports[size, "spectrum"] = json.loads((out / "spectrum.json").read_text())
    capsys.readouterr()

    def numbers(markdown):
        return [float(t) for line in markdown.splitlines() if line.startswith("| ") and "|---" not in line
                for t in line.split("|")[2].replace(",", " ").split() if t[0].isdigit() or t[0] == "-"]

    whole, batched = numbers(reports[None]), numbers(reports[5])
    assert len(whole) >= 8 and len(whole) == len(batched)
    np.testing.assert_allclose(batched, whole, rtol=1e-4)
    assert reports[5, "spectrum"]["batch_size"] == 5 and reports[5, "spectrum"]["num_samples"] == 32
    for key in ("lambda_max", "lambda_min", "trace_estimate"):
        np.testing.assert_allclose(reports[5, "spectrum"][key], reports[None, "spectrum"][key], rtol=1e-4)
