"""RMSProp (Goodfellow et al. 2016, Sec. 8.5.2, Alg. 8.5) against AdaGrad.

RMSProp replaces AdaGrad's sum of squared gradients by an exponentially weighted moving
average, r ← ρr + (1−ρ)g², so old gradients are forgotten. On the Rosenbrock valley —
steep walls first, a flat curved floor later — AdaGrad's steps stay as small as the
steep start made them, while RMSProp's grow once the walls are behind it. Prints the
typical step length over time and writes rmsprop.png.

Run: python examples/rmsprop.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from keras_optlab.lab import compare, surfaces  # noqa: E402
from keras_optlab.lab.figures import rmsprop  # noqa: E402
from keras_optlab.lab.plots import output_dir  # noqa: E402
from keras_optlab.optimizers import AdaGrad, NesterovRMSProp, RMSProp  # noqa: E402


def main():
    surface = surfaces.rosenbrock()
    print(f"{surface.title}, start {surface.start}, 500 steps:")
    rows = compare(
        surface,
        {"AdaGrad ε=0.3": AdaGrad(0.3), "RMSProp ε=0.01": RMSProp(0.01),
         "NesterovRMSProp ε=0.001": NesterovRMSProp(0.001)},
        steps=500,
    )
    print("\nmedian step length ‖θ_k+1 − θ_k‖ over steps 1-50 / 51-200 / 201-500:")
    for row in rows:
        steps = np.linalg.norm(np.diff(row.trajectory, axis=0), axis=1)
        windows = (steps[:50], steps[50:200], steps[200:])
        print(f"  {row.name:24s} " + " / ".join(f"{np.median(w):.2e}" for w in windows))
    print(f"figure: {rmsprop(output_dir())}")


if __name__ == "__main__":
    main()
