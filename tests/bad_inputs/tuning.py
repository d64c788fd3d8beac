"""Bad inputs: tuning (see tests/bad_inputs/__init__.py): init_hyperparameters, InitSearch, search_init.

Every row runs on every backend (Keras Tuner is multi-backend). search_init refuses each before it
creates a tuner, so no trial runs; the scratch folder stays empty.
"""

import tempfile

import keras
import keras_tuner as kt
import numpy as np

from keras_optlab.tuning import InitSearch, init_hyperparameters, search_init
from tests.bad_inputs import Bad


def _data(n=64, width=8):
    x = np.random.default_rng(0).standard_normal((n, width)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def _model(compiled=True):
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(2, activation="softmax")]
    )
    if compiled:
        model.compile("sgd", "sparse_categorical_crossentropy")
    return model


def _no_kernels():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Activation("softmax")])
    model.compile("sgd", "mse")
    return model


def _hp(**kwargs):
    return init_hyperparameters(kt.HyperParameters(), **kwargs)


def _search(*data, **kwargs):
    x, y = data if data else _data()
    kwargs = {"max_trials": 1, "epochs": 1, "verbose": 0, "directory": tempfile.mkdtemp(), **kwargs}
    return search_init(_model(), x, y, **kwargs)


def _nan_x():
    x, y = _data()
    x[3, 1] = x[9, 2] = np.nan
    return x, y


_X, _Y = _data()
_NAN_Y = _Y.astype("float32")
_NAN_Y[0] = np.nan


def _bad(call, error, argument, echo):
    return Bad(call, error, argument, echo)


