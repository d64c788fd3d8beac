"""The Sec. 8.7 lab examples (batch_norm_conditioning, continuation, coordinate_descent):
each script's ``--quick`` mode, imported and run in this process, and the claims it prints.

Figures go to ``tmp_path`` through ``OPTLAB_OUT``. tests/examples/test_examples.py also
runs every script's default mode as a subprocess (marked slow).
"""

import json
import math
import pathlib

import keras
import numpy as np
import pytest
from keras import ops

from tests.helpers import load_script

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTLAB_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


def _script(name):
    return load_script(EXAMPLES / f"{name}.py", f"lab87_{name}")


# --- Sec. 8.7.6, continuation -------------------------------------------------------------


@pytest.mark.backend_agnostic
def test_continuation_finds_the_global_basin_plain_descent_does_not(out, capsys):
    continuation = _script("continuation")
    r = continuation.main(["--quick"])
    global_min, local_min = r["minima"][:2]
    # Plain gradient descent stops at the narrow well's minimum, continuation at the global one
    # (within BASIN_TOLERANCE = 1e-3 of each; float64 surfaces, exact gradients).
    assert r["plain_basin"] == 1 and r["continuation_basin"] == 0
    assert np.linalg.norm(r["plain_end"] - np.asarray(local_min)) < 1e-3
    assert np.linalg.norm(r["continuation_end"] - np.asarray(global_min)) < 1e-3
    assert r["continuation_loss"] < r["plain_loss"] - 1.0
    # Every level was warm-started where the previous ended, blur decreasing to 0.
    sigmas = [sigma for sigma, _, _ in r["levels"]]
    assert sigmas == sorted(sigmas, reverse=True) and sigmas[-1] == 0.0
    for (_, _, before), (_, _, after) in zip(r["levels"], r["levels"][1:]):
        np.testing.assert_array_equal(before[-1], after[0])
    # The closed-form blur agrees with its Monte Carlo estimate within 4 standard errors.
    _, mc, error, exact = r["monte_carlo"]
    assert abs(mc - exact) < 4 * error
    printed = capsys.readouterr().out
    assert "at the GLOBAL minimum" in printed and "at the local minimum" in printed
    assert (out / "continuation.png").stat().st_size > 10_000


# --- Sec. 8.7.2, coordinate descent -------------------------------------------------------


def test_coordinate_descent_matches_scikit_learn_and_beats_ista_in_iterations(out, capsys):
    cd = _script("coordinate_descent")
    r = cd.main(["--quick"])
    j_star = r["j_star"]
    # Both methods, run to convergence in float64, reach scikit-learn's objective to 1e-8
    # (relative): the problem is strictly convex here (unique code per signal).
    assert abs(r["cd_converged"] - j_star) <= 1e-8 * abs(j_star)
    assert abs(r["ista_converged"] - j_star) <= 1e-8 * abs(j_star)
    # To the race's tolerance, coordinate descent needs fewer sweeps than ISTA gradient steps.
    assert r["cd"]["iterations"] is not None and r["ista"]["iterations"] is not None
    assert r["cd"]["iterations"] * 3 < r["ista"]["iterations"]
    # The caveat: sweeps grow like 1/α on the coupled quadratic; rotated, one sweep solves it.
    table = {alpha: (sweeps, rotated) for alpha, sweeps, rotated, _ in r["coupled"]}
    assert table[0.001][0] > 100 * table[1.0][0]
    assert all(rotated == 1 for _, rotated in table.values())
    for alpha, (sweeps, _) in table.items():
        # After sweep 1, x = (0.5/(1+α), 0.5/(1+α)²); every later sweep multiplies it by
        # (1 + α)⁻² exactly, so the count is known in closed form.
        first = np.hypot(0.5 / (1 + alpha), 0.5 / (1 + alpha) ** 2)
        expected = 1 + math.ceil(math.log(1e-6 * np.hypot(1.0, 0.5) / first) / (-2 * math.log1p(alpha)))
        assert sweeps == expected, (alpha, sweeps, expected)
    assert "matches the reference" in capsys.readouterr().out
    assert (out / "coordinate_descent.png").stat().st_size > 10_000


def test_coordinate_step_is_the_exact_coordinate_minimizer():
    cd = _script("coordinate_descent")
    x, w, _ = cd.problem(dim=8, atoms=12, signals=1, active=2, seed=3)
    lam = 0.3
    h = np.random.default_rng(0).standard_normal((12, 1))
    after = cd.coordinate_descent(x, w, lam, 1, h)
    # The first coordinate step sets h_0 to the minimizer of J along h_0 (the others fixed):
    # no point of a fine grid around the closed form is lower (float64, spacing 1e-4).
    r = x - w[:, 1:] @ h[1:]
    z = float(w[:, 0] @ r[:, 0])
    best = float(cd.soft_threshold(z, lam / 2) / (w[:, 0] @ w[:, 0]))
    grid = best + np.linspace(-0.05, 0.05, 1001)
    values = [np.sum((r[:, 0] - w[:, 0] * t) ** 2) + lam * abs(t) for t in grid]
    assert abs(grid[int(np.argmin(values))] - best) < 1.5e-4
    # ... and that is the value the script's sweep gave h_0 (it is updated first).
    assert after[0, 0] == pytest.approx(best, rel=1e-12, abs=1e-14)
    # And a full sweep never increases J.
    assert cd.objective(x, w, after, lam) <= cd.objective(x, w, h, lam)


# --- Sec. 8.7.1, batch normalization ------------------------------------------------------


