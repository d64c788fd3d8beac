"""hessian_spectral_density (stochastic Lanczos quadrature) against numpy.linalg.eigh of
the exact Hessian of a 4 → 10 (tanh) → 3 float64 MLP (83 parameters); its negative,
near-zero and positive masses on a model whose Hessian is positive semi-definite by
design and on matrices with designed spectra; the shared lanczos() against a matrix
whose quadrature is known."""

import keras
import numpy as np
import pytest

from keras_optlab import curvature
from keras_optlab.curvature.density import DEFAULT_POINTS, ZERO_BAND, estimate_density, gaussian_density
from keras_optlab.curvature.operators import DenseOperator
from tests.curvature import exact
from tests.curvature.exact import float64

pytestmark = pytest.mark.backend_agnostic

N_PARAMETERS = 4 * 10 + 10 + 10 * 3 + 3


def _mlp():
    model = keras.Sequential(
        [
            keras.Input((4,), dtype="float64"),
            keras.layers.Dense(10, activation=exact.tanh, kernel_initializer=keras.initializers.GlorotNormal(0),
                               bias_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=1), dtype="float64"),
            keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotNormal(2), dtype="float64"),
        ]
    )
    model.compile(loss=exact.mse)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 4)), rng.standard_normal((12, 3))
    return model, x, y


@pytest.fixture(scope="module")
def spectrum():
    with float64():  # module scope: the autouse float64 fixture is per test
        model, x, y = _mlp()

        def loss_fn():
            return exact.mean(exact.mse(y, model(x)))

        _, hessian = exact.gradient_and_hessian(loss_fn, model.trainable_variables)
    return model, x, y, np.linalg.eigvalsh(hessian)


def _within(per_probe, expected, sigmas=4.0):
    """The mean of ``per_probe`` is within ``sigmas`` standard errors of ``expected``;
    returns the standard error."""
    se = per_probe.std(ddof=1) / np.sqrt(per_probe.size)
    assert abs(per_probe.mean() - expected) <= sigmas * se, (per_probe.mean(), expected, se)
    return se


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_moments_match_the_exact_spectrum_within_four_standard_errors(spectrum, probe):
    model, x, y, eigenvalues = spectrum
    assert eigenvalues.size == N_PARAMETERS
    result = curvature.hessian_spectral_density(model, x, y, num_probes=40, lanczos_steps=12, seed=5, probe=probe)
    # Each probe's m-point quadrature is exact for polynomials of degree < 2m = 24: its
    # first and second moments are unbiased estimates of tr(H)/n and mean λ². Beyond 4
    # standard errors of a mean of 40 near-normal draws: probability < 1e-3 (t, 39 dof).
    mean, mean_square = eigenvalues.mean(), np.mean(eigenvalues**2)
    se1 = _within(result.moments(1), mean)
    se2 = _within(result.moments(2), mean_square)
    # ...and the check is tight. One probe's variance is at most 2 tr(H²)/n² (Rademacher:
    # 2 Σ_{i≠j} H_ij² / n²; uniform on the sphere: 2 (tr H²/n − (tr H/n)²)/(n + 2)), so
    # the standard error of 40 is at most sqrt(2 mean λ² / (40 n)), which the sample
    # standard error (itself ±~12% for 40 draws) stays under with a 1.5 margin.
    assert se1 <= 1.5 * np.sqrt(2 * mean_square / (40 * N_PARAMETERS))
    assert 4 * se2 < 0.5 * mean_square
    summary = result.summary
    assert summary["trace_estimate"] == pytest.approx(N_PARAMETERS * result.moments(1).mean(), rel=1e-12)
    assert summary["trace_standard_error"] == pytest.approx(N_PARAMETERS * se1, rel=1e-12)
    # The extreme Ritz values are inside the spectrum and, after 12 steps, near its ends.
    tol = exact.rtol(1e-9) * np.abs(eigenvalues).max()
    assert eigenvalues[0] - tol <= summary["lambda_min"] < summary["lambda_max"] <= eigenvalues[-1] + tol
    assert summary["lambda_max"] > eigenvalues[-1] - 0.05 * (eigenvalues[-1] - eigenvalues[0])
    assert all(abs(w.sum() - 1.0) < 1e-12 for w in result.weights)


