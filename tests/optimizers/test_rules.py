"""The book's rules alone (keras_optlab.optimizers.rules), against book.py.

Each pure rule is iterated by hand — θ ← θ + Δθ, slots carried from one call to the
next — on the two float64 problems of the book suite, with Python-float
hyperparameters, and compared step by step with the NumPy transcription of its
algorithm box. No optimizer, variable or Keras state is involved: what is checked is
the math of the rule itself (test_book.py checks the optimizers that call them).

Tolerance as in test_book.py: float64 roundoff (1.1e-16 per operation) accumulated
over 150 stable steps stays far below 1e-12; Adam's and RMSProp's rearranged forms
round differently, hence rtol = 1e-9.
"""

import functools

import numpy as np
import pytest
from keras import ops

from keras_optlab.optimizers import rules
from tests.optimizers import book
from tests.optimizers.book import PROBLEMS, STEPS

pytestmark = pytest.mark.backend_agnostic

RTOL = 1e-9

# name -> (rule, number of slots, slot initial value, hyperparameters(k) for step k
#          (k = 0 first), reference)
CASES = {
    "sgd": (rules.sgd, 0, 0.0, lambda k: dict(learning_rate=1e-3), functools.partial(book.sgd, lr=lambda k: 1e-3)),
    "momentum": (
        rules.momentum, 1, 0.0, lambda k: dict(learning_rate=5e-4, momentum=0.9),
        functools.partial(book.momentum, lr=5e-4, alpha=0.9),
    ),
    "nesterov": (
        rules.nesterov, 1, 0.0, lambda k: dict(learning_rate=5e-4, momentum=0.9),
        functools.partial(book.nesterov, lr=5e-4, alpha=0.9),
    ),
    "adagrad": (
        rules.adagrad, 1, 0.5, lambda k: dict(learning_rate=0.1, epsilon=0.1),
        functools.partial(book.adagrad, lr=0.1, delta=0.1, r0=0.5),
    ),
    "rmsprop": (
        rules.rmsprop, 1, 0.0, lambda k: dict(learning_rate=1e-3, rho=0.99, epsilon=0.1),
        functools.partial(book.rmsprop, lr=1e-3, rho=0.99, delta=0.1),
    ),
    "nesterov_rmsprop": (
        rules.nesterov_rmsprop, 2, 0.0, lambda k: dict(learning_rate=1e-3, rho=0.99, momentum=0.8, epsilon=0.1),
        functools.partial(book.nesterov_rmsprop, lr=1e-3, rho=0.99, alpha=0.8, delta=0.1),
    ),
    "adam": (
        rules.adam, 2, 0.0,
        lambda k: dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=0.1, step=k + 1),
        functools.partial(book.adam, lr=0.01, rho1=0.9, rho2=0.999, delta=0.1),
    ),
}


def iterate(rule, n_slots, slot_value, hyperparameters, theta0, grad):
    theta = ops.convert_to_tensor(theta0, "float64")
    slots = tuple(ops.full(theta0.shape, slot_value, "float64") for _ in range(n_slots))
    out = []
    for k in range(STEPS):
        g = ops.convert_to_tensor(grad(ops.convert_to_numpy(theta), k), "float64")
        delta, slots = rule(g, *slots, **hyperparameters(k))
        assert len(slots) == n_slots
        theta = theta + delta
        out.append(ops.convert_to_numpy(theta))
    return out


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_follows_its_algorithm_box(name, problem):
    rule, n_slots, slot_value, hyperparameters, reference = CASES[name]
    theta0, grad = PROBLEMS[problem]()
    got = iterate(rule, n_slots, slot_value, hyperparameters, theta0, grad)
    want = reference(theta0, grad, STEPS)
    for k, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=RTOL * np.abs(w).max(), err_msg=f"step {k}")
    assert np.abs(want[-1] - theta0).max() > 1e-3  # it moved


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_keeps_the_dtype(name, dtype):
    rule, n_slots, slot_value, hyperparameters, _ = CASES[name]
    g = ops.ones((3, 2), dtype)
    slots = tuple(ops.full((3, 2), slot_value, dtype) for _ in range(n_slots))
    delta, new = rule(g, *slots, **hyperparameters(0))
    assert all(ops.dtype(t) == dtype for t in (delta, *new))
    assert all(tuple(t.shape) == (3, 2) for t in (delta, *new))


def test_adam_step_scalars_are_the_bias_corrections():
    """η = ε√(1−ρ₂ᵗ)/(1−ρ₁ᵗ) and δ' = δ√(1−ρ₂ᵗ), so −η s/(√r + δ') = −ε ŝ/(√r̂ + δ)."""
    for t in (1, 2, 10, 1000):
        eta, delta = (float(x) for x in rules.adam_step_scalars(0.01, 0.9, 0.999, 0.1, t, "float64"))
        root = np.sqrt(1 - 0.999**t)
        np.testing.assert_allclose([eta, delta], [0.01 * root / (1 - 0.9**t), 0.1 * root], rtol=1e-15)
