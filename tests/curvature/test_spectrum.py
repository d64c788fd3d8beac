"""top_eigenvalues against numpy.linalg.eigh of the exact Hessian; Hutchinson's trace."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_optlab import curvature
from tests.curvature import exact
from tests.curvature.exact import float64

pytestmark = pytest.mark.backend_agnostic


@pytest.fixture(scope="module")
def mlp_hessian():
    with float64():  # module scope: the autouse float64 fixture is per test
        model, x, y = exact.mlp()
        _, hessian = exact.gradient_and_hessian(exact.mlp_loss(model, x, y), model.trainable_variables)
    return model, x, y, hessian


def test_lanczos_top_three(mlp_hessian):
    model, x, y, hessian = mlp_hessian
    expected = np.linalg.eigh(hessian)[0][::-1][:3]
    values = curvature.top_eigenvalues(model, x, y, k=3, method="lanczos", tol=1e-10)
    # 26 parameters: full-reorthogonalized Lanczos converges well within its 100 steps;
    # float64 residual tolerance 1e-10 · λ_max bounds each Ritz value's error by
    # ~1e-10 · λ_max (Ritz values of a symmetric operator: error ≤ residual).
    np.testing.assert_allclose(values, expected, rtol=exact.rtol(1e-8), atol=exact.rtol(1e-9) * expected[0])


def test_power_top_two(mlp_hessian):
    model, x, y, hessian = mlp_hessian
    expected = np.linalg.eigh(hessian)[0][::-1][:2]
    values = curvature.top_eigenvalues(model, x, y, k=2, method="power", max_iterations=3000, tol=1e-13)
    # The power iteration's Rayleigh quotient converges at the square of the eigenvalue
    # ratio; stopping at relative change 1e-13 leaves an error well under 1e-6.
    np.testing.assert_allclose(values, expected, rtol=exact.rtol(1e-6))


def test_eigenvectors_and_warm_start(mlp_hessian):
    model, x, y, hessian = mlp_hessian
    values, vectors = curvature.top_eigenvalues(model, x, y, tol=1e-10, return_eigenvectors=True)
    u = exact.flatten(vectors[0])
    np.testing.assert_allclose(hessian @ u, values[0] * u, atol=exact.rtol(1e-6) * values[0])
    warm = curvature.top_eigenvalues(model, x, y, method="power", max_iterations=2, initial_vector=vectors[0])
    np.testing.assert_allclose(warm, values, rtol=exact.rtol(1e-8))


def test_negative_spectrum_power_shifts_to_the_largest():
    # H = −2 XᵀX/N (weights) ⊕ bias block: every eigenvalue ≤ 0; the dominant one by
    # magnitude is the most negative, the top one (returned) the least negative.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(loss=lambda y_true, y_pred: -ops.mean(ops.square(y_pred)))
    x = np.random.default_rng(0).standard_normal((8, 3))
    y = np.zeros((8, 1))
    features = np.hstack([x, np.ones((8, 1))])
    expected = np.linalg.eigvalsh(-2 * features.T @ features / 8)[::-1]
    for method in ("lanczos", "power"):
        values = curvature.top_eigenvalues(model, x, y, k=2, method=method, max_iterations=2000, tol=1e-13)
        np.testing.assert_allclose(values, expected[:2], rtol=exact.rtol(1e-6), err_msg=method)


def test_hutchinson_trace_within_four_standard_errors(mlp_hessian):
    model, x, y, hessian = mlp_hessian
    estimate = curvature.hessian_trace(model, x, y, num_samples=200, seed=3)
    assert estimate.num_samples == 200
    # Unbiased estimator; |error| > 4 standard errors has probability < 1e-4 for a
    # normal mean (the mean of 200 draws is close to normal).
    assert abs(estimate.trace - np.trace(hessian)) <= 4 * estimate.standard_error
    # The standard error is the estimator's own: one draw's variance is 2 Σ_{i≠j} H_ij².
    off = hessian - np.diag(np.diag(hessian))
    theory = np.sqrt(2 * np.sum(off**2) / 200)
    assert 0.7 * theory < estimate.standard_error < 1.4 * theory


def test_trace_is_exact_for_a_diagonal_hessian():
    # Linear least squares on one-hot inputs: H = 2 diag(counts)/N, Rademacher exact.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(loss="mse")
    x = np.eye(4)[[0, 1, 1, 2, 3, 3, 3, 0]]
    estimate = curvature.hessian_trace(model, x, np.ones((8, 1)), num_samples=5)
    np.testing.assert_allclose(estimate.trace, 2.0, rtol=exact.rtol(1e-12))
    assert estimate.standard_error < 1e-12


def test_arguments_are_validated(mlp_hessian):
    model, x, y, _ = mlp_hessian
    with pytest.raises(ValueError, match="k=0"):
        curvature.top_eigenvalues(model, x, y, k=0)
    with pytest.raises(ValueError, match="k=27"):
        curvature.top_eigenvalues(model, x, y, k=27)
    with pytest.raises(ValueError, match="method='qr'"):
        curvature.top_eigenvalues(model, x, y, method="qr")
    with pytest.raises(ValueError, match="tol=0"):
        curvature.top_eigenvalues(model, x, y, tol=0)
    with pytest.raises(ValueError, match="initial_vector"):
        curvature.top_eigenvalues(model, x, y, initial_vector=np.zeros(26))
    with pytest.raises(ValueError, match="num_samples=1"):
        curvature.hessian_trace(model, x, y, num_samples=1)
    with pytest.raises(TypeError, match="k=1.0"):
        curvature.top_eigenvalues(model, x, y, k=1.0)
    with pytest.raises(TypeError, match="tol='small'"):
        curvature.top_eigenvalues(model, x, y, tol="small")
    with pytest.raises(TypeError, match="method=None"):
        curvature.top_eigenvalues(model, x, y, method=None)
    with pytest.raises(TypeError, match="max_iterations=True"):
        curvature.top_eigenvalues(model, x, y, max_iterations=True)
    with pytest.raises(TypeError, match="num_samples=2.0"):
        curvature.hessian_trace(model, x, y, num_samples=2.0)


def test_numpy_scalars_are_accepted(mlp_hessian):
    model, x, y, hessian = mlp_hessian
    values = curvature.top_eigenvalues(model, x, y, k=np.int64(2), tol=np.float32(1e-8), max_iterations=np.int32(26))
    np.testing.assert_allclose(values, np.sort(np.linalg.eigvalsh(hessian))[::-1][:2], rtol=exact.rtol(1e-6))


def test_fused_measurement_equals_gradient_curvature_and_top_eigenvalues(mlp_hessian):
    # CurvatureMonitor's one-call measurement (one linearized gradient, the Lanczos steps
    # in the same trace) against the separate functions and the exact Hessian: the same
    # recurrence from the same start, so equal up to float64 rounding of the products.
    from keras_optlab.curvature.spectrum import gradient_curvature_and_lambda_max

    model, x, y, hessian = mlp_hessian
    report, lam, warm = gradient_curvature_and_lambda_max(model, x, y, max_iterations=5, seed=3)
    expected = curvature.gradient_curvature(model, x, y)
    for key in ("loss", "g_norm_sq", "gHg", "critical_learning_rate"):
        np.testing.assert_allclose(report[key], expected[key], rtol=exact.rtol(1e-10), err_msg=key)
    separate = curvature.top_eigenvalues(model, x, y, max_iterations=5, tol=1e-6, seed=3)
    np.testing.assert_allclose(lam, separate[0], rtol=exact.rtol(1e-10))
    # Warm-started from the kept Ritz vector (formed on the device): λ_max climbs to the
    # exact top eigenvalue within a few calls, as top_eigenvalues does from that vector.
    vector = np.asarray(warm.coefficients) @ np.asarray(ops.convert_to_numpy(warm.basis))
    _, lam_2, warm = gradient_curvature_and_lambda_max(model, x, y, max_iterations=5, warm_start=warm)
    again = curvature.top_eigenvalues(model, x, y, max_iterations=5, tol=1e-6, initial_vector=vector)
    np.testing.assert_allclose(lam_2, again[0], rtol=exact.rtol(1e-9))
    top = np.linalg.eigvalsh(hessian)[-1]
    for _ in range(20):
        _, lam_2, warm = gradient_curvature_and_lambda_max(model, x, y, max_iterations=5, warm_start=warm)
    np.testing.assert_allclose(lam_2, top, rtol=exact.rtol(1e-8))
