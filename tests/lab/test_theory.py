"""The theory of Goodfellow et al. (2016), ch. 8, in numbers, on the lab's surfaces.

Convergence rates on a quadratic with condition number κ (Sec. 8.2.1, 8.3.2), momentum's
terminal speed (Sec. 8.3.2), Newton in one step (Sec. 8.6.1) and clipping on a cliff
(Sec. 8.2.4, 10.11.1). Everything in float64.
"""

import math

import keras
import numpy as np
import pytest

from keras_optlab import optimizers
from keras_optlab.lab import run_surface, surfaces


def _rate(row, first, last):
    """Measured contraction per step of ‖θ_k − θ*‖ between steps ``first`` and ``last``."""
    norms = np.linalg.norm(row.trajectory, axis=1)
    return (norms[last] / norms[first]) ** (1.0 / (last - first))


@pytest.mark.parametrize("kappa", [10.0, 100.0])
def test_gradient_descent_contracts_by_kappa_minus_one_over_kappa_plus_one(kappa):
    surface = surfaces.quadratic(kappa)  # eigenvalues 1 and κ
    row = run_surface(surface, optimizers.SGD(learning_rate=2.0 / (1.0 + kappa)), steps=100)
    expected = (kappa - 1) / (kappa + 1)
    assert _rate(row, 20, 100) == pytest.approx(expected, rel=0.02)
    print(f"κ={kappa:g}: GD rate {_rate(row, 20, 100):.6f}, theory {expected:.6f}")


@pytest.mark.parametrize("kappa", [10.0, 100.0])
def test_heavy_ball_with_optimal_parameters_contracts_by_sqrt_kappa_rate(kappa):
    lmin, lmax = 1.0, kappa
    epsilon = 4.0 / (math.sqrt(lmax) + math.sqrt(lmin)) ** 2
    alpha = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
    surface = surfaces.quadratic(kappa)
    row = run_surface(surface, optimizers.Momentum(learning_rate=epsilon, momentum=alpha), steps=200)
    expected = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    # Both extreme modes sit on a double root, so the error is ~ k·ρᵏ: measured late,
    # over 100 steps, the k factor adds (200/100)^(1/100) − 1 = 0.7 %.
    measured = _rate(row, 100, 200)
    assert measured == pytest.approx(expected, rel=0.02)
    gd = (kappa - 1) / (kappa + 1)
    assert measured < gd
    print(f"κ={kappa:g}: heavy-ball rate {measured:.6f}, theory {expected:.6f} (GD {gd:.6f})")


def test_gradient_descent_beyond_two_over_lambda_max_diverges():
    surface = surfaces.quadratic(20.0)
    stable = run_surface(surface, optimizers.SGD(learning_rate=0.099), steps=200)
    unstable = run_surface(surface, optimizers.SGD(learning_rate=0.101), steps=200)
    assert stable.train_loss < 1e-3 * stable.loss_history[0]  # |1 − 0.099·20| = 0.98 per step
    assert unstable.train_loss > unstable.loss_history[0]


@pytest.mark.parametrize("cls", [optimizers.Momentum, optimizers.Nesterov])
def test_terminal_speed_on_a_constant_gradient(cls):
    epsilon, alpha = 0.1, 0.9
    g = np.array([3.0, 4.0])
    theta = keras.Variable(np.zeros(2), dtype="float64")
    optimizer = cls(learning_rate=epsilon, momentum=alpha)
    previous = np.zeros(2)
    for _ in range(300):
        optimizer.apply([keras.ops.convert_to_tensor(g)], [theta])
        current = keras.ops.convert_to_numpy(theta)
        step, previous = np.linalg.norm(current - previous), current
    terminal = epsilon * np.linalg.norm(g) / (1 - alpha)  # = 5
    # Keras keeps ε in float32 (0.1 → 0.10000000149), hence 1e-7 rather than 1e-15.
    assert step == pytest.approx(terminal, rel=1e-7)


def test_newton_solves_a_quadratic_in_one_step():
    surface = surfaces.quadratic(1000.0, dim=5)
    row = run_surface(surface, optimizers.Newton(damping=0.0), steps=1)
    assert np.linalg.norm(row.trajectory[1]) < 1e-10 * np.linalg.norm(row.trajectory[0])
    assert row.steps_to_target == 1


def test_clipping_bounds_the_step_on_the_cliff_face():
    surface = surfaces.cliff()
    on_face = np.array([surface.minimizer[0] + 1.02, 0.5])  # 0.02 past the edge, on the wall
    epsilon, clip = 0.5, 1.0
    steps = {}
    for name, optimizer in (("plain", optimizers.SGD(learning_rate=epsilon)),
                            ("clipped", optimizers.SGD(learning_rate=epsilon, clipnorm=clip))):
        row = run_surface(surface, optimizer, steps=1, start=on_face)
        steps[name] = np.linalg.norm(row.trajectory[1] - row.trajectory[0])
    distance_to_minimum = np.linalg.norm(on_face - np.asarray(surface.minimizer))
    assert steps["plain"] > 10 * distance_to_minimum
    assert steps["clipped"] <= epsilon * clip * (1 + 1e-12)


def test_clipping_on_the_cliff_from_the_default_start():
    surface = surfaces.cliff()
    plain = run_surface(surface, optimizers.SGD(learning_rate=0.5), steps=40)
    clipped = run_surface(surface, optimizers.SGD(learning_rate=0.5, clipnorm=1.0), steps=40)
    start = np.linalg.norm(surface.start)
    assert np.linalg.norm(plain.trajectory, axis=1).max() > 5 * start  # thrown far away
    assert np.linalg.norm(clipped.trajectory, axis=1).max() <= start + 1e-12
    assert clipped.steps_to_target is not None
    assert clipped.steps_to_target < (plain.steps_to_target or 10**9)
