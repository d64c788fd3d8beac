"""keras_optlab.lab.surfaces: values, gradients against finite differences, minimizers."""

import math

import numpy as np
import pytest

from keras_optlab.lab import surfaces

# Surfaces are keras.ops code: these checks also run under KERAS_BACKEND=jax.
pytestmark = pytest.mark.backend_agnostic

ALL = sorted(surfaces.SURFACES)


def _central_differences(surface, theta, h=1e-6):
    theta = np.asarray(theta, dtype=np.float64)
    grad = np.zeros_like(theta)
    for i in range(len(theta)):
        step = np.zeros_like(theta)
        step[i] = h * max(1.0, abs(theta[i]))
        grad[i] = (surface.value(theta + step) - surface.value(theta - step)) / (2 * step[i])
    return grad


@pytest.mark.parametrize("name", ALL)
def test_gradient_matches_finite_differences(name):
    surface = surfaces.SURFACES[name]()
    rng = np.random.default_rng(0)
    (xmin, xmax), (ymin, ymax) = surface.xlim, surface.ylim
    points = [surface.start] + [(rng.uniform(xmin, xmax), rng.uniform(ymin, ymax)) for _ in range(3)]
    for theta in points:
        exact = surface.gradient(theta)
        approx = _central_differences(surface, theta)
        np.testing.assert_allclose(exact, approx, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(exact).max()))


@pytest.mark.parametrize("name", [n for n in ALL if n != "saddle"])
def test_minimizer_is_a_minimum(name):
    surface = surfaces.SURFACES[name]()
    theta = np.asarray(surface.minimizer)
    assert np.linalg.norm(surface.gradient(theta)) < 1e-8
    best = surface.value(theta)
    assert best < surface.value(surface.start)
    rng = np.random.default_rng(1)
    for _ in range(20):
        assert surface.value(theta + 1e-3 * rng.standard_normal(2)) > best
    assert surface.target(1e-3) == pytest.approx(best + 1e-3)


def test_saddle_has_no_minimizer_and_an_escape_target():
    surface = surfaces.saddle()
    assert surface.minimizer is None and surface.min_value is None
    assert surface.target(1e-3) == surface.escape_value == -1.0
    np.testing.assert_allclose(surface.gradient((0.0, 0.0)), 0.0)
    assert surface.value((0.1, 0.0)) > 0 > surface.value((0.0, 0.1))


@pytest.mark.parametrize("kappa", [1.0, 10.0, 1000.0])
@pytest.mark.parametrize("dim", [2, 5])
def test_quadratic_condition_number(kappa, dim):
    hessian = surfaces.quadratic_hessian(kappa, dim=dim)
    eigenvalues = np.linalg.eigvalsh(hessian)
    assert eigenvalues.max() / eigenvalues.min() == pytest.approx(kappa)
    surface = surfaces.quadratic(kappa, dim=dim)
    theta = np.linspace(-1.0, 1.0, dim)
    assert surface.value(theta) == pytest.approx(0.5 * theta @ hessian @ theta)
    np.testing.assert_allclose(surface.gradient(theta), hessian @ theta, rtol=1e-12)
    with pytest.raises(ValueError, match="condition_number"):
        surfaces.quadratic(0.5)


def test_cliff_wall_slope():
    surface = surfaces.cliff(height=20.0, steepness=30.0, edge=1.0)
    on_the_face = np.linalg.norm(surface.gradient((1.0, 0.0)))
    # H·s/4 from the wall plus the bowl's a·x.
    assert on_the_face == pytest.approx(20.0 * 30.0 / 4 + 0.3, rel=1e-12)
    assert np.linalg.norm(surface.gradient(surface.start)) < 2.0


def test_long_term_dependency_gradients_vanish_and_explode():
    surface = surfaces.long_term_dependency()
    g = np.abs(surface.gradient(surface.start))  # λ = (0.6, 1.15), t = 15
    assert g[0] < 0.1 and g[1] > 100 and g[1] / g[0] > 1e4
    with pytest.raises(ValueError, match="odd"):
        surfaces.long_term_dependency(t=4)


def test_plateau_is_flat_far_from_the_well():
    surface = surfaces.plateau()
    assert surface.value(surface.start) > 0.99
    assert np.linalg.norm(surface.gradient(surface.start)) < 1e-2
    assert surface.value((0.0, 0.0)) == 0.0


def test_grid_for_contours():
    surface = surfaces.rosenbrock()
    x, y, z = surface.grid(points=7)
    assert x.shape == y.shape == z.shape == (7, 7)
    assert z[3, 2] == pytest.approx(surface.value((x[3, 2], y[3, 2])))
    assert math.isfinite(float(z.max()))
