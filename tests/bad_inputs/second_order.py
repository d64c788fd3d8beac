"""Bad inputs: second_order — curvature functions, callbacks, SecondOrder and Newton
(see tests/bad_inputs/__init__.py). Every row runs on every backend.

The Newton constructor rows are the former ``NEWTON_BAD`` of
tests/optimizers/test_validation.py, with the value each message echoes.
"""

import functools
import os
import tempfile

import keras
import numpy as np

from tests.bad_inputs import Bad
from tests.helpers import with_null_optimizer

X = np.arange(24, dtype="float32").reshape(8, 3) / 24.0
Y = np.ones((8, 2), dtype="float32")


@functools.lru_cache(maxsize=None)
def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _vectors():
    return [np.ones(v.shape) for v in _model().trainable_variables]


def _variable():
    return keras.Variable([1.0, 2.0, 3.0])


def _curvature():
    from keras_optlab import curvature

    return curvature


def _callbacks():
    from keras_optlab import callbacks

    return callbacks


def _newton(**kwargs):
    from keras_optlab.optimizers import Newton

    return Newton(**kwargs)


def _second_order(*args, **kwargs):
    from keras_optlab import SecondOrder

    return SecondOrder(*args, **kwargs)


def _second_order_class():
    from keras_optlab import SecondOrder

    return SecondOrder


def _vector_loss_minimize():
    variable = _variable()
    return _newton().minimize(lambda: variable**2, [variable])


def _mixed_dtypes_step():
    ops = keras.ops
    a, b = keras.Variable([1.0], dtype="float32"), keras.Variable([1.0], dtype="float64")
    return _newton().minimize(lambda: ops.sum(a**2) + ops.cast(ops.sum(b**2), "float32"), [a, b])


def _load_with_null_optimizer():
    from keras_optlab import SecondOrder
    from keras_optlab.optimizers import Newton

    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model = SecondOrder(inner)
    model.compile(optimizer=Newton(), loss="mse")
    model.fit(X, Y[:, :1], verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        saved, edited = os.path.join(folder, "saved.keras"), os.path.join(folder, "edited.keras")
        model.save(saved)
        with_null_optimizer(saved, edited)
        return keras.saving.load_model(edited)


def _gradient_stats_on(optimizer):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=optimizer, loss="mse")
    return _callbacks().GradientStats().set_model(model)


def _row(call, error, argument, echo):
    return Bad(call, error, argument, echo)


