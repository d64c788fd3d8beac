"""Exact references for the curvature tests: small float64 models and their full Hessian.

The loss is written out here by hand (not through ``model.compute_loss``), so the checks
are independent of how keras_optlab builds a model's loss. The Hessian comes from nested
``tf.GradientTape``s: the Jacobian of the flattened gradient.
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf
from keras import ops


@contextlib.contextmanager
def float64():
    """floatx and the global dtype policy float64 inside, restored after.

    Both: Keras caches the global dtype policy from floatx the first time a layer asks
    for it, so restoring floatx alone would leave later layers float64.
    """
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


L2 = 2.0**-7  # exact in float32: Keras stores the regularizer factor as a float32 constant


def mlp(seed=0):
    """3 → 4 (tanh, L2 on the kernel) → 2, float64, MSE: 26 parameters."""
    model = keras.Sequential(
        [
            keras.Input((3,), dtype="float64"),
            keras.layers.Dense(
                4,
                activation="tanh",
                kernel_regularizer=keras.regularizers.L2(L2),
                kernel_initializer=keras.initializers.GlorotNormal(seed),
                bias_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=seed + 1),
                dtype="float64",
            ),
            keras.layers.Dense(2, kernel_initializer=keras.initializers.GlorotNormal(seed + 2), dtype="float64"),
        ]
    )
    model.compile(loss="mse")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 3))
    y = rng.standard_normal((16, 2))
    return model, x, y


def mlp_loss(model, x, y, sample_weight=None):
    """MSE (Keras' sum-over-batch-size reduction) plus the L2 penalty, by hand."""

    def loss_fn():
        per_sample = ops.mean(ops.square(model(x) - y), axis=-1)
        if sample_weight is not None:
            per_sample = per_sample * sample_weight
        penalty = L2 * ops.sum(ops.square(model.layers[0].kernel))
        return ops.mean(per_sample) + penalty

    return loss_fn


def lstm(seed=0, unroll=False):
    """LSTM(2, cuDNN off) over 4 steps of 2 features → Dense(1), float64, MSE: 43 parameters.

    ``unroll=False`` (Keras' default) runs the recurrence in a ``tf.while_loop``: the case
    under test. ``unroll=True`` builds the same function without a loop: the reference,
    whose Hessian ``jacobian`` vectorizes in a fraction of the time.
    """
    model = keras.Sequential(
        [
            keras.Input((4, 2), dtype="float64"),
            keras.layers.LSTM(
                2,
                use_cudnn=False,
                unroll=unroll,
                kernel_initializer=keras.initializers.GlorotNormal(seed),
                recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 1),
                dtype="float64",
            ),
            keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotNormal(seed + 2), dtype="float64"),
        ]
    )
    model.compile(loss="mse")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, 4, 2))
    y = rng.standard_normal((5, 1))
    return model, x, y


def lstm_loss(model, x, y):
    def loss_fn():
        return ops.mean(ops.square(model(x) - y))

    return loss_fn


def gradient_and_hessian(loss_fn, variables):
    """(g, H) of ``loss_fn`` at ``variables``, flattened, as float64 NumPy arrays.

    Traced (``tf.function``) for speed; the math is the same. (pfor cannot vectorize the
    second derivative of a ``tf.while_loop``: use an unrolled twin of a recurrent model.)
    """
    tf_vars = [v.value for v in variables]

    @tf.function
    def compute():
        with tf.GradientTape(persistent=True) as outer:
            with tf.GradientTape() as inner:
                loss = loss_fn()
            grads = inner.gradient(loss, tf_vars)
            flat = tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0)
        n = flat.shape[0]
        blocks = [tf.reshape(outer.jacobian(flat, v), (n, -1)) for v in tf_vars]
        return flat, tf.concat(blocks, axis=1)

    flat, hessian = (t.numpy() for t in compute())
    return flat, 0.5 * (hessian + hessian.T)


def flatten(tensors):
    return np.concatenate([np.asarray(t, dtype=np.float64).ravel() for t in tensors])


def split_like(flat, variables):
    out, start = [], 0
    for v in variables:
        size = int(np.prod(v.shape))
        out.append(flat[start : start + size].reshape(tuple(v.shape)))
        start += size
    return out
