"""The package's import surface: what loads without TensorFlow or Keras Tuner."""

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_first_order_parts_load_without_tensorflow_and_keras_tuner():
    """A JAX-only machine (the GPU benchmark's) imports keras_optlab and trains with it."""
    pytest.importorskip("jax")
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras_tuner'] = None\n"
        "import keras, numpy as np, keras_optlab as ko\n"
        "assert keras.backend.backend() == 'jax'\n"
        "assert not hasattr(ko, 'Newton') and not hasattr(ko, 'search_init')\n"
        "m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_initializer=ko.SparseK(k=2, seed=0))])\n"
        "m.compile(optimizer=ko.Adam(0.01, global_clipnorm=1.0, skip_nonfinite=True), loss='mse')\n"
        "h = m.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=3, verbose=0).history['loss']\n"
        "assert h[-1] < h[0], h\n"
        "print('ok')\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def test_everything_is_exported_with_tensorflow():
    import keras_optlab as ko

    for name in ("Newton", "SecondOrder", "CurvatureMonitor", "GradientStats", "search_init", "InitSearch",
                 "curvature", "callbacks", "tuning", "LinearDecay", "SparseK", "calibrate"):
        assert hasattr(ko, name), name
