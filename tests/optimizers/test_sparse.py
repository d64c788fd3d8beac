"""Sparse gradients (embedding rows): TF ``IndexedSlices`` and JAX ``BCOO``.

Adapted from Keras 3.15's keras/src/optimizers/optimizer_sparse_test.py to our classes
(issue 13, item 8). Before: on JAX, Momentum, Nesterov, RMSProp, NesterovRMSProp and
Adam raised ``NotImplementedError: Subtraction between sparse and dense array``
(``clipping.densify`` knew only ``IndexedSlices``). The book's algorithms treat g as
dense, so a sparse gradient is scattered into zeros first: the result must equal the
dense gradient's.
"""

from unittest import mock

import keras
import numpy as np
import pytest
from keras import ops

from keras_optlab import clipping
from tests.optimizers.cases import NAMES, OPTIMIZERS

pytestmark = pytest.mark.backend_agnostic

OPTIONS = {
    "plain": {},
    "global_clipnorm": dict(global_clipnorm=1.0),
    "clipnorm": dict(clipnorm=1.0),
    "clipvalue": dict(clipvalue=2.0),
    "adaptive_clipnorm": dict(adaptive_clipnorm=0.1),
    "skip_nonfinite": dict(skip_nonfinite=True, track_gradient_norm=True),
    "weight_decay": dict(weight_decay=0.01),
}


def sparse_gradient(values, indices, shape):
    """``values`` at rows ``indices`` of a ``shape`` tensor, in the backend's sparse type."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.IndexedSlices(values, indices, shape)
    if keras.backend.backend() == "jax":
        import jax.experimental.sparse as jax_sparse

        return jax_sparse.BCOO((values, tuple((i,) for i in indices)), shape=shape)
    pytest.skip(f"no sparse gradients on {keras.backend.backend()}")


def sparse_class():
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.IndexedSlices
    import jax.experimental.sparse as jax_sparse

    return jax_sparse.JAXSparse


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("name", NAMES)
def test_sparse_correctness(name, option):
    """Keras' test_sparse_correctness: a sparse gradient gives the dense gradient's
    result, step after step (stateful apply on TF, stateless_apply on JAX as Keras' test)."""
    optimizer_sparse = OPTIMIZERS[name](**OPTIONS[option])
    optimizer_dense = OPTIMIZERS[name](**OPTIONS[option])
    var_sparse = keras.Variable(initializer="ones", shape=(5, 3, 2))
    var_dense = keras.Variable(initializer="ones", shape=(5, 3, 2))
    stateless = keras.backend.backend() == "jax"
    if stateless:
        optimizer_sparse.build([var_sparse])
        optimizer_dense.build([var_dense])
    sparse_vars, dense_vars = optimizer_sparse.variables, optimizer_dense.variables
    sparse_values, dense_values = [var_sparse.value], [var_dense.value]
    for i in range(5):
        grad_sparse = sparse_gradient(ops.ones((3, 3, 2)) * (10.0 - i), (0, 2, 4), (5, 3, 2))
        grad_dense = ops.convert_to_tensor(grad_sparse, sparse=False)
        if stateless:
            sparse_values, sparse_vars = optimizer_sparse.stateless_apply(sparse_vars, [grad_sparse], sparse_values)
            dense_values, dense_vars = optimizer_dense.stateless_apply(dense_vars, [grad_dense], dense_values)
            got, want = sparse_values[0], dense_values[0]
        else:
            optimizer_sparse.apply([grad_sparse], [var_sparse])
            optimizer_dense.apply([grad_dense], [var_dense])
            got, want = var_sparse.value, var_dense.value
        # the same float32 operations on the same dense tensor: equal to the last bit
        np.testing.assert_array_equal(ops.convert_to_numpy(got), ops.convert_to_numpy(want))
    assert not np.allclose(ops.convert_to_numpy(got), 1.0)  # it moved
    for a, b in zip(sparse_vars, dense_vars):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))


@pytest.mark.parametrize("name", NAMES)
def test_sparse_gradients_use_the_optimizer_assign(name):
    """Keras' test_sparse_gradients: every write goes through ``self.assign*`` (never a
    variable's own ``assign``), and, the book's rules being dense, no write is sparse."""
    model_variable = keras.Variable(initializer="ones", shape=(5, 10))
    optimizer = OPTIMIZERS[name]()
    grad = sparse_gradient(0.5 * ops.ones((3, 10)), (0, 2, 4), (5, 10))
    if keras.backend.backend() == "tensorflow":
        variable_class = model_variable._value.__class__
        from keras_optlab import accel

        paths = accel.paths("ops")  # TF's fused kernels write through their handles
    else:
        variable_class = model_variable.__class__
        import contextlib

        paths = contextlib.nullcontext()
    sparse_writes = []

    def optimizer_assign(variable, value):
        if isinstance(value, sparse_class()):
            sparse_writes.append(variable)

    def variable_assign(variable, value):
        if len(variable.shape):
            pytest.fail("the optimizer called a variable's own assign; use self.assign(variable, value)")

    with (
        paths,
        mock.patch.object(optimizer, "assign", autospec=True, side_effect=optimizer_assign),
        mock.patch.object(optimizer, "assign_add", autospec=True, side_effect=optimizer_assign),
        mock.patch.object(optimizer, "assign_sub", autospec=True, side_effect=optimizer_assign),
        mock.patch.object(variable_class, "assign", autospec=True, side_effect=variable_assign),
        mock.patch.object(variable_class, "assign_add", autospec=True, side_effect=variable_assign),
        mock.patch.object(variable_class, "assign_sub", autospec=True, side_effect=variable_assign),
    ):
        optimizer.apply([grad], [model_variable])
    assert sparse_writes == []


def test_densify_and_clip_a_sparse_gradient():
    """clipping's functions on the backend's sparse type: the stored values are clipped,
    the result stays sparse, and densify scatters it into zeros."""
    grad = sparse_gradient(ops.convert_to_tensor([[3.0, 4.0], [0.0, 0.0]]), (1, 3), (4, 2))
    assert clipping.is_sparse(grad)
    dense = ops.convert_to_numpy(clipping.densify(grad))
    np.testing.assert_array_equal(dense, [[0, 0], [3, 4], [0, 0], [0, 0]])
    np.testing.assert_allclose(float(clipping.global_norm([grad])), 5.0, rtol=1e-7)
    assert bool(clipping.all_finite([grad]))
    for clipped, changed in (
        clipping.clip_by_norm([grad], 1.0),
        clipping.clip_by_global_norm([grad], 1.0),
    ):
        assert bool(changed) and clipping.is_sparse(clipped[0])
        np.testing.assert_allclose(ops.convert_to_numpy(clipping.densify(clipped[0]))[1], [0.6, 0.8], rtol=1e-6)
    clipped, changed = clipping.clip_by_value([grad], 3.5)
    assert bool(changed)
    np.testing.assert_array_equal(ops.convert_to_numpy(clipping.densify(clipped[0]))[1], [3.0, 3.5])
