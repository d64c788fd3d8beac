"""float64 on JAX needs JAX's 64-bit mode (issue 22, item 4).

Without it JAX silently holds a float64 variable as float32; keras_optlab refuses a
float64 request there at the call (optimizer build, initializer draw, curvature), saying
how to turn the mode on. Run in a fresh JAX process with the mode off.
"""

import os
import subprocess
import sys

import pytest

CODE = """
import warnings
warnings.simplefilter("ignore")
import keras, numpy as np, keras_optlab as ko
assert keras.backend.backend() == "jax"
def refused(call):
    try:
        call()
    except ValueError as error:
        assert "JAX_ENABLE_X64" in str(error), error
        return True
    return False
v = keras.Variable(np.ones(3), dtype="float64")
w = keras.Variable(np.ones(3), dtype="float32")
model = keras.Sequential([keras.Input((2,), dtype="float64"), keras.layers.Dense(1, dtype="float64")])
model.compile(loss="mse")
x = np.ones((4, 2)); y = np.ones((4, 1))
print(refused(lambda: ko.optimizers.Adam().build([v])),
      refused(lambda: ko.optimizers.LBFGS().minimize(lambda: keras.ops.sum(v ** 2), [v], steps=1)),
      refused(lambda: ko.SparseK(k=1, seed=0)((3, 2), dtype="float64")),
      refused(lambda: ko.curvature.hvp(model, x, y, [np.ones(tuple(t.shape)) for t in model.trainable_variables])),
      refused(lambda: ko.optimizers.Adam().build([w])))
"""


@pytest.mark.slow
def test_float64_on_jax_without_x64_is_refused_at_the_call():
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_ENABLE_X64": "0", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # Optimizer build, minimize, initializer, curvature refused; float32 builds.
    assert done.stdout.split() == ["True", "True", "True", "True", "False"], done.stdout
