"""Each optimizer against a float64 NumPy transcription of its algorithm box (book.py).

Two problems, ≥ 100 steps each:
* ``fixed``: a fixed sequence of gradients whose scales span five decades (10⁻³…10²),
  so that the epsilons (chosen large, 0.1) sit where their placement matters;
* ``quadratic``: J(θ) = ½(θ−θ*)ᵀA(θ−θ*) with A of condition number 1000, gradients
  taken where the optimizer's weights are (the look-ahead point for Nesterov).

Tolerance: float64 has a unit roundoff of 1.1e-16; 150 steps of a stable update, each
a handful of operations, accumulate well under 1e-12 relative error. The package
computes Adam and RMSProp in algebraically rearranged forms (same math, other rounding),
so we allow rtol = 1e-9 — three orders above the accumulated roundoff and still six
orders below the smallest effect of moving an epsilon (asserted in
``test_epsilon_placement_matters``).
"""

import keras
import numpy as np
import pytest

import keras_optlab as ko
from tests.optimizers import book
from tests.optimizers.book import PROBLEMS, STEPS, fixed_problem, quadratic_problem
from tests.optimizers.book_cases import CASES, f32, run_keras

pytestmark = pytest.mark.backend_agnostic

RTOL = 1e-9


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_follows_the_book(case, problem):
    cls, kwargs, make_ref = CASES[case]
    theta0, grad = PROBLEMS[problem]()
    got = run_keras(cls(**kwargs), theta0, grad)
    want = make_ref(f32(kwargs["learning_rate"]))(theta0, grad, STEPS)
    for k, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=RTOL * np.abs(w).max(), err_msg=f"step {k}")
    # The run must have moved: a frozen optimizer would match a frozen reference.
    assert np.abs(want[-1] - theta0).max() > 1e-3


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_reference_is_not_chaotic(case, problem):
    """Comparing two implementations step by step needs a problem on which roundoff
    does not grow: perturb the start by 1e-15 and the reference stays within 1e-13."""
    _, kwargs, make_ref = CASES[case]
    theta0, grad = PROBLEMS[problem]()
    ref = make_ref(f32(kwargs["learning_rate"]))
    a, b = ref(theta0, grad, STEPS)[-1], ref(theta0 * (1 + 1e-15), grad, STEPS)[-1]
    assert np.abs(a - b).max() <= 1e-13 * np.abs(a).max()


def test_quadratic_is_actually_minimized():
    """Sanity of the problem itself: the book's methods make progress on it."""
    theta0, grad = quadratic_problem()
    for case in ("Momentum", "Adam", "NesterovRMSProp"):
        cls, kwargs, _ = CASES[case]
        final = run_keras(cls(**kwargs), theta0, grad)[-1]
        assert np.linalg.norm(grad(final, 0)) < 0.5 * np.linalg.norm(grad(theta0, 0)), case


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (ko.SGD(learning_rate=1e-3), keras.optimizers.SGD(learning_rate=1e-3)),
        (ko.Momentum(5e-4, momentum=0.75), keras.optimizers.SGD(5e-4, momentum=0.75)),
        (ko.Nesterov(5e-4, momentum=0.75), keras.optimizers.SGD(5e-4, momentum=0.75, nesterov=True)),
        (ko.RMSProp(1e-3, rho=0.875, epsilon=0.125), keras.optimizers.RMSprop(1e-3, rho=0.875, epsilon=0.125)),
    ],
    ids=["SGD", "Momentum", "Nesterov", "RMSProp"],
)
def test_same_as_keras_where_keras_is_the_book(ours, theirs):
    """Keras' SGD momentum and nesterov are the book's rules (look-ahead form), and
    Keras 3's RMSprop puts δ inside the root as Algorithm 8.5 does.

    α = 0.75, ρ = 0.875, δ = 0.125 is exact in float32: Keras casts its Python-float hyperparameters
    through float32 even for float64 variables, which would make α = 0.9 differ at 1e-8."""
    theta0, grad = quadratic_problem()
    a, b = run_keras(ours, theta0, grad), run_keras(theirs, theta0, grad)
    np.testing.assert_allclose(a[-1], b[-1], rtol=RTOL)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (ko.Adam(learning_rate=0.01, epsilon=0.1), keras.optimizers.Adam(learning_rate=0.01, epsilon=0.1)),
        (ko.AdaGrad(learning_rate=0.1, epsilon=0.1), keras.optimizers.Adagrad(learning_rate=0.1, epsilon=0.1)),
    ],
    ids=["Adam", "AdaGrad"],
)
def test_epsilon_placement_matters(ours, theirs):
    """Where Keras' formula is not the book's, the difference is far above RTOL."""
    theta0, grad = fixed_problem()
    a, b = run_keras(ours, theta0, grad), run_keras(theirs, theta0, grad)
    rel = np.abs(a[-1] - b[-1]).max() / np.abs(a[-1]).max()
    assert rel > 1e3 * RTOL, rel


def test_linear_decay_drives_sgd():
    """SGD + LinearDecay follows Alg. 8.1 with ε_k of Eq. 8.14 (k = 0 first)."""
    e0, et, tau = 0.0015, 0.00001, 60  # ε₀ < 2/λmax = 0.002: stable on the κ = 1000 quadratic
    theta0, grad = quadratic_problem()

    def eps(k):  # the schedule is evaluated in float32 (Keras' floatx)
        a = np.float32(min(k, tau) / tau)
        return float(np.float32((np.float32(1) - a) * np.float32(e0) + a * np.float32(et)))

    got = run_keras(ko.SGD(ko.LinearDecay(e0, et, tau)), theta0, grad, steps=100)
    want = book.sgd(theta0, grad, 100, lr=eps)
    # rtol 1e-6: the float32 schedule may round ε_k one ulp (6e-8) differently.
    np.testing.assert_allclose(got[-1], want[-1], rtol=1e-6)
    assert np.linalg.norm(grad(want[-1], 0)) < np.linalg.norm(grad(theta0, 0))  # it converges
