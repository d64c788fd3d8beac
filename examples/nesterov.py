"""Nesterov momentum (Goodfellow et al. 2016, Sec. 8.3.3, Alg. 8.3).

The gradient is taken after the velocity step, at θ + αv: a correction that brakes
before an overshoot. keras_optlab's `Nesterov` stores that look-ahead point as the
weights (see its docstring). Compares it with heavy-ball momentum at the same (ε, α) on
an ill-conditioned quadratic and on the Rosenbrock valley — overshoot, steps to the
target — and writes nesterov.png.

Run: python examples/nesterov.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from keras_optlab.lab import compare, surfaces  # noqa: E402
from keras_optlab.lab.figures import ILL_CONDITIONED, nesterov  # noqa: E402
from keras_optlab.lab.plots import output_dir  # noqa: E402
from keras_optlab.optimizers import Momentum, Nesterov  # noqa: E402


def main():
    for surface, epsilon, steps in ((surfaces.quadratic(**ILL_CONDITIONED), 0.005, 150),
                                    (surfaces.rosenbrock(), 0.001, 500)):
        print(f"\n{surface.title}, ε = {epsilon}, α = 0.9:")
        rows = compare(surface, {"Momentum": Momentum(epsilon, 0.9), "Nesterov": Nesterov(epsilon, 0.9)}, steps)
        for row in rows:
            # Overshoot: how many times the loss went up (the heavy ball rolling back).
            ups = int(np.sum(np.diff(row.loss_history) > 0))
            print(f"  {row.name:9s} loss increased on {ups} of {steps} steps")
    print(f"\nfigure: {nesterov(output_dir())}")


if __name__ == "__main__":
    main()