ROWS = [
    # init_hyperparameters
    _bad(lambda: init_hyperparameters(None), TypeError, "hp", "hp=None"),
    _bad(lambda: _hp(scale_min=0), ValueError, "scale_min", "scale_min=0"),
    _bad(lambda: _hp(scale_min=5.0, scale_max=1.0), ValueError, "scale_min", "scale_min=5.0, scale_max=1.0"),
    _bad(lambda: _hp(scale_max=float("inf")), ValueError, "scale_max", "scale_max=inf"),
    _bad(lambda: _hp(scale_min="0.1"), TypeError, "scale_min", "scale_min='0.1'"),
    _bad(lambda: _hp(sparse_k=0), ValueError, "sparse_k", "sparse_k=0"),
    _bad(lambda: _hp(sparse_k=(5, 2.5)), TypeError, "sparse_k", "sparse_k=(5, 2.5)"),
    _bad(lambda: _hp(sparse_k=()), ValueError, "sparse_k", "sparse_k=()"),
    _bad(lambda: _hp(dense_schemes=("orthogonal",)), ValueError, "dense_schemes", "dense_schemes=('orthogonal',)"),
    _bad(lambda: _hp(dense_schemes=3), TypeError, "dense_schemes", "dense_schemes=3"),
    _bad(lambda: _hp(layer=""), ValueError, "layer", "layer=''"),
    _bad(lambda: _hp(layer=3), TypeError, "layer", "layer=3"),
    _bad(lambda: _hp(seed=1.5), TypeError, "seed", "seed=1.5"),
    _bad(lambda: _hp(seed="0"), TypeError, "seed", "seed='0'"),
    # InitSearch
    _bad(lambda: InitSearch(42), TypeError, "model", "model=42"),
    _bad(lambda: InitSearch(_model(compiled=False)), ValueError, "model", "not compiled"),
    _bad(lambda: InitSearch(_no_kernels()), ValueError, "model", "with layers ['Activation']"),
    _bad(lambda: InitSearch(_model(), per_layer="yes"), TypeError, "per_layer", "per_layer='yes'"),
    _bad(lambda: InitSearch(lambda hp, init: None, per_layer=True), ValueError, "per_layer", "per_layer=True"),
    _bad(lambda: InitSearch(_model(), seed=2.0), TypeError, "seed", "seed=2.0"),
    _bad(lambda: InitSearch(_model(), scale_max=0.0), ValueError, "scale_max", "scale_max=0.0"),
    _bad(lambda: InitSearch(_model(), sparse_k=-3), ValueError, "sparse_k", "sparse_k=-3"),
    _bad(lambda: InitSearch(_model(), tunable="no"), TypeError, "tunable", "tunable='no'"),
    _bad(lambda: InitSearch(_model(), name=3), TypeError, "name", "name=3"),
    _bad(lambda: InitSearch(_model(), scale=2.0), TypeError, "scale", "['scale']"),
    # search_init: the data
    _bad(lambda: search_init(_model(), None, _Y, directory=tempfile.mkdtemp()), TypeError, "x", "x=None"),
    _bad(lambda: _search(*_nan_x()), ValueError, "x", "2 NaN and 0 infinite"),
    _bad(lambda: _search(np.zeros((0, 8), "float32"), _Y[:0]), ValueError, "x", "x with shape (0, 8)"),
    _bad(lambda: _search(_X, _Y[:10]), ValueError, "y", "y with 10 samples"),
    _bad(lambda: _search(_X, _NAN_Y), ValueError, "y", "1 NaN and 0 infinite"),
    _bad(lambda: _search(_X[:, :5], _Y), ValueError, "x", "x with shape (64, 5)"),
    _bad(lambda: _search(validation_data=(_X[:, :5], _Y)), ValueError, "validation_data",
         "validation_data[0] with shape (64, 5)"),
    _bad(lambda: _search(validation_data=(_X, _Y[:10])), ValueError, "validation_data",
         "validation_data[1] with 10 samples"),
    _bad(lambda: _search(validation_data=_X), TypeError, "validation_data", "validation_data=ndarray of shape (64, 8)"),
    _bad(lambda: _search(validation_data=(_X,)), ValueError, "validation_data", "validation_data with 1 items"),
    _bad(lambda: _search(validation_data=(_X, _NAN_Y)), ValueError, "validation_data", "1 NaN and 0 infinite"),
    _bad(lambda: _search(validation_data=(_X, _Y, np.ones(3))), ValueError, "validation_data",
         "validation_data[2] with 3 samples"),
    # search_init: the search
    _bad(lambda: _search(tuner="grid"), ValueError, "tuner", "tuner='grid'"),
    _bad(lambda: _search(tuner=1), TypeError, "tuner", "tuner=1"),
    _bad(lambda: _search(max_trials=0), ValueError, "max_trials", "max_trials=0"),
    _bad(lambda: _search(epochs=1.5), TypeError, "epochs", "epochs=1.5"),
    _bad(lambda: _search(seed="0"), TypeError, "seed", "seed='0'"),
    _bad(lambda: _search(overwrite="yes"), TypeError, "overwrite", "overwrite='yes'"),
    _bad(lambda: _search(per_layer=1), TypeError, "per_layer", "per_layer=1"),
    _bad(lambda: search_init(InitSearch(_model()), _X, _Y, per_layer=True, directory=tempfile.mkdtemp()), ValueError, "per_layer", "per_layer=True"),
    _bad(lambda: _search(verbose=3), ValueError, "verbose", "verbose=3"),
    _bad(lambda: _search(batch_size=0), ValueError, "batch_size", "batch_size=0"),
    _bad(lambda: _search(validation_split=1.0), ValueError, "validation_split", "validation_split=1.0"),
    _bad(lambda: _search(project_name=""), ValueError, "project_name", "project_name=''"),
    _bad(lambda: _search(directory=3), TypeError, "directory", "directory=3"),
    _bad(lambda: _search(hyperparameters={"init_scale": 1.0}), TypeError, "hyperparameters",
         "hyperparameters={'init_scale': 1.0}"),
    _bad(lambda: _search(objective=3), TypeError, "objective", "objective=3"),
    _bad(lambda: search_init(_no_kernels(), _X, _Y, directory=tempfile.mkdtemp()), ValueError, "model",
         "with layers ['Activation']"),
]
