"""Cliffs and exploding gradients, and gradient clipping (Goodfellow et al. 2016,
Sec. 8.2.4, Fig. 8.3; Sec. 10.11.1).

Near a cliff the gradient is huge and one step −εg throws the parameters far away,
undoing the progress made so far. Clipping the gradient's norm keeps the direction and
bounds the step at ε·threshold. Runs SGD with and without clipping (by norm, by value,
by global norm — the optimizers' `clipnorm`, `clipvalue`, `global_clipnorm`) on the
lab's cliff, prints the largest step and the outcome, and writes cliff_clipping.png.

Run: python examples/cliffs_and_clipping.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from keras_optlab import optimizers  # noqa: E402
from keras_optlab.lab import run_surface, surfaces  # noqa: E402
from keras_optlab.lab.figures import cliff_clipping  # noqa: E402
from keras_optlab.lab.plots import output_dir  # noqa: E402

EPSILON = 0.5


def main():
    surface = surfaces.cliff()
    wall = surface.gradient((1.0, 0.0))
    print(f"{surface.title}: ‖∇J‖ on the wall face = {np.linalg.norm(wall):.1f}, "
          f"at the start = {np.linalg.norm(surface.gradient(surface.start)):.2f}")
    print(f"distance start → minimizer = {np.linalg.norm(np.subtract(surface.start, surface.minimizer)):.2f}\n")
    entrants = {
        "no clipping": optimizers.SGD(EPSILON),
        "clipnorm=1": optimizers.SGD(EPSILON, clipnorm=1.0),
        "clipvalue=1": optimizers.SGD(EPSILON, clipvalue=1.0),
        "global_clipnorm=1": optimizers.SGD(EPSILON, global_clipnorm=1.0),
    }
    for name, optimizer in entrants.items():
        row = run_surface(surface, optimizer, name=name, steps=40)
        steps = np.linalg.norm(np.diff(row.trajectory, axis=0), axis=1)
        farthest = np.linalg.norm(row.trajectory - np.asarray(surface.minimizer), axis=1).max()
        reached = "not reached" if row.steps_to_target is None else f"{row.steps_to_target} steps"
        print(f"SGD ε={EPSILON} {name:18s} largest step {steps.max():7.3f} (step {steps.argmax()}), "
              f"farthest from θ* {farthest:6.2f}, target {reached}, final J − J* {row.train_loss - surface.min_value:.2e}")
    print(f"\nClipped steps are at most ε·threshold = {EPSILON} (clipvalue: ε·√2 in 2-D); the plain step is thrown away.")
    print(f"figure: {cliff_clipping(output_dir())}")


if __name__ == "__main__":
    main()
