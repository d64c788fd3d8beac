"""SGD with momentum (Goodfellow et al. 2016, Sec. 8.3.2, Alg. 8.2).

v ← αv − εg; θ ← θ + v. On a constant gradient g the step grows to the terminal speed
ε‖g‖/(1 − α): momentum multiplies the step by 1/(1 − α) (10 for α = 0.9). On an
ill-conditioned quadratic it turns gradient descent's rate (κ−1)/(κ+1) into
(√κ−1)/(√κ+1) at the best (ε, α). Prints both, measured, and writes sgd_with_momentum.png.

Run: python examples/momentum.py
"""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_optlab.lab import compare, surfaces  # noqa: E402
from keras_optlab.lab.figures import sgd_with_momentum  # noqa: E402
from keras_optlab.lab.plots import output_dir  # noqa: E402
from keras_optlab.optimizers import SGD, Momentum  # noqa: E402

EPSILON = 0.1


def terminal_speed(alpha, g=np.array([3.0, 4.0]), steps=200):
    theta = keras.Variable(np.zeros(2), dtype="float64")
    optimizer = Momentum(learning_rate=EPSILON, momentum=alpha)
    sizes, previous = [], np.zeros(2)
    for _ in range(steps):
        optimizer.apply([keras.ops.convert_to_tensor(g)], [theta])
        current = keras.ops.convert_to_numpy(theta)
        sizes.append(np.linalg.norm(current - previous))
        previous = current
    return sizes


def main():
    print(f"Constant gradient ‖g‖ = 5, ε = {EPSILON}: step size after k steps vs ε‖g‖/(1 − α)")
    for alpha in (0.0, 0.5, 0.9):
        sizes = terminal_speed(alpha)
        print(f"  α = {alpha:3.1f}: k=1 {sizes[0]:.4f}  k=10 {sizes[9]:.4f}  k=200 {sizes[-1]:.6f}"
              f"   theory {EPSILON * 5 / (1 - alpha):.6f}")
    kappa = 100.0
    surface = surfaces.quadratic(kappa)
    epsilon = 4 / (math.sqrt(kappa) + 1) ** 2
    alpha = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
    print(f"\nQuadratic with κ = {kappa:g}; best SGD ε = 2/(λmin+λmax), best heavy ball ε = {epsilon:.4f}, α = {alpha:.4f}")
    rows = compare(surface, {"SGD": SGD(2 / (1 + kappa)), "Momentum": Momentum(epsilon, momentum=alpha)}, steps=200)
    for row, theory in zip(rows, ((kappa - 1) / (kappa + 1), (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1))):
        norms = np.linalg.norm(row.trajectory, axis=1)
        print(f"  {row.name:9s} contraction per step {(norms[200] / norms[100]) ** 0.01:.4f}  theory {theory:.4f}")
    print(f"figure: {sgd_with_momentum(output_dir())}")


if __name__ == "__main__":
    main()