CURVATURE = [
    _row(lambda: _curvature().hvp("model", X, Y, []), TypeError, "model", "model='model'"),
    _row(lambda: _curvature().hvp(_model(), X, Y, "ones"), TypeError, "vectors", "vectors='ones'"),
    _row(lambda: _curvature().hvp(_model(), X, Y, _vectors()[:1]), ValueError, "vectors", "a list of 1"),
    _row(lambda: _curvature().hvp(_model(), X, Y, [np.ones((2, 3)), np.ones(2)]), ValueError, "vectors",
         "shape=(2, 3)"),
    _row(lambda: _curvature().hvp(_model(), X, Y[:2], _vectors()), ValueError, "y", "y.shape=(2, 2)"),
    _row(lambda: _curvature().gradient_curvature(_model(), X, Y, learning_rate=-1.0), ValueError,
         "learning_rate", "learning_rate=-1.0"),
    _row(lambda: _curvature().gradient_curvature(_model(), X, Y, learning_rate="fast"), TypeError,
         "learning_rate", "learning_rate='fast'"),
    _row(lambda: _curvature().gradient_curvature(_model(), "pixels", Y), TypeError, "x", "x='pixels'"),
    _row(lambda: _curvature().gradient_curvature(_model(), X, Y, sample_weight=np.ones(3)), ValueError,
         "sample_weight", "sample_weight.shape=(3,)"),
    _row(lambda: _curvature().gradient_curvature(_model(), np.float32(1.0), Y), ValueError, "x", "shape ()"),
    _row(lambda: _curvature().gradient_curvature(_model(), X[:0], Y[:0]), ValueError, "x", "x.shape=(0, 3)"),
    _row(lambda: _curvature().model_loss_and_gradient(_model(), X, None, sample_weight=np.ones(5)), ValueError,
         "sample_weight", "sample_weight.shape=(5,)"),
    _row(lambda: _curvature().top_eigenvalues(_model(), X, Y, k=0), ValueError, "k", "k=0"),
    _row(lambda: _curvature().top_eigenvalues(_model(), X, Y, k=9), ValueError, "k", "k=9"),
    _row(lambda: _curvature().top_eigenvalues(_model(), X, Y, k=1.5), TypeError, "k", "k=1.5"),
    _row(lambda: _curvature().top_eigenvalues(_model(), X, Y, method="qr"), ValueError, "method", "method='qr'"),
    _row(lambda: _curvature().top_eigenvalues(_model(), X, Y, tol=0.0), ValueError, "tol", "tol=0.0"),
    _row(lambda: _curvature().top_eigenvalues(_model(), X, Y, max_iterations=True), TypeError, "max_iterations",
         "max_iterations=True"),
    _row(lambda: _curvature().top_eigenvalues(_model(), X, Y, seed=0.5), TypeError, "seed", "seed=0.5"),
    _row(lambda: _curvature().top_eigenvalues(_model(), X, Y, return_eigenvectors="yes"), TypeError,
         "return_eigenvectors", "return_eigenvectors='yes'"),
    _row(lambda: _curvature().top_eigenvalues(_model(), X, Y, initial_vector=np.zeros(8)), ValueError,
         "initial_vector", "8 entries, 0 non-zero"),
    _row(lambda: _curvature().top_eigenvalues(_model(), X, Y, initial_vector=np.ones(5)), ValueError,
         "initial_vector", "5 entries"),
    _row(lambda: _curvature().hessian_trace(_model(), X, Y, num_samples=1), ValueError, "num_samples",
         "num_samples=1"),
    _row(lambda: _curvature().hessian_trace(_model(), X, Y, num_samples=2.0), TypeError, "num_samples",
         "num_samples=2.0"),
    _row(lambda: _curvature().hessian_trace(_model(), X, Y, seed="0"), TypeError, "seed", "seed='0'"),
    _row(lambda: _curvature().loss_and_gradient("loss", [_variable()]), TypeError, "loss_fn", "loss_fn='loss'"),
    _row(lambda: _curvature().loss_and_gradient(lambda: 0.0, []), ValueError, "variables", "variables=[]"),
    _row(lambda: _curvature().loss_and_gradient(lambda: 0.0, "w"), TypeError, "variables", "variables='w'"),
    _row(lambda: (lambda v: _curvature().loss_and_gradient(lambda: v * 2.0, [v]))(_variable()), ValueError,
         "loss_fn", "shape (3,)"),
    _row(lambda: _curvature().gradient_hvp(lambda: 0.0, [np.ones(3)]), TypeError, "variables", "array("),
    _row(lambda: (lambda v: _curvature().hvp_from_loss(lambda: (v**2)[0], [v], "v"))(_variable()), TypeError,
         "vectors", "vectors='v'"),
    _row(lambda: (lambda v: _curvature().hvp_from_loss(lambda: (v**2)[0], [v], [np.ones(2)]))(_variable()),
         ValueError, "vectors", "shape=(2,)"),
    _row(lambda: (lambda v: _curvature().gauss_newton_product(None, lambda z: z, [v], [np.ones(3)]))(_variable()),
         TypeError, "outputs_fn", "outputs_fn=None"),
    _row(lambda: (lambda v: _curvature().gauss_newton_product(lambda: v, "mse", [v], [np.ones(3)]))(_variable()),
         TypeError, "output_loss_fn", "output_loss_fn='mse'"),
    _row(lambda: _curvature().loss_closure("model", X, Y), TypeError, "model", "model='model'"),
]

