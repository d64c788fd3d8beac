"""Exact references for the curvature tests: small float64 models and their full Hessian.

The loss is written out here by hand (not through ``model.compute_loss``), so the checks
are independent of how keras_optlab builds a model's loss. The Hessian is the Jacobian of
the flattened gradient, by each backend's own means and by another route than
keras_optlab's: nested ``tf.GradientTape``s and ``jacobian`` (TensorFlow),
``jax.hessian`` (forward-over-reverse Jacobian) of the loss as a function of the weights
(JAX), one backward pass per row of H (PyTorch).
"""

import contextlib

import keras
import numpy as np
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


def tanh(z):
    """tanh as 2σ(2z) − 1, exact in float64 on every backend: Keras 3.15's ``ops.tanh``
    on JAX computes a float64 input in float32 (its ``result_type(float64, float)`` is
    float32), which caps a JAX Hessian check of a tanh network at ~1e-8."""
    return 2.0 * ops.sigmoid(2.0 * z) - 1.0


# Keras 3.15.1's dtypes.result_type maps float64 to float32 (BIT64_TO_BIT32_DTYPE), and
# the torch backend's ops.matmul computes in that type: a float64 Dense network on torch
# is float32-accurate (each matmul rounds to 2⁻²⁴ ≈ 6e-8 relative). Comparisons there
# allow 2e-6 relative (a few dozen float32 roundings), still far below the O(1) error
# of a wrong formula. TensorFlow and JAX keep the float64 tolerances.
FLOAT32_MATMUL_RTOL = 2e-6 if keras.backend.backend() == "torch" else 0.0


def rtol(float64_rtol):
    """The tolerance of a float64 check on this backend (see FLOAT32_MATMUL_RTOL)."""
    return max(float64_rtol, FLOAT32_MATMUL_RTOL)


def mean(z, axis=None):
    """The mean as a sum times 1/n: Keras 3.15's ``ops.mean`` (JAX backend) computes a
    float64 input in float32 (its ``result_type`` maps 64-bit types to 32-bit)."""
    n = int(np.prod(z.shape)) if axis is None else int(z.shape[axis])
    return ops.sum(z, axis=axis) * (1.0 / n)


def mse(y_true, y_pred):
    """Keras' mean squared error, with :func:`mean`: exact in float64 on every backend."""
    return mean(ops.square(y_pred - ops.cast(y_true, y_pred.dtype)), axis=-1)


L2 = 2.0**-7  # exact in float32: Keras stores the regularizer factor as a float32 constant


def mlp(seed=0):
    """3 → 4 (tanh, L2 on the kernel) → 2, float64, :func:`mse`: 26 parameters."""
    model = keras.Sequential(
        [
            keras.Input((3,), dtype="float64"),
            keras.layers.Dense(
                4,
                activation=tanh,
                kernel_regularizer=keras.regularizers.L2(L2),
                kernel_initializer=keras.initializers.GlorotNormal(seed),
                bias_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=seed + 1),
                dtype="float64",
            ),
            keras.layers.Dense(2, kernel_initializer=keras.initializers.GlorotNormal(seed + 2), dtype="float64"),
        ]
    )
    model.compile(loss=mse)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 3))
    y = rng.standard_normal((16, 2))
    return model, x, y


def einsum_mlp(seed=0, n=37):
    """:func:`mlp`'s network (3 → 4 tanh, L2 on the kernel → 2, :func:`mse`) built from
    ``keras.layers.EinsumDense`` — ``ops.einsum`` stays float64 on torch, where
    ``Dense``'s ``ops.matmul`` rounds to float32 (FLOAT32_MATMUL_RTOL) — so that its
    products are float64-exact on all three backends; ``n`` samples (37 by default: a
    prime, so no batch size or device count splits it evenly) and sample weights.
    Returns ``(model, x, y, sample_weight)``."""
    model = keras.Sequential(
        [
            keras.Input((3,), dtype="float64"),
            keras.layers.EinsumDense(
                "ab,bc->ac", output_shape=4, bias_axes="c", activation=tanh,
                kernel_regularizer=keras.regularizers.L2(L2),
                kernel_initializer=keras.initializers.GlorotNormal(seed),
                bias_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=seed + 1),
                dtype="float64",
            ),
            keras.layers.EinsumDense(
                "ab,bc->ac", output_shape=2, bias_axes="c",
                kernel_initializer=keras.initializers.GlorotNormal(seed + 2), dtype="float64",
            ),
        ]
    )
    model.compile(loss=mse)
    rng = np.random.default_rng(seed + 10)
    x = rng.standard_normal((n, 3))
    y = rng.standard_normal((n, 2))
    sample_weight = rng.uniform(0.2, 2.0, n)
    return model, x, y, sample_weight


