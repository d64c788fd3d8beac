"""Train, save, load in a new process (issue 22, item 5).

`import keras_optlab` registers every serializable class with Keras, before or after
`import keras`, so `keras.saving.load_model` finds optimizers (the closure wing and
`SecondOrder` included), initializers and schedules. Each process is a fresh Python on
the test's own backend.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.backend_agnostic

SAVE = """
import keras, numpy as np, keras_optlab as ko
x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
y = (x[:, :1] > 0).astype("float32")
def body(seed):
    return keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(6, activation="tanh", kernel_initializer=ko.SparseK(k=2, seed=seed)),
        keras.layers.Dense(5, activation="tanh", kernel_initializer=ko.Scaled(ko.FanInUniform(seed=seed), 0.5),
                           bias_initializer=ko.GateBias([0.0, 1.0, 2.0, 3.0, 4.0])),
        keras.layers.Dense(1, kernel_initializer=ko.NormalizedUniform(seed=seed),
                           bias_initializer=ko.MarginalBias.from_labels(y[:, 0], link="sigmoid")),
    ])
models = {
    "adam": (body(0), ko.optimizers.Adam(ko.LinearDecay(0.01, 0.001, decay_steps=10))),
    "newton": (ko.SecondOrder(body(1)), ko.optimizers.Newton(damping=1.0)),
    "lbfgs": (ko.SecondOrder(body(2)), ko.optimizers.LBFGS()),
    "cg": (ko.SecondOrder(body(3)), ko.optimizers.NonlinearCG()),
}
for name, (model, optimizer) in models.items():
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    model.save(f"{name}.keras")
    np.save(f"{name}.npy", keras.ops.convert_to_numpy(model.predict(x, verbose=0)))
np.save("x.npy", x)
print("saved")
"""

LOAD = """
import numpy as np
{imports}
x = np.load("x.npy")
for name, optimizer in [("adam", "Adam"), ("newton", "Newton"), ("lbfgs", "LBFGS"), ("cg", "NonlinearCG")]:
    model = keras.saving.load_model(f"{{name}}.keras")
    assert type(model.optimizer).__name__ == optimizer, (name, model.optimizer)
    assert type(model.optimizer).__module__.startswith("keras_optlab."), model.optimizer
    got = keras.ops.convert_to_numpy(model.predict(x, verbose=0))
    np.testing.assert_array_equal(got, np.load(f"{{name}}.npy"))
    # Training goes on from the loaded state.
    model.fit(x, (x[:, :1] > 0).astype("float32"), batch_size=16, epochs=1, verbose=0)
print("loaded")
"""


def _run(code, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_a_saved_model_loads_in_a_new_process_whatever_the_import_order(tmp_path):
    assert _run(SAVE, tmp_path).strip().endswith("saved")
    for imports in ("import keras_optlab\nimport keras", "import keras\nimport keras_optlab"):
        assert _run(LOAD.format(imports=imports), tmp_path).strip().endswith("loaded"), imports


def test_import_registers_without_importing_keras():
    code = (
        "import sys, keras_optlab\n"
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, 'keras imported'\n"
        "import keras\n"
        "names = ['SGD', 'Momentum', 'Nesterov', 'AdaGrad', 'RMSProp', 'NesterovRMSProp', 'Adam', 'Newton',\n"
        "         'LBFGS', 'NonlinearCG', 'SecondOrder', 'LinearDecay', 'FanInUniform', 'NormalizedUniform',\n"
        "         'SparseK', 'GateBias', 'MarginalBias', 'Scaled']\n"
        "missing = [n for n in names if keras.saving.get_registered_object('keras_optlab>' + n) is None]\n"
        "print('missing', missing)\n"
    )
    assert _run(code, None).strip().endswith("missing []")


@pytest.mark.parametrize("first", [
    "import keras_optlab.curvature", "from keras_optlab.optimizers import Adam", "import keras_optlab.callbacks",
    # Keras first imported from inside a half-imported module of ours: registered at the next import.
    "from keras_optlab import _keras_hooks; import keras_optlab.lab",
])
def test_any_first_import_registers_without_a_circular_import(first):
    code = f"{first}\nimport keras\nprint(keras.saving.get_registered_object('keras_optlab>SecondOrder') is not None)\n"
    assert _run(code, None).strip().endswith("True")
