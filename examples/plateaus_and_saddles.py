"""Plateaus, saddle points and other flat regions (Goodfellow et al. 2016, Sec. 8.2.3).

On a plateau the gradient is exponentially small, so a fixed-step method crawls while
methods that rescale by the gradient's running size (Sec. 8.5) keep moving. At a saddle
point the gradient vanishes too; gradient descent leaves it slowly from a start close to
its attracting direction, and Newton's method (Sec. 8.6.1) jumps right onto it — unless
the Hessian is regularized (H + αI with α > |λmin|) or made positive (saddle-free |H|).
Prints steps to escape or to the minimum and writes plateaus_and_saddles.png.

Run: python examples/plateaus_and_saddles.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from keras_optlab import optimizers  # noqa: E402
from keras_optlab.lab import run_surface, surfaces  # noqa: E402
from keras_optlab.lab.figures import plateaus_and_saddles  # noqa: E402
from keras_optlab.lab.plots import output_dir  # noqa: E402


def report(surface, entrants, steps):
    print(f"\n{surface.title}: start {surface.start}, ‖∇J(start)‖ = {np.linalg.norm(surface.gradient(surface.start)):.2e}")
    for name, optimizer in entrants.items():
        row = run_surface(surface, optimizer, name=name, steps=steps)
        done = "never" if row.steps_to_target is None else f"after {row.steps_to_target} steps"
        end = row.trajectory[-1]
        print(f"  {name:32s} target ({row.target:g}) reached {done:>16}; ends at ({end[0]:.3g}, {end[1]:.3g}), "
              f"J = {row.train_loss:.3g}")


def main():
    report(
        surfaces.plateau(),
        {"SGD ε=1": optimizers.SGD(1.0), "Momentum ε=0.5": optimizers.Momentum(0.5),
         "RMSProp ε=0.02": optimizers.RMSProp(0.02), "Adam ε=0.1": optimizers.Adam(0.1)},
        150,
    )
    report(
        surfaces.saddle(),
        {"SGD ε=0.05": optimizers.SGD(0.05), "Momentum ε=0.01": optimizers.Momentum(0.01),
         "Adam ε=0.05": optimizers.Adam(0.05), "Newton (α=1e-4)": optimizers.Newton(),
         "Newton damped α=3 > |λmin|=2": optimizers.Newton(damping=3.0),
         "Newton saddle-free |H|, ε=0.3": optimizers.Newton(saddle_free=True, learning_rate=0.3)},
        60,
    )
    print("\nNewton's step −H⁻¹g solves ∇J = 0 on a quadratic, so it lands on the saddle (J = 0, the gradient gone).")
    print(f"figure: {plateaus_and_saddles(output_dir())}")


if __name__ == "__main__":
    main()
