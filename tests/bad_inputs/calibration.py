"""Bad inputs: calibration (see tests/bad_inputs/__init__.py): calibrate and activation_report.

Every argument is checked before any weight is touched or gradient taken, so the rows
run on every backend (the gradient path itself needs TensorFlow).
"""

import keras
import numpy as np

from keras_optlab.calibration import activation_report, calibrate
from tests.bad_inputs import Bad
from tests.helpers import Subclassed


def _mlp(compiled=False):
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(2)])
    if compiled:
        model.compile(loss="mse")
    return model


def _two_inputs():
    a, b = keras.Input((20,)), keras.Input((20,))
    return keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Concatenate()([a, b])))


def _subclassed():
    model = Subclassed()
    model(_x())
    return model


def _x(n=8, width=20):
    return np.random.default_rng(0).normal(size=(n, width)).astype("float32")


def _with(value, *where):
    x = _x()
    for index in where:
        x[index] = value
    return x


_y = np.zeros((8, 2), "float32")

ROWS = [
    # calibrate: the model
    Bad(lambda: calibrate(42, _x()), TypeError, "model", "model=42"),
    Bad(lambda: calibrate(_subclassed(), _x()), ValueError, "model", "model=Subclassed(name='sub'), a subclassed"),
    Bad(lambda: calibrate(keras.Sequential([keras.Input((20,)), keras.layers.Activation("tanh")]), _x()),
        ValueError, "model", "with layers ['Activation']"),
    # calibrate: the batch
    Bad(lambda: calibrate(_mlp(), np.zeros((0, 20), "float32")), ValueError, "x", "x with shape (0, 20)"),
    Bad(lambda: calibrate(_mlp(), _with(np.nan, (0, 1), (3, 4), (7, 0))), ValueError, "x", "3 NaN and 0 infinite"),
    Bad(lambda: calibrate(_mlp(), _with(np.inf, (2, 2), (5, 5))), ValueError, "x", "0 NaN and 2 infinite"),
    Bad(lambda: calibrate(_mlp(), None), TypeError, "x", "x=None"),
    Bad(lambda: calibrate(_mlp(), "batch"), TypeError, "x", "x='batch'"),
    Bad(lambda: calibrate(_mlp(), _x(width=5)), ValueError, "x", "x with shape (8, 5)"),
    Bad(lambda: calibrate(_mlp(), np.float32(1.0)), ValueError, "x", "x with shape ()"),
    Bad(lambda: calibrate(_two_inputs(), _x()), ValueError, "x", "x with 1 arrays"),
    Bad(lambda: calibrate(_two_inputs(), [_x(), _x(n=4)]), ValueError, "x", "shapes [(8, 20), (4, 20)]"),
    # calibrate: the numbers
    Bad(lambda: calibrate(_mlp(), _x(), target_std=0), ValueError, "target_std", "target_std=0"),
    Bad(lambda: calibrate(_mlp(), _x(), target_std=float("inf")), ValueError, "target_std", "target_std=inf"),
    Bad(lambda: calibrate(_mlp(), _x(), target_std="1"), TypeError, "target_std", "target_std='1'"),
    Bad(lambda: calibrate(_mlp(), _x(), tolerance=float("nan")), ValueError, "tolerance", "tolerance=nan"),
    Bad(lambda: calibrate(_mlp(), _x(), tolerance=-0.1), ValueError, "tolerance", "tolerance=-0.1"),
    Bad(lambda: calibrate(_mlp(), _x(), max_iterations=0), ValueError, "max_iterations", "max_iterations=0"),
    Bad(lambda: calibrate(_mlp(), _x(), max_iterations=2.5), TypeError, "max_iterations", "max_iterations=2.5"),
    Bad(lambda: calibrate(_mlp(), _x(), max_iterations=True), TypeError, "max_iterations", "max_iterations=True"),
    # activation_report
    Bad(lambda: activation_report("model", _x()), TypeError, "model", "model='model'"),
    Bad(lambda: activation_report(_subclassed(), _x()), ValueError, "model", "a subclassed keras.Model"),
    Bad(lambda: activation_report(_mlp(), np.zeros((0, 20), "float32")), ValueError, "x", "x with shape (0, 20)"),
    Bad(lambda: activation_report(_mlp(), _with(np.nan, (1, 1))), ValueError, "x", "1 NaN and 0 infinite"),
    Bad(lambda: activation_report(_mlp(), _x(width=21)), ValueError, "x", "x with shape (8, 21)"),
    Bad(lambda: activation_report(_mlp(True), _x(), _y[:5]), ValueError, "y", "y with 5 samples"),
    Bad(lambda: activation_report(_mlp(True), _x(), np.full((8, 2), np.nan, "float32")), ValueError, "y",
        "16 NaN and 0 infinite"),
    Bad(lambda: activation_report(_mlp(True), _x(), "labels"), TypeError, "y", "y='labels'"),
    Bad(lambda: activation_report(_mlp(True), _x(), np.zeros((0, 2), "float32")), ValueError, "y",
        "y with shape (0, 2)"),
]
