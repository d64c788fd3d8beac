"""The book-suite table: each first-order optimizer with hyperparameters, and the
float64 transcription (book.py) it must follow; ``run_keras`` drives one optimizer on
one float64 variable. Shared by test_book.py and test_float64_exact.py."""

import functools

import keras
import numpy as np

import keras_optlab as ko
from tests.optimizers import book
from tests.optimizers.book import STEPS


def f32(x):
    """The learning rate as Keras stores it (a float32 variable), in float64."""
    return float(np.float32(x))


# (optimizer, kwargs, reference) — hyperparameters stable on the κ = 1000 quadratic
# and not chaotic there (test_reference_is_not_chaotic): RMSProp with ρ = 0.9 and
# ε = 0.01 oscillates so that a 1e-15 perturbation grows to 1e-3 in 150 steps, and no
# implementation could then be compared with another step by step.
CASES = {
    "SGD": (ko.SGD, dict(learning_rate=1e-3), lambda lr: functools.partial(book.sgd, lr=lambda k: lr)),
    "Momentum": (
        ko.Momentum,
        dict(learning_rate=5e-4, momentum=0.9),
        lambda lr: functools.partial(book.momentum, lr=lr, alpha=0.9),
    ),
    "Nesterov": (
        ko.Nesterov,
        dict(learning_rate=5e-4, momentum=0.9),
        lambda lr: functools.partial(book.nesterov, lr=lr, alpha=0.9),
    ),
    "AdaGrad": (
        ko.AdaGrad,
        dict(learning_rate=0.1, epsilon=0.1),
        lambda lr: functools.partial(book.adagrad, lr=lr, delta=0.1),
    ),
    "AdaGrad_r0": (
        ko.AdaGrad,
        dict(learning_rate=0.1, epsilon=0.1, initial_accumulator_value=0.5),
        lambda lr: functools.partial(book.adagrad, lr=lr, delta=0.1, r0=0.5),
    ),
    "RMSProp": (
        ko.RMSProp,
        dict(learning_rate=0.001, rho=0.99, epsilon=0.1),
        lambda lr: functools.partial(book.rmsprop, lr=lr, rho=0.99, delta=0.1),
    ),
    "NesterovRMSProp": (
        ko.NesterovRMSProp,
        dict(learning_rate=0.001, rho=0.99, momentum=0.8, epsilon=0.1),
        lambda lr: functools.partial(book.nesterov_rmsprop, lr=lr, rho=0.99, alpha=0.8, delta=0.1),
    ),
    "NesterovRMSProp_literal": (  # δ → 0 recovers the box's √r exactly
        ko.NesterovRMSProp,
        dict(learning_rate=0.001, rho=0.99, momentum=0.8, epsilon=1e-300),
        lambda lr: functools.partial(book.nesterov_rmsprop, lr=lr, rho=0.99, alpha=0.8, delta=0.0),
    ),
    "Adam": (
        ko.Adam,
        dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=0.1),
        lambda lr: functools.partial(book.adam, lr=lr, rho1=0.9, rho2=0.999, delta=0.1),
    ),
}


def run_keras(optimizer, theta0, grad, steps=STEPS):
    """Drive ``optimizer`` on one float64 variable; the gradient is taken at its weights."""
    var = keras.Variable(theta0, dtype="float64")
    out = []
    for k in range(steps):
        g = grad(np.asarray(var.numpy()), k)
        optimizer.apply([keras.ops.convert_to_tensor(g, "float64")], [var])
        out.append(np.array(var.numpy()))
    return out
