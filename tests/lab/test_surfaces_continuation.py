"""keras_optlab.lab.surfaces.gaussian_wells: the closed-form blur against Monte Carlo and
quadrature, the gradient against the NumPy transcription, the minima, bad arguments."""

import numpy as np
import pytest
from keras import ops

from keras_optlab.lab import surfaces

pytestmark = pytest.mark.backend_agnostic


def _numpy_value(theta, sigma, wells=surfaces.WELLS, bowl=0.15):
    """J_σ written out again from the formula of the docstring (NumPy, float64)."""
    theta = np.asarray(theta, np.float64)
    value = 0.5 * bowl * np.sum(theta**2, axis=-1) + bowl * sigma**2
    for cx, cy, depth, width in wells:
        var = width**2 + sigma**2
        value = value - depth * width**2 / var * np.exp(-0.5 * np.sum((theta - [cx, cy]) ** 2, axis=-1) / var)
    return value


def test_unblurred_surface_is_the_formula():
    surface = surfaces.gaussian_wells()
    for theta in [(0.3, -0.7), surface.start, (-1.5, -1.2)]:
        # float64 end to end: agreement to rounding (1e-12 absolute on values of order 1).
        assert surface.value(theta) == pytest.approx(_numpy_value(theta, 0.0), abs=1e-12)


@pytest.mark.parametrize("sigma", [0.3, 1.2])
def test_blur_equals_the_expectation_by_quadrature(sigma):
    # E_{ε∼N(0,σ²I)} J(θ + ε) by the trapezoid rule of the unblurred J on a uniform grid
    # over ±8σ (601 nodes per axis, spacing ≤ 0.02 ≪ the narrowest width 0.35: for smooth
    # integrands decaying like Gaussians the rule converges geometrically, ~1e-12 here).
    t = np.linspace(-8.0, 8.0, 601)
    weights = np.exp(-0.5 * t**2)
    weights /= weights.sum()
    gx, gy = np.meshgrid(t, t)
    blurred = surfaces.gaussian_wells(blur=sigma)
    for theta in [(-2.0, -1.8), (0.5, 0.2), (-1.5, -1.2)]:
        points = np.asarray(theta) + sigma * np.stack([gx.ravel(), gy.ravel()], 1)
        expectation = float(np.sum(np.outer(weights, weights).ravel() * _numpy_value(points, 0.0)))
        assert blurred.value(theta) == pytest.approx(expectation, abs=1e-9)


def test_blur_matches_monte_carlo():
    # 100 000 samples, seed 0: the closed form lies within 4 standard errors of the mean.
    sigma, theta = 2.0, np.array([-2.0, -1.8])
    samples = theta + sigma * np.random.default_rng(0).standard_normal((100_000, 2))
    values = _numpy_value(samples, 0.0)
    mean, error = values.mean(), values.std() / np.sqrt(len(values))
    assert abs(surfaces.gaussian_wells(blur=sigma).value(theta) - mean) < 4 * error


@pytest.mark.parametrize("sigma", [0.0, 0.6])
def test_gradient_matches_central_differences(sigma):
    surface = surfaces.gaussian_wells(blur=sigma)
    h = 1e-6
    for theta in [(-2.0, -1.8), (0.4, 1.1)]:
        theta = np.asarray(theta)
        approx = [(_numpy_value(theta + h * e, sigma) - _numpy_value(theta - h * e, sigma)) / (2 * h)
                  for e in np.eye(2)]
        # central differences in float64 with h = 1e-6: error ~h² + 1e-16/h ~ 1e-10.
        np.testing.assert_allclose(surface.gradient(theta), approx, atol=1e-8)


def test_minima_global_first_and_the_blur_swallows_the_narrow_well():
    minima = surfaces.gaussian_wells_minima()
    assert len(minima) == 2
    surface = surfaces.gaussian_wells()
    values = [surface.value(m) for m in minima]
    assert values[0] < values[1]
    assert surface.minimizer == minima[0]
    for m in minima:  # stationary (float64: gradient ~1e-15) with a positive definite Hessian
        assert np.abs(surface.gradient(m)).max() < 1e-10
        h = np.array([surface.gradient(np.asarray(m) + 1e-5 * e) - surface.gradient(np.asarray(m) - 1e-5 * e)
                      for e in np.eye(2)]) / 2e-5
        assert np.all(np.linalg.eigvalsh(0.5 * (h + h.T)) > 0)
    # The global minimizer lies in the deep well, the other in the narrow one.
    assert np.linalg.norm(np.asarray(minima[0]) - surfaces.WELLS[0][:2]) < 0.2
    assert np.linalg.norm(np.asarray(minima[1]) - surfaces.WELLS[1][:2]) < 0.2
    assert len(surfaces.gaussian_wells_minima(blur=1.2)) == 1


def test_surface_runs_batched_on_the_backend():
    surface = surfaces.gaussian_wells(blur=0.6)
    x, y, z = surface.grid(points=5)
    np.testing.assert_allclose(z, _numpy_value(np.stack([x, y], -1), 0.6), atol=1e-12)
    assert ops.convert_to_numpy(surface(ops.convert_to_tensor(np.zeros(2)))).shape == ()


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"blur": -0.1}, ValueError),
        ({"blur": "1"}, TypeError),
        ({"bowl": 0.0}, ValueError),
        ({"wells": ()}, ValueError),
        ({"wells": "abc"}, TypeError),
        ({"wells": ((0.0, 0.0, 1.0),)}, TypeError),
        ({"wells": ((0.0, 0.0, -1.0, 1.0),)}, ValueError),
    ],
)
def test_bad_arguments(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        surfaces.gaussian_wells(**kwargs)


def test_numpy_scalars_accepted():
    assert surfaces.gaussian_wells(blur=np.float32(0.5), bowl=np.float64(0.15)).minimizer == pytest.approx(
        surfaces.gaussian_wells(blur=0.5).minimizer, abs=1e-7)
