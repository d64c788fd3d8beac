"""The package's import surface: what loads without TensorFlow or Keras Tuner."""

import os
import subprocess
import sys

import pytest


def _python(code, **env):
    """Run ``code`` in a fresh Python with ``env`` added to the environment; its stdout
    (the run must succeed)."""
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_first_order_parts_load_without_tensorflow_and_keras_tuner():
    """A JAX-only machine (the GPU benchmark's) imports keras_optlab and trains with it."""
    pytest.importorskip("jax")
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras_tuner'] = None\n"
        "import keras, numpy as np, keras_optlab as ko\n"
        "assert keras.backend.backend() == 'jax'\n"
        "assert not hasattr(ko, 'search_init')\n"
        # The closure optimizers differentiate through the backend's adapter (no TF).
        "v = keras.Variable(np.array([3.0, -2.0]))\n"
        "ko.LBFGS().minimize(lambda: keras.ops.sum((v - 1.0) ** 2), [v], steps=3)\n"
        "assert np.allclose(keras.ops.convert_to_numpy(v), 1.0, atol=1e-5), v\n"
        "assert hasattr(ko, 'Newton') and hasattr(ko, 'NonlinearCG') and hasattr(ko, 'SecondOrder')\n"
        "m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_initializer=ko.SparseK(k=2, seed=0))])\n"
        "m.compile(optimizer=ko.Adam(0.01, global_clipnorm=1.0, skip_nonfinite=True), loss='mse')\n"
        "h = m.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=3, verbose=0).history['loss']\n"
        "assert h[-1] < h[0], h\n"
        "print('ok')\n"
    )
    assert _python(code, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu").strip().endswith("ok")


def test_everything_is_exported_with_tensorflow():
    import keras_optlab as ko

    for name in ("Newton", "LBFGS", "NonlinearCG", "SecondOrder", "CurvatureMonitor", "GradientStats", "search_init", "InitSearch",
                 "curvature", "callbacks", "tuning", "LinearDecay", "SparseK", "calibrate"):
        assert hasattr(ko, name), name


@pytest.mark.slow
def test_speed_paths_load_however_the_optimizer_is_imported():
    """`from keras_optlab.optimizers import Adam` gets the TensorFlow speed paths too (the
    accel plugin is found through its entry point at the first build; the root package
    no longer imports it, so that `import keras_optlab` imports no TensorFlow)."""
    code = (
        "import sys\n"
        "import keras_optlab\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "import keras, numpy as np\n"
        "from keras_optlab.optimizers import Adam\n"
        "v = keras.Variable(np.ones(3, 'float32'))\n"
        "o = Adam()\n"
        "o.build([v])\n"
        "print(o.update_path(v), 'keras_optlab.accel' in sys.modules)\n"
    )
    out = _python(code, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    path, loaded = out.split()[-2:]
    assert loaded == "True" and path in ("kernel", "fused"), out