CALLBACKS = [
    _row(lambda: _callbacks().CurvatureMonitor(X, Y[:4]), ValueError, "y", "y.shape=(4, 2)"),
    _row(lambda: _callbacks().CurvatureMonitor(X, Y, sample_weight=np.ones(3)), ValueError, "sample_weight",
         "sample_weight.shape=(3,)"),
    _row(lambda: _callbacks().CurvatureMonitor(None, Y), TypeError, "x", "x=None"),
    _row(lambda: _callbacks().CurvatureMonitor("pixels", Y), TypeError, "x", "x='pixels'"),
    _row(lambda: _callbacks().CurvatureMonitor({"a": X, "b": X[:5]}, Y), ValueError, "x", "x['b'].shape=(5, 3)"),
    _row(lambda: _callbacks().CurvatureMonitor(X, Y, every_n_batches=0), ValueError, "every_n_batches",
         "every_n_batches=0"),
    _row(lambda: _callbacks().CurvatureMonitor(X, Y, every_n_batches=2.5), TypeError, "every_n_batches",
         "every_n_batches=2.5"),
    _row(lambda: _callbacks().CurvatureMonitor(X, Y, every_n_batches=True), TypeError, "every_n_batches",
         "every_n_batches=True"),
    _row(lambda: _callbacks().CurvatureMonitor(X, Y, eigen_iterations=0), ValueError, "eigen_iterations",
         "eigen_iterations=0"),
    _row(lambda: _callbacks().CurvatureMonitor(X, Y, top_eigenvalue="yes"), TypeError, "top_eigenvalue",
         "top_eigenvalue='yes'"),
    _row(lambda: _callbacks().CurvatureMonitor(X, Y, seed=0.5), TypeError, "seed", "seed=0.5"),
    _row(lambda: _gradient_stats_on(keras.optimizers.SGD()), TypeError, "optimizer", "SGD: compile with"),
]

NEWTON = [
    _row(lambda: _newton(damping=-1.0), ValueError, "damping", "damping=-1.0"),
    _row(lambda: _newton(solver="lbfgs"), ValueError, "solver", "solver='lbfgs'"),
    _row(lambda: _newton(max_cg_iterations=0), ValueError, "max_cg_iterations", "max_cg_iterations=0"),
    _row(lambda: _newton(max_cg_iterations=2.5), TypeError, "max_cg_iterations", "max_cg_iterations=2.5"),
    _row(lambda: _newton(cg_tolerance=0.0), ValueError, "cg_tolerance", "cg_tolerance=0.0"),
    _row(lambda: _newton(adaptive_damping="yes"), TypeError, "adaptive_damping", "adaptive_damping='yes'"),
    _row(lambda: _newton(adaptive_damping=True, damping=0.0), ValueError, "damping", "damping=0.0"),
    _row(lambda: _newton(saddle_free=True, solver="cg"), ValueError, "solver", "solver='cg'"),
    _row(lambda: _newton(weight_decay=0.1), ValueError, "weight_decay", "weight_decay=0.1"),
    _row(lambda: _newton(curvature="fisher"), ValueError, "curvature", "curvature='fisher'"),
    _row(lambda: _newton(curvature="gauss_newton", solver="exact"), ValueError, "solver", "solver='exact'"),
    _row(lambda: _newton(clipnorm=1.0), ValueError, "clipnorm", "clipnorm=1.0"),
    _row(lambda: _newton(damping=float("inf")), ValueError, "damping", "damping=inf"),
    _row(lambda: _newton(solver=3), TypeError, "solver", "solver=3"),
    _row(lambda: _newton(cg_tolerance=float("inf")), ValueError, "cg_tolerance", "cg_tolerance=inf"),
    _row(lambda: _newton(max_cg_iterations=True), TypeError, "max_cg_iterations", "max_cg_iterations=True"),
    _row(lambda: _newton(saddle_free=1), TypeError, "saddle_free", "saddle_free=1"),
    _row(lambda: _newton(curvature=None), TypeError, "curvature", "curvature=None"),
    _row(lambda: _newton(learning_rate=-1.0), ValueError, "learning_rate", "learning_rate=-1.0"),
    _row(_vector_loss_minimize, ValueError, "loss_fn", "shape (3,)"),
    _row(lambda: _newton().minimize(lambda: 0.0, [_variable()], steps=0), ValueError, "steps", "steps=0"),
    _row(lambda: _newton().minimize("loss", [_variable()]), TypeError, "loss_fn", "loss_fn='loss'"),
    _row(lambda: _newton().minimize(lambda: 0.0, []), ValueError, "variables", "variables=[]"),
    _row(_mixed_dtypes_step, ValueError, "variables", "['float32', 'float64']"),
]

SECOND_ORDER = [
    _row(lambda: _second_order("not a model"), TypeError, "model", "model='not a model'"),
    _row(lambda: _second_order_class().from_config({"name": "wrapper"}), ValueError, "model",
         "config keys ['name']"),
    _row(_load_with_null_optimizer, ValueError, "optimizer", "optimizer=None"),
]

ROWS = CURVATURE + CALLBACKS + NEWTON + SECOND_ORDER