def test_batch_norm_conditioning_quick_run(out, capsys):
    bn = _script("batch_norm_conditioning")
    all_results = bn.main(["--quick"])
    assert [r["setting"] for r in all_results] == list(bn.SETTINGS)
    for r in all_results:
        for name in ("plain", "bn"):
            m = r[name]
            for when in ("init", "trained"):
                assert all(math.isfinite(m[when][key]) for key in ("lambda_max", "lambda_min", "ratio_10"))
                assert m[when]["lambda_max"] > 0
            assert m["critical"] is not None and math.isfinite(m["initial_loss"])
            assert math.isfinite(m["trained_loss"])
        # Our TrainingBatchNorm computes Keras' BatchNormalization (training mode): same loss
        # and gradient (float64: rounding, 1e-12).
        k = r["bn"]["keras_batch_norm"]
        assert k["loss_difference"] < 1e-12 and k["gradient_difference"] < 1e-12
    standardized, scaled = all_results
    # BN makes the loss invariant to the affine input map 4x + 6 (up to its ε = 1e-3): the
    # same spectrum and critical ε; without BN λ_max grows several-fold.
    assert scaled["bn"]["init"]["lambda_max"] == pytest.approx(standardized["bn"]["init"]["lambda_max"], rel=1e-3)
    assert scaled["bn"]["critical"] == standardized["bn"]["critical"]
    assert scaled["plain"]["init"]["lambda_max"] > 3 * standardized["plain"]["init"]["lambda_max"]
    # On the scaled inputs the book's claim holds in this run: larger steps with BN.
    assert scaled["verdict"]["larger_critical"] and scaled["verdict"]["larger_best"]
    saved = json.loads((out / "batch_norm_conditioning.json").read_text())
    assert [s["setting"] for s in saved] == list(bn.SETTINGS)
    assert (out / "batch_norm_conditioning.png").stat().st_size > 10_000
    assert "does BN allow larger steps?" in capsys.readouterr().out


def test_spectrum_is_that_of_the_hessian_built_from_hessian_vector_products():
    bn = _script("batch_norm_conditioning")
    x, y = np.random.default_rng(0).standard_normal((32, 64)), np.arange(32) % 10
    xt, yt = ops.convert_to_tensor(x), ops.convert_to_tensor(y.astype("int32"))
    trainer = bn.Trainer(bn.mlp(True, width=3, depth=2))
    n = sum(w.size for w in trainer.weights())
    hvp = trainer.adapter.compiled(
        lambda vectors: trainer.adapter.hvp(trainer.loss_fn(xt, yt), trainer.variables, lambda _: vectors)[2],
        trainer.model.variables)
    columns = [bn._flat(hvp(trainer._split(unit))) for unit in np.eye(n)]
    h = np.array(columns).T
    # The same matrix by two autodiff routes (Jacobian of the gradient, H eᵢ by double
    # backprop), float64: eigenvalues of order 1 agree to ~1e-14.
    np.testing.assert_allclose(trainer.spectrum(xt, yt), np.linalg.eigvalsh(0.5 * (h + h.T)), atol=1e-12)


def _finite_difference_curvature(trainer, x, y, vector, h=1e-5):
    """vᵀHv from central differences of the (exact) gradient along v."""
    start = trainer.weights()
    sizes = np.cumsum([w.size for w in start])[:-1]
    parts = [p.reshape(w.shape) for p, w in zip(np.split(vector, sizes), start)]
    grads = []
    for sign in (1.0, -1.0):
        trainer.set_weights([w + sign * h * p for w, p in zip(start, parts)])
        _, g = trainer._gradient(x, y)
        grads.append(np.concatenate([np.asarray(ops.convert_to_numpy(t), np.float64).ravel() for t in g]))
    trainer.set_weights(start)
    return float((grads[0] - grads[1]) @ vector / (2 * h))


def _bn_case(keras_batch_norm):
    """A small BN MLP (ours or Keras' BN) on 64 random inputs 4z + 6 (z standard normal,
    large pre-activation means), float64, and a random unit direction v."""
    bn = _script("batch_norm_conditioning")
    x, y = np.random.default_rng(0).standard_normal((64, 64)) * 4 + 6, np.arange(64) % 10
    xt, yt = ops.convert_to_tensor(x), ops.convert_to_tensor(y.astype("int32"))
    trainer = bn.Trainer(bn.mlp(True, width=4, depth=2, keras_batch_norm=keras_batch_norm))
    v = np.random.default_rng(1).standard_normal(sum(w.size for w in trainer.weights()))
    return trainer, xt, yt, v / np.linalg.norm(v)


def test_training_batch_norm_hessian_is_the_hessian():
    trainer, xt, yt, v = _bn_case(keras_batch_norm=False)
    exact = trainer.curvature_along(xt, yt, v)[2]
    # float64, h = 1e-5: the central difference is off by ~h²·|f'''| + 1e-16/h ≈ 1e-10.
    assert exact == pytest.approx(_finite_difference_curvature(trainer, xt, yt, v), rel=1e-7)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="documents TensorFlow's tf.nn.moments")
def test_keras_batch_norm_second_derivatives_are_exact_through_keras_optlab_on_tensorflow():
    # tf.nn.moments uses stop_gradient(mean) in the variance, so a Hessian through
    # keras.layers.BatchNormalization(training=True) by plain nested tapes misses terms;
    # keras_optlab's TF adapter (trainer.adapter) differentiates twice with the variance
    # made differentiable (issue 22): the same tolerance as TrainingBatchNorm's.
    trainer, xt, yt, v = _bn_case(keras_batch_norm=True)
    through_keras = trainer.curvature_along(xt, yt, v)[2]
    assert through_keras == pytest.approx(_finite_difference_curvature(trainer, xt, yt, v), rel=1e-7)