def test_full_steps_find_the_extreme_eigenvalues_and_the_negative_fraction(spectrum):
    model, x, y, eigenvalues = spectrum
    result = curvature.hessian_spectral_density(model, x, y, num_probes=6, lanczos_steps=200, seed=1)
    # m = n (capped): Lanczos with full reorthogonalization reaches the whole Krylov
    # space; its Ritz values are the eigenvalues the probe sees, to rounding (float64;
    # float32 matmuls on torch, exact.rtol).
    assert result.summary["lanczos_steps"] <= N_PARAMETERS
    scale = np.abs(eigenvalues).max()
    np.testing.assert_allclose(result.summary["lambda_max"], eigenvalues[-1], atol=exact.rtol(1e-9) * scale)
    np.testing.assert_allclose(result.summary["lambda_min"], eigenvalues[0], atol=exact.rtol(1e-9) * scale)
    # The three masses at nodes θ < −kσ, |θ| ≤ kσ, θ > kσ (k = 3 by default): per probe
    # Σ (uᵀv)² over the eigenvalues in each range, whose means are the fractions of the
    # eigenvalues there (no eigenvalue within 1e-6 of 0 or of ±kσ, so no Ritz value
    # changes range by rounding).
    summary = result.summary
    threshold = ZERO_BAND * result.sigma
    assert summary["zero_band"] == ZERO_BAND and summary["zero_threshold"] == pytest.approx(threshold, rel=1e-15)
    assert np.abs(eigenvalues).min() > 1e-6 * scale
    assert np.abs(np.abs(eigenvalues) - threshold).min() > 1e-6 * scale
    below, near, above = eigenvalues < -threshold, np.abs(eigenvalues) <= threshold, eigenvalues > threshold
    assert 0.05 < below.mean() < 0.95 and near.mean() > 0.05 and above.mean() > 0.05
    for key, band, in_range in [("negative_mass", below, lambda t: t < -threshold),
                                ("near_zero_mass", near, lambda t: np.abs(t) <= threshold),
                                ("positive_mass", above, lambda t: t > threshold)]:
        per_probe = np.array([w[in_range(t)].sum() for t, w in zip(result.nodes, result.weights)])
        assert summary[key] == pytest.approx(per_probe.mean(), rel=1e-12), key
        _within(per_probe, band.mean())
    assert summary["negative_mass"] + summary["near_zero_mass"] + summary["positive_mass"] == pytest.approx(1.0, abs=1e-12)
    # masses(0) is the plain split at 0: the fraction of negative eigenvalues.
    negative_nodes = np.array([w[t < 0].sum() for t, w in zip(result.nodes, result.weights)])
    assert result.masses(0.0)[0] == pytest.approx(negative_nodes.mean(), rel=1e-12)
    _within(negative_nodes, np.mean(eigenvalues < 0))
    assert result.masses() == (summary["negative_mass"], summary["near_zero_mass"], summary["positive_mass"])