def mlp_jacobians(model, x):
    """(z, J): the outputs (N, K) of :func:`mlp`'s network (its weights in any model of
    that shape) before any output activation, and the Jacobians ∂zᵢ/∂θ (N, K, 26), θ
    flattened in the order of ``model.trainable_variables`` (W1, b1, W2, b2, each
    row-major), by hand in NumPy. z = tanh(x W1 + b1) W2 + b2."""
    w1, b1, w2, b2 = (np.asarray(w, dtype=np.float64) for w in model.get_weights())
    n, k = len(x), w2.shape[1]
    h = np.tanh(x @ w1 + b1)
    dz_dpre = w2.T[None, :, :] * (1.0 - h**2)[:, None, :]  # (N, K, hidden)
    j_w1 = np.einsum("nka,nc->nkca", dz_dpre, x).reshape(n, k, -1)
    j_w2 = np.einsum("na,kl->nkal", h, np.eye(k)).reshape(n, k, -1)
    j_b2 = np.broadcast_to(np.eye(k), (n, k, k))
    return h @ w2 + b2, np.concatenate([j_w1, dz_dpre, j_w2, j_b2], axis=2)


def mlp_loss(model, x, y, sample_weight=None):
    """MSE (Keras' sum-over-batch-size reduction) plus the L2 penalty, by hand."""

    def loss_fn():
        per_sample = mean(ops.square(ops.subtract(model(x), y)), axis=-1)
        if sample_weight is not None:
            per_sample = ops.multiply(per_sample, sample_weight)
        penalty = L2 * ops.sum(ops.square(model.layers[0].kernel))
        return mean(per_sample) + penalty

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
                activation=tanh,
                use_cudnn=False,
                unroll=unroll,
                kernel_initializer=keras.initializers.GlorotNormal(seed),
                recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 1),
                dtype="float64",
            ),
            keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotNormal(seed + 2), dtype="float64"),
        ]
    )
    model.compile(loss=mse)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, 4, 2))
    y = rng.standard_normal((5, 1))
    return model, x, y


def lstm_loss(model, x, y):
    def loss_fn():
        return mean(ops.square(ops.subtract(model(x), y)))

    return loss_fn


def gradient_and_hessian(loss_fn, variables):
    """(g, H) of ``loss_fn`` at ``variables``, flattened, as float64 NumPy arrays."""
    backend = keras.backend.backend()
    flat, hessian = {"tensorflow": _tf_hessian, "jax": _jax_hessian, "torch": _torch_hessian}[backend](
        loss_fn, list(variables)
    )
    return flat, 0.5 * (hessian + hessian.T)


def _tf_hessian(loss_fn, variables):
    # Traced (tf.function) for speed; the math is the same. (pfor cannot vectorize the
    # second derivative of a tf.while_loop: use an unrolled twin of a recurrent model.)
    import tensorflow as tf

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

    return tuple(t.numpy() for t in compute())


def _jax_hessian(loss_fn, variables):
    import jax

    values = [v.value for v in variables]

    def f(theta):
        parts = split_like(theta, variables)
        with keras.StatelessScope(state_mapping=list(zip(variables, parts))):
            return loss_fn()

    theta = jax.numpy.concatenate([jax.numpy.ravel(v) for v in values])
    return np.asarray(jax.grad(f)(theta)), np.asarray(jax.hessian(f)(theta))


def _torch_hessian(loss_fn, variables):
    import torch

    params = [v.value for v in variables]
    grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])
    rows = [
        torch.cat([r.reshape(-1) for r in torch.autograd.grad(flat[i], params, retain_graph=True)])
        for i in range(flat.shape[0])
    ]
    return flat.detach().numpy().astype(np.float64), torch.stack(rows).detach().numpy().astype(np.float64)


def flatten(tensors):
    return np.concatenate([np.asarray(ops.convert_to_numpy(t), dtype=np.float64).ravel() for t in tensors])


def split_like(flat, variables):
    out, start = [], 0
    for v in variables:
        size = int(np.prod(v.shape))
        out.append(ops.reshape(flat[start : start + size], tuple(v.shape)))
        start += size
    return out
