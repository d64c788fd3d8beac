"""Adam (Goodfellow et al. 2016, Sec. 8.5.3, Alg. 8.7).

Momentum folded into a first-moment estimate s, RMSProp's second moment r, and bias
corrections ŝ = s/(1−ρ₁ᵗ), r̂ = r/(1−ρ₂ᵗ) for both starting at 0. Consequences shown:
(1) the first step is ε·g/|g| = ε per coordinate whatever the gradient's scale; without
the correction it would be ε(1−ρ₁)/√(1−ρ₂) ≈ 3.2ε; (2) the step is invariant to
rescaling the loss. Then Adam against RMSProp and momentum on Rosenbrock; writes adam.png.

Run: python examples/adam.py
"""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_optlab.lab import compare, surfaces  # noqa: E402
from keras_optlab.lab.figures import adam  # noqa: E402
from keras_optlab.lab.plots import output_dir  # noqa: E402
from keras_optlab.optimizers import Adam, Momentum, RMSProp  # noqa: E402

EPSILON = 0.01


def first_step(scale):
    theta = keras.Variable(np.zeros(2), dtype="float64")
    Adam(learning_rate=EPSILON).apply([keras.ops.convert_to_tensor(scale * np.array([3.0, -0.02]))], [theta])
    return keras.ops.convert_to_numpy(theta)


def main():
    print(f"First Adam step, ε = {EPSILON}, gradient scale × 1e-3 / × 1 / × 1e3:")
    for scale in (1e-3, 1.0, 1e3):
        print(f"  × {scale:g}: Δθ = {first_step(scale)}")
    print(f"  without bias correction it would be ε(1−ρ₁)/√(1−ρ₂) = {EPSILON * 0.1 / math.sqrt(0.001):.4f} per coordinate")
    surface = surfaces.rosenbrock()
    print(f"\n{surface.title}, start {surface.start}, 500 steps:")
    compare(surface, {"Momentum ε=0.001": Momentum(0.001), "RMSProp ε=0.01": RMSProp(0.01), "Adam ε=0.1": Adam(0.1)},
            steps=500)
    print(f"figure: {adam(output_dir())}")


if __name__ == "__main__":
    main()
