"""Nonlinear conjugate gradients (Alg. 8.9) and L-BFGS (Sec. 8.6.3) on Rosenbrock and on
digits, beside scipy's implementations of the same methods.

    python examples/quasi_newton.py

1. Rosenbrock in 10 dimensions (float64, the standard start): iterations and evaluations
   of (J, ∇J) to ‖g‖∞ ≤ 1e-8, ours through ``opt.minimize`` and scipy's
   ``minimize(method="L-BFGS-B" | "CG")``, and the distance to the minimizer (1, …, 1).
2. The Keras workflow: a softmax regression on digits trained by ``fit`` through
   ``keras_optlab.SecondOrder`` with the whole training set as one batch (what the
   algorithms assume), beside Adam for the same number of epochs.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402
from keras import ops  # noqa: E402

import keras_optlab as ko  # noqa: E402
from keras_optlab.lab.data import load_digits  # noqa: E402

N, GTOL = 10, 1e-8


def rosenbrock(var):
    return lambda: ops.sum(100.0 * (var[1:] - var[:-1] ** 2) ** 2 + (1.0 - var[:-1]) ** 2)


def ours(optimizer, x0):
    var = keras.Variable(x0.copy(), dtype="float64")
    steps = optimizer.minimize(rosenbrock(var), [var], steps=5000, gradient_tolerance=GTOL).iterations
    error = np.abs(np.asarray(ops.convert_to_numpy(var)) - 1.0).max()
    return steps, int(optimizer.function_evaluations), error


def main():
    x0 = np.full(N, -1.2)
    x0[1::2] = 1.0
    print(f"Rosenbrock, n = {N}, float64, to max|g| <= {GTOL:g} (backend {keras.backend.backend()})")
    print(f"{'method':<28} {'iterations':>10} {'evaluations':>12} {'max|x - 1|':>12}")
    rows = [
        ("keras_optlab LBFGS", ours(ko.LBFGS(), x0)),
        ("keras_optlab NonlinearCG PR+", ours(ko.NonlinearCG(), x0)),
        ("keras_optlab NonlinearCG FR", ours(ko.NonlinearCG(beta="fletcher_reeves"), x0)),
    ]
    for method, label in (("L-BFGS-B", "scipy L-BFGS-B"), ("CG", "scipy CG (PR)")):
        options = {"gtol": GTOL, "maxiter": 5000} | ({"ftol": 0.0, "maxcor": 10} if method == "L-BFGS-B" else {})
        result = scipy.optimize.minimize(scipy.optimize.rosen, x0, jac=scipy.optimize.rosen_der, method=method,
                                         options=options)
        rows.append((label, (result.nit, result.nfev, np.abs(result.x - 1.0).max())))
    for label, (steps, evaluations, error) in rows:
        print(f"{label:<28} {steps:>10} {evaluations:>12} {error:>12.1e}")

    x_train, y_train, x_val, y_val = load_digits()
    epochs = 30
    print(f"\nSoftmax regression on digits ({len(x_train)} training images, full batch), {epochs} epochs:")
    print(f"{'optimizer':<28} {'train loss':>10} {'val. error':>10} {'evaluations':>12}")
    for name, optimizer in (("LBFGS (SecondOrder)", ko.LBFGS()), ("NonlinearCG (SecondOrder)", ko.NonlinearCG()),
                            ("Adam(0.05), same batch", ko.Adam(0.05))):
        keras.utils.set_random_seed(0)
        inner = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
        model = ko.SecondOrder(inner)
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        history = model.fit(x_train, y_train, batch_size=len(x_train), epochs=epochs, verbose=0, shuffle=False)
        accuracy = model.evaluate(x_val, y_val, verbose=0)[1]
        evaluations = int(getattr(optimizer, "function_evaluations", epochs))
        print(f"{name:<28} {history.history['loss'][-1]:>10.4f} {1.0 - accuracy:>10.3f} {evaluations:>12}")


if __name__ == "__main__":
    main()