def _rank_deficient_least_squares(seed=0):
    """A float64 linear model 10 → 3 under the mean squared error on 6 samples: H =
    (2/(6·3)) [X 1]ᵀ[X 1] ⊗ I₃ (33 parameters), positive semi-definite, rank 18: 15
    exact zero eigenvalues, the rest from eigh of the 11 × 11 factor."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((6, 10)), rng.standard_normal((6, 3))
    model = keras.Sequential([keras.Input((10,), dtype="float64"),
                              keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotNormal(0),
                                                 dtype="float64")])
    model.compile(loss=exact.mse)
    design = np.hstack([x, np.ones((6, 1))])
    # Parameters in Keras' order: the kernel (10, 3) row-major, then the bias (3,).
    factor = 2.0 * design.T @ design / (6 * 3)
    eigenvalues = np.sort(np.repeat(np.linalg.eigvalsh(factor), 3))
    return model, x, y, eigenvalues


def test_positive_semi_definite_hessian_has_no_negative_mass():
    model, x, y, eigenvalues = _rank_deficient_least_squares()
    assert eigenvalues.size == 33 and np.sum(np.abs(eigenvalues) < 1e-12 * eigenvalues.max()) == 15
    result = curvature.hessian_spectral_density(model, x, y, num_probes=20, lanczos_steps=33, seed=0)
    summary = result.summary
    # H ⪰ 0: every Ritz value is ≥ 0 up to rounding (Cauchy interlacing) — none below
    # −kσ, whatever the rounding puts on either side of the 15 zero eigenvalues.
    assert min(t.min() for t in result.nodes) > -exact.rtol(1e-12) * summary["lambda_max"]
    assert summary["negative_mass"] == 0.0
    threshold = summary["zero_threshold"]
    assert np.abs(np.abs(eigenvalues) - threshold).min() > 1e-6 * eigenvalues.max()
    near = np.array([w[np.abs(t) <= threshold].sum() for t, w in zip(result.nodes, result.weights)])
    assert summary["near_zero_mass"] == pytest.approx(near.mean(), rel=1e-12)
    _within(near, np.mean(np.abs(eigenvalues) <= threshold))
    assert summary["positive_mass"] == pytest.approx(1.0 - summary["near_zero_mass"], abs=1e-12)


@pytest.mark.tensorflow_only
def test_weight_at_negative_nodes_is_not_negative_curvature():
    # Why negative_mass stops at −kσ: on the PSD Hessian above, rounding leaves the Ritz
    # value of the zero eigenspace a hair below 0 for some probes, and the plain split at 0
    # counts it (measured on TensorFlow's CPU kernels: 0.249 of the weight).
    model, x, y, _ = _rank_deficient_least_squares()
    result = curvature.hessian_spectral_density(model, x, y, num_probes=20, lanczos_steps=33, seed=0)
    assert result.masses(0.0)[0] > 0.1 and result.summary["negative_mass"] == 0.0


def test_designed_spectrum_splits_into_negative_near_zero_and_positive():
    # 100 eigenvalues: 10 in [−1, −0.5], 30 exact zeros, 20 in ±1e-4 (of either sign,
    # inside the band kσ = 3 · 0.01 · 4 = 0.12: not distinguishable from 0), 40 in [0.2, 3].
    rng = np.random.default_rng(3)
    eigenvalues = np.concatenate([rng.uniform(-1.0, -0.5, 10), np.zeros(30), rng.uniform(-1e-4, 1e-4, 20),
                                  rng.uniform(0.2, 3.0, 40)])
    eigenvalues[[0, -1]] = -1.0, 3.0  # the ends: σ = 1% of the range, 0.04
    basis, _ = np.linalg.qr(rng.standard_normal((100, 100)))
    op = DenseOperator(basis @ np.diag(eigenvalues) @ basis.T)
    # 100 steps reach every distinct eigenvalue a probe sees (Lanczos stops at the 71st).
    result = estimate_density(op, num_probes=30, lanczos_steps=100, seed=0)
    summary = result.summary
    assert result.curvature is None and result.sigma == pytest.approx(0.04, rel=1e-9)
    assert summary["zero_threshold"] == pytest.approx(0.12, rel=1e-9)
    for key, expected, in_range in [("negative_mass", 0.1, lambda t: t < -0.12),
                                    ("near_zero_mass", 0.5, lambda t: np.abs(t) <= 0.12),
                                    ("positive_mass", 0.4, lambda t: t > 0.12)]:
        per_probe = np.array([w[in_range(t)].sum() for t, w in zip(result.nodes, result.weights)])
        assert summary[key] == pytest.approx(per_probe.mean(), rel=1e-12), key
        _within(per_probe, expected)
    # The split at 0 also counts the band's 9 small negative eigenvalues (0.09 expected)
    # and, on the probes where rounding leaves the zero eigenspace's Ritz value (weight
    # ~0.3) a hair below 0, the exact zeros (here 0.35 in all, against 0.109).
    assert np.sum((eigenvalues < 0) & (eigenvalues > -1e-4)) == 9
    negative_nodes = np.array([w[t < 0].sum() for t, w in zip(result.nodes, result.weights)])
    assert result.masses(0.0)[0] == pytest.approx(negative_nodes.mean(), rel=1e-12)
    assert negative_nodes.mean() > summary["negative_mass"] + 0.05
    # k is an argument: with k = 0 the band holds only exact zeros (to rounding: none).
    narrow = estimate_density(op, num_probes=3, lanczos_steps=100, seed=0, zero_band=0.0)
    assert narrow.summary["zero_threshold"] == 0.0
    assert narrow.summary["negative_mass"] == pytest.approx(narrow.masses(0.0)[0], rel=1e-12)
    assert narrow.masses(0.0)[0] == pytest.approx(
        np.mean([w[t < 0].sum() for t, w in zip(narrow.nodes, narrow.weights)]), rel=1e-12)


def test_estimate_density_refuses_what_is_not_an_operator():
    with pytest.raises(TypeError, match="`op` must be a keras_optlab.curvature.operators.LinearOperator"):
        estimate_density(np.eye(3))


def test_density_is_the_gaussian_mixture_of_the_nodes_and_integrates_to_one(spectrum):
    model, x, y, _ = spectrum
    result = curvature.hessian_spectral_density(model, x, y, num_probes=3, lanczos_steps=10)
    assert result.grid.shape == result.density.shape == (DEFAULT_POINTS,)
    lo, hi = result.summary["lambda_min"], result.summary["lambda_max"]
    assert result.sigma == pytest.approx(0.01 * (hi - lo))
    assert result.grid[0] == pytest.approx(lo - 5 * result.sigma) and result.grid[-1] == pytest.approx(hi + 5 * result.sigma)
    # ±5σ past the extreme nodes leaves < 1e-6 of each kernel outside; the grid step is
    # ~0.1σ, where the trapezoid rule on a Gaussian errs far below 1e-6.
    assert np.trapezoid(result.density, result.grid) == pytest.approx(1.0, abs=1e-5)
    t = np.array([lo, 0.5 * (lo + hi)])
    by_hand = sum(
        np.sum(w[None, :] * np.exp(-0.5 * ((t[:, None] - n[None, :]) / 0.3) ** 2), axis=1)
        for n, w in zip(result.nodes, result.weights)
    ) / (3 * 0.3 * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(gaussian_density(t, result.nodes, result.weights, 0.3), by_hand, rtol=1e-12)
    given = curvature.hessian_spectral_density(model, x, y, num_probes=3, lanczos_steps=10, grid=t, sigma=0.3)
    np.testing.assert_allclose(given.density, by_hand, rtol=1e-12)
    assert given.summary["lambda_max"] == result.summary["lambda_max"]  # same seed, same probes
    assert curvature.hessian_spectral_density(model, x, y, num_probes=3, lanczos_steps=10, grid=7).grid.size == 7


def test_gauss_newton_density_has_no_negative_mass(spectrum):
    model, x, y, _ = spectrum
    result = curvature.hessian_spectral_density(model, x, y, num_probes=2, lanczos_steps=15, curvature="gauss_newton")
    assert result.curvature == "gauss_newton"
    # G = JᵀH_LJ is positive semi-definite: Ritz values ≥ −(rounding) · λ_max.
    assert result.summary["lambda_min"] > -exact.rtol(1e-10) * result.summary["lambda_max"]
    assert result.summary["negative_mass"] == 0.0


def test_lanczos_nodes_and_weights_are_gauss_quadrature():
    # H = diag(d), v ∝ w: with m = n steps the Ritz values are d and the weights (e₁ᵀs)²
    # are the squared components of v, each on its own eigenvalue.
    d = np.array([-2.0, -0.5, 0.25, 1.0, 3.0, 7.0])
    v = np.array([0.1, 0.5, 0.2, 0.3, 0.6, 0.4])
    v /= np.linalg.norm(v)
    result = curvature.lanczos(lambda u: d * u, v, steps=10)
    assert result.steps == 6 and result.basis.shape == (6, 6)
    np.testing.assert_allclose(result.ritz_values, d, rtol=1e-12)
    np.testing.assert_allclose(result.ritz_vectors[0] ** 2, v**2, rtol=1e-10)
    np.testing.assert_allclose(result.basis @ result.basis.T, np.eye(6), atol=1e-12)
    # A start vector in a 2-dimensional invariant subspace: Lanczos stops after 2 steps.
    v2 = np.array([0.0, 0.6, 0.0, 0.0, 0.8, 0.0])
    short = curvature.lanczos(lambda u: d * u, v2, steps=10)
    assert short.steps == 2
    np.testing.assert_allclose(short.ritz_values, [-0.5, 3.0], rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, error, echo",
    [
        ({"num_probes": 0}, ValueError, "num_probes=0"),
        ({"num_probes": 2.0}, TypeError, "num_probes=2.0"),
        ({"lanczos_steps": 0}, ValueError, "lanczos_steps=0"),
        ({"lanczos_steps": "10"}, TypeError, "lanczos_steps='10'"),
        ({"sigma": 0.0}, ValueError, "sigma=0.0"),
        ({"sigma": -1}, ValueError, "sigma=-1"),
        ({"sigma": float("nan")}, ValueError, "sigma=nan"),
        ({"sigma": "wide"}, TypeError, "sigma='wide'"),
        ({"grid": 1}, ValueError, "grid=1"),
        ({"grid": True}, TypeError, "grid=True"),
        ({"grid": "fine"}, TypeError, "grid='fine'"),
        ({"grid": [[0.0, 1.0]]}, ValueError, "grid=[[0.0, 1.0]]"),
        ({"grid": [0.0, np.inf]}, ValueError, "grid=[0.0, inf]"),
        ({"curvature": "newton"}, ValueError, "curvature='newton'"),
        ({"curvature": None}, TypeError, "curvature=None"),
        ({"seed": 0.5}, TypeError, "seed=0.5"),
        ({"probe": "uniform"}, ValueError, "probe='uniform'"),
        ({"sample_weight": "w"}, TypeError, "sample_weight='w'"),
        ({"zero_band": -1.0}, ValueError, "zero_band=-1.0"),
        ({"zero_band": "wide"}, TypeError, "zero_band='wide'"),
        ({"zero_band": float("inf")}, ValueError, "zero_band=inf"),
    ],
)
def test_bad_arguments_name_themselves(spectrum, kwargs, error, echo):
    model, x, y, _ = spectrum
    with pytest.raises(error) as info:
        curvature.hessian_spectral_density(model, x, y, **kwargs)
    assert echo in str(info.value), str(info.value)


def test_numpy_scalars_are_accepted(spectrum):
    model, x, y, _ = spectrum
    result = curvature.hessian_spectral_density(model, x, y, num_probes=np.int64(2), lanczos_steps=np.int32(5),
                                                grid=np.int64(11), sigma=np.float32(0.5), seed=np.int64(3))
    assert result.grid.size == 11 and result.summary["num_probes"] == 2 and result.sigma == 0.5
