"""Float64 NumPy transcriptions of the book's Algorithms 8.1–8.7, line by line.

Each function runs ``steps`` iterations of the algorithm box from ``theta0`` with the
gradient oracle ``grad(point, k)`` evaluated exactly where the box evaluates it, and
returns the sequence of model weights a Keras optimizer would hold after each step:
θ for the plain algorithms, the look-ahead point θ + αv for the Nesterov ones
(where the gradient is taken). Nothing here is shared with the package's code.

The two test problems of the book suites (``PROBLEMS``) are defined here too:
``fixed`` (a fixed gradient sequence over five decades of scale) and ``quadratic``
(κ = 1000, gradients where the weights are).
"""

import numpy as np

STEPS = 150


def sgd(theta0, grad, steps, lr):
    theta, out = theta0.copy(), []
    for k in range(steps):
        g = grad(theta, k)
        theta = theta - lr(k) * g
        out.append(theta.copy())
    return out


def momentum(theta0, grad, steps, lr, alpha):
    theta, v, out = theta0.copy(), np.zeros_like(theta0), []
    for k in range(steps):
        g = grad(theta, k)
        v = alpha * v - lr * g
        theta = theta + v
        out.append(theta.copy())
    return out


def nesterov(theta0, grad, steps, lr, alpha):
    theta, v, out = theta0.copy(), np.zeros_like(theta0), []
    for k in range(steps):
        interim = theta + alpha * v
        g = grad(interim, k)
        v = alpha * v - lr * g
        theta = theta + v
        out.append(theta + alpha * v)  # the next interim point
    return out


def adagrad(theta0, grad, steps, lr, delta, r0=0.0):
    theta, r, out = theta0.copy(), np.full_like(theta0, r0), []
    for k in range(steps):
        g = grad(theta, k)
        r = r + g * g
        theta = theta + (-lr / (delta + np.sqrt(r)) * g)
        out.append(theta.copy())
    return out


def rmsprop(theta0, grad, steps, lr, rho, delta):
    theta, r, out = theta0.copy(), np.zeros_like(theta0), []
    for k in range(steps):
        g = grad(theta, k)
        r = rho * r + (1 - rho) * g * g
        theta = theta + (-lr / np.sqrt(delta + r) * g)
        out.append(theta.copy())
    return out


def nesterov_rmsprop(theta0, grad, steps, lr, rho, alpha, delta):
    """Algorithm 8.6; ``delta=0`` is the literal box (√r)."""
    theta, r, v, out = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0), []
    for k in range(steps):
        interim = theta + alpha * v
        g = grad(interim, k)
        r = rho * r + (1 - rho) * g * g
        v = alpha * v - lr / np.sqrt(delta + r) * g
        theta = theta + v
        out.append(theta + alpha * v)
    return out


def adam(theta0, grad, steps, lr, rho1, rho2, delta):
    theta, s, r, t, out = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0), 0, []
    for k in range(steps):
        g = grad(theta, k)
        t = t + 1
        s = rho1 * s + (1 - rho1) * g
        r = rho2 * r + (1 - rho2) * g * g
        s_hat = s / (1 - rho1**t)
        r_hat = r / (1 - rho2**t)
        theta = theta + (-lr * s_hat / (np.sqrt(r_hat) + delta))
        out.append(theta.copy())
    return out


# --------------------------------------------------------------------------- problems


def fixed_problem():
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(STEPS, 4, 3)) * 10.0 ** rng.uniform(-3, 2, size=(STEPS, 1, 1))
    return rng.normal(size=(4, 3)), lambda theta, k: grads[k]


def quadratic_problem(kappa=1000.0, dim=10):
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    a = q @ np.diag(np.logspace(0, np.log10(kappa), dim)) @ q.T
    theta_star = rng.normal(size=dim)
    return rng.normal(size=dim) + theta_star, lambda theta, k: a @ (theta - theta_star)


PROBLEMS = {"fixed": fixed_problem, "quadratic": quadratic_problem}
