"""AdaGrad (Goodfellow et al. 2016, Sec. 8.5.1, Alg. 8.4).

r ← r + g²; θ ← θ − ε g/(δ + √r): each parameter gets its own learning rate, inversely
proportional to the root of its summed squared gradients. On a valley 20 times steeper
along one axis, both coordinates progress at the same pace; the effective rates
ε/(δ + √r) only shrink, which is AdaGrad's weakness on long runs. Prints the effective
rates per coordinate and writes adagrad.png.

Run: python examples/adagrad.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_optlab.lab import compare, surfaces  # noqa: E402
from keras_optlab.lab.figures import adagrad  # noqa: E402
from keras_optlab.lab.plots import output_dir  # noqa: E402
from keras_optlab.optimizers import SGD, AdaGrad  # noqa: E402


def effective_rates(surface, epsilon, checkpoints):
    """ε/(δ + √r) per coordinate after each checkpoint step (eager, slots read back)."""
    theta = keras.Variable(np.asarray(surface.start), dtype="float64")
    optimizer = AdaGrad(learning_rate=epsilon)
    out = {}
    for k in range(1, max(checkpoints) + 1):
        optimizer.apply([keras.ops.convert_to_tensor(surface.gradient(keras.ops.convert_to_numpy(theta)))], [theta])
        if k in checkpoints:
            r = keras.ops.convert_to_numpy(optimizer.variables[-1])
            out[k] = epsilon / (optimizer.epsilon + np.sqrt(r))
    return out


def main():
    surface = surfaces.quadratic(condition_number=20.0, angle=0.0)  # axis-aligned: λ = 1 and 20
    print(f"{surface.title}, axis-aligned; gradient at the start {surface.gradient(surface.start)}")
    compare(surface, {"SGD ε=0.09": SGD(0.09), "AdaGrad ε=1": AdaGrad(1.0)}, steps=60)
    print("\nAdaGrad's effective learning rate ε/(δ + √r) per coordinate (θ₁: λ=1, θ₂: λ=20):")
    for k, rate in effective_rates(surface, 1.0, (1, 10, 60)).items():
        print(f"  after {k:2d} steps: θ₁ {rate[0]:.4f}   θ₂ {rate[1]:.4f}")
    print(f"figure: {adagrad(output_dir())}")


if __name__ == "__main__":
    main()
