"""Newton's method (Goodfellow et al. 2016, Sec. 8.6.1, Alg. 8.8).

θ ← θ − (H + αI)⁻¹g. On a quadratic, one step lands on the minimizer whatever its
condition number; on Rosenbrock a handful; at a saddle the unregularized step moves
*to* the saddle, and a damping α larger than the most negative eigenvalue, or the
saddle-free |H|, turns it into an escape. Prints each and writes newtons_method.png.

Run: python examples/newton.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_optlab.lab import compare, surfaces  # noqa: E402
from keras_optlab.lab.figures import newtons_method  # noqa: E402
from keras_optlab.lab.plots import output_dir  # noqa: E402
from keras_optlab.optimizers import SGD, Newton  # noqa: E402


def main():
    for kappa in (10.0, 1e4):
        print(f"\nquadratic, κ = {kappa:g}, 5 dimensions:")
        compare(surfaces.quadratic(kappa, dim=5), {"Newton": Newton(damping=0.0), "SGD ε=2/(1+κ)": SGD(2 / (1 + kappa))},
                steps=20)
    print("\nRosenbrock:")
    compare(surfaces.rosenbrock(), {"Newton": Newton(), "SGD ε=0.0018": SGD(0.0018)}, steps=500)
    print("\nsaddle x² − y² (Hessian eigenvalues 2 and −2), start (1.5, 0.5):")
    compare(
        surfaces.saddle(start=(1.5, 0.5)),
        {"Newton α=1e-4": Newton(), "Newton α=3": Newton(damping=3.0),
         "Newton saddle-free": Newton(saddle_free=True, learning_rate=0.3)},
        steps=8,
    )
    print(f"\nfigure: {newtons_method(output_dir())}")


if __name__ == "__main__":
    main()
