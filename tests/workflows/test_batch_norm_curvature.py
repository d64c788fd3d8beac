"""Second derivatives through normalization layers in training mode (issue 22, item 2).

Keras' TensorFlow backend takes BatchNormalization's (and LayerNormalization's,
GroupNormalization's) variance from ``tf.nn.moments``, mean((x − stop_gradient(μ))²):
the gradient is exact, the Hessian is not. keras_optlab's TF adapter differentiates
twice under ``_keras_hooks.differentiable_moments`` so that H v, the full H, Newton's
exact and Hessian-free steps through ``SecondOrder`` are the true ones, as on JAX and
PyTorch.

The references do not go through a normalization layer: the model ``Dense(4) →
BatchNormalization → tanh → Dense(1)`` written out in ``keras.ops`` as a function of its
weights (mean and variance as plain sums), its gradient and Hessian by the backend's own
autodiff; and fourth-order differences of the gradient keras_optlab computes (first
derivatives, which were always right). All float64.
"""

import functools
import threading

import keras
import numpy as np
import pytest
from keras import ops

import keras_optlab as ko
from keras_optlab import _keras_hooks, curvature
from tests.curvature.exact import float64, flatten, mean, mse, split_like, tanh

pytestmark = pytest.mark.backend_agnostic

EPSILON = 1e-3  # BatchNormalization's default ε
# The targets are the outputs of a teacher 0.1 away from the weights: near a minimum, H
# has eigenvalues in [−0.18, 4.11] and H + αI in [0.32, 4.61] (condition 14.5), positive
# definite, so Hessian-free CG (which stops at non-positive curvature) solves it too. α =
# 2⁻¹ is exact in float32, the dtype of Newton's damping variable.
DAMPING = 0.5
# Keras 3.15's normalization layers compute in result_type(dtype, "float32"): float32 for
# a float64 input where that result_type maps 64-bit floats to 32-bit (JAX and torch), so
# the checks through them are float32-accurate there; TF keeps float64.
FLOAT32_NORMALIZATION = keras.backend.result_type("float64", "float32") == "float32"


@pytest.fixture(autouse=True)
def _float64():
    # floatx float64 as well: fit would otherwise feed the batch to the model as float32.
    with float64():
        yield


def _teacher_outputs(weights, x):
    """Dense(4) → batch normalization (training mode) → tanh → Dense(1) in NumPy."""
    kernel, bias, gamma, beta, out_kernel, out_bias = weights
    h = x @ kernel + bias
    h = gamma * (h - h.mean(axis=0)) / np.sqrt(h.var(axis=0) + EPSILON) + beta
    return np.tanh(h) @ out_kernel + out_bias


def _problem(normalization="batch"):
    """The model with ``normalization`` (weights drawn by NumPy: the same on every
    backend), inputs 3z + 2 (large pre-activation means, where the Hessian term
    tf.nn.moments drops is large) and the targets of a nearby teacher."""
    rng = np.random.default_rng(0)
    norm = {
        "batch": lambda: keras.layers.BatchNormalization(epsilon=EPSILON),
        "layer": lambda: keras.layers.LayerNormalization(epsilon=EPSILON),
        "group": lambda: keras.layers.GroupNormalization(groups=2, epsilon=EPSILON),
    }[normalization]
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4),
            norm(),
            # tanh as 2σ(2z) − 1: Keras 3.15's ops.tanh computes float64 in float32 on JAX.
            keras.layers.Activation(tanh),
            keras.layers.Dense(1),
        ]
    )
    weights = [
        rng.standard_normal(tuple(v.shape)) * 0.8 + (1.0 if "gamma" in v.path else 0.0)
        for v in model.trainable_variables
    ]
    for variable, value in zip(model.trainable_variables, weights):
        variable.assign(value)
    x = rng.standard_normal((32, 3)) * 3 + 2
    teacher = np.random.default_rng(5)
    y = _teacher_outputs([w + 0.1 * teacher.standard_normal(w.shape) for w in weights], x)
    return model, x, y


def _loss(model, x, y, training=True):
    """The loss SecondOrder minimizes with ``compile(loss=mse)`` (Keras' MSE with an
    exact float64 mean on JAX, tests/curvature/exact.py), training mode by default."""
    return lambda: mean(mse(ops.convert_to_tensor(y), model(x, training=training)))


@functools.lru_cache(maxsize=None)
def _exact():
    """(g, H) at the start of :func:`_problem` (BN), flattened, computed once per session:
    its training-mode MSE written out in ``keras.ops`` as a function of the flat weights
    (batch mean and variance as plain sums: no layer, no ``moments``), differentiated by
    the backend's own means, not keras_optlab's (nested tapes, ``jax.hessian``, torch's
    ``autograd.functional.hessian``)."""
    model, x, y = _problem()
    variables = model.trainable_variables
    x, y = ops.convert_to_tensor(x), ops.convert_to_tensor(y)

    def loss_of(theta):
        kernel, bias, gamma, beta, out_kernel, out_bias = split_like(theta, variables)
        h = ops.matmul(x, kernel) + bias
        centred = h - mean(h, axis=0)
        h = gamma * centred / ops.sqrt(mean(ops.square(centred), axis=0) + EPSILON) + beta
        return mean(ops.square(ops.matmul(tanh(h), out_kernel) + out_bias - y))

    theta = ops.convert_to_tensor(flatten(variables))
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape(persistent=True) as outer:
            outer.watch(theta)
            with tf.GradientTape() as inner:
                inner.watch(theta)
                loss = loss_of(theta)
            g = inner.gradient(loss, theta)
        h = outer.jacobian(g, theta, experimental_use_pfor=False)  # 29 rows, eager: fast
    elif backend == "jax":
        import jax

        g, h = jax.jit(jax.grad(loss_of))(theta), jax.jit(jax.hessian(loss_of))(theta)
    else:
        import torch

        g = torch.func.grad(loss_of)(theta)
        h = torch.autograd.functional.hessian(loss_of, theta)
    g, h = (np.asarray(ops.convert_to_numpy(t), np.float64) for t in (g, h))
    return g, 0.5 * (h + h.T)


def _split(vector, variables):
    out, start = [], 0
    for v in variables:
        size = int(np.prod(v.shape))
        out.append(ops.convert_to_tensor(vector[start : start + size].reshape(tuple(v.shape))))
        start += size
    return out


def _finite_difference_hvp(loss_fn, variables, vector, h=3e-5):
    """H v by the fourth-order central difference of keras_optlab's gradient (first
    derivatives) along v: (8(g(θ + hv) − g(θ − hv)) − (g(θ + 2hv) − g(θ − 2hv))) / 12h."""
    start = [np.array(ops.convert_to_numpy(v)) for v in variables]
    directions = [ops.convert_to_numpy(d) for d in _split(vector, variables)]
    grads = {}
    for step in (1.0, -1.0, 2.0, -2.0):
        for v, w, d in zip(variables, start, directions):
            v.assign(w + step * h * d)
        grads[step] = flatten(curvature.loss_and_gradient(loss_fn, variables)[1])
    for v, w in zip(variables, start):
        v.assign(w)
    return (8.0 * (grads[1.0] - grads[-1.0]) - (grads[2.0] - grads[-2.0])) / (12.0 * h)


def test_hvp_through_training_batch_norm_is_the_hessian():
    model, x, y = _problem()
    variables = model.trainable_variables
    g, h = _exact()
    v = np.random.default_rng(1).standard_normal(g.size)
    loss_fn = _loss(model, x, y)
    _, grads, hv = curvature.hvp_from_loss(loss_fn, variables, _split(v, variables))
    hv = flatten(hv)
    scale = np.max(np.abs(h @ v))
    # Against the exact H: float64 rounding (measured 4e-16 and 2e-16 of the largest
    # entry on TF), or float32 BN (5e-7 measured on JAX and torch).
    tolerance = 1e-5 if FLOAT32_NORMALIZATION else 1e-13
    np.testing.assert_allclose(flatten(grads), g, rtol=0, atol=tolerance * np.max(np.abs(g)))
    np.testing.assert_allclose(hv, h @ v, rtol=0, atol=tolerance * scale)
    # Against differences of the gradient (h = 3e-5, fourth order: measured here, the
    # error falls as h⁴ to 2e-12 of the largest entry). A float32 BN's gradient noise
    # (~1e-7 / h) would drown it: there the exact H is the check.
    if not FLOAT32_NORMALIZATION:
        np.testing.assert_allclose(hv, _finite_difference_hvp(loss_fn, variables, v), rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize("solver", ["exact", "cg"])
def test_newton_step_through_second_order_is_the_damped_newton_step(solver):
    model, x, y = _problem()
    g, h = _exact()
    before = flatten(model.trainable_variables)
    options = {"max_cg_iterations": 100, "cg_tolerance": 1e-12} if solver == "cg" else {}
    wrapper = ko.SecondOrder(model)
    wrapper.compile(optimizer=ko.optimizers.Newton(damping=DAMPING, solver=solver, **options), loss=mse)
    wrapper.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    step = flatten(model.trainable_variables) - before
    truth = -np.linalg.solve(h + DAMPING * np.eye(g.size), g)
    # Condition 14.5: float64 rounding of H and g becomes ~1e-14 in the step (3e-15
    # measured on TF); CG stops at ‖r‖ ≤ 1e-12‖g‖, ~1.5e-11 in the step (1e-12 measured).
    # Float32 BN: 5e-7 measured on JAX and torch.
    tolerance = 1e-5 if FLOAT32_NORMALIZATION else {"exact": 1e-12, "cg": 1e-10}[solver]
    assert np.linalg.norm(step - truth) <= tolerance * np.linalg.norm(truth)


@pytest.mark.parametrize("normalization", ["layer", "group"])
def test_hvp_through_layer_and_group_normalization(normalization):
    # Both normalize with Keras' ops.moments (inference mode too): the model-level
    # curvature.hvp (traced by tf.function on TF) against central differences.
    model, x, y = _problem(normalization)
    model.compile(loss=mse)
    variables = model.trainable_variables
    v = np.random.default_rng(1).standard_normal(sum(int(np.prod(w.shape)) for w in variables))
    hv = flatten(curvature.hvp(model, x, y, _split(v, variables)))
    # Fourth-order differences: measured, the error falls as h⁴ to 8e-11 (group: variances
    # of two channels, large third derivatives) at h = 3e-5. Float32 normalization (JAX,
    # torch): noise and truncation meet at h = 3e-4, ≤ 6e-4 measured.
    h, tolerance = (3e-4, 5e-3) if FLOAT32_NORMALIZATION else (3e-5, 1e-9)
    difference = _finite_difference_hvp(_loss(model, x, y, training=False), variables, v, h)
    np.testing.assert_allclose(hv, difference, rtol=0, atol=tolerance * np.max(np.abs(difference)))


def _variance_hessian(x):
    """d²/dx² of Keras' ops.moments variance of a vector, by nested tapes (TF)."""
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            variance = ops.moments(x, axes=[0])[1]
        grad = inner.gradient(variance, x)
    return outer.jacobian(grad, x).numpy()


@pytest.mark.tensorflow_only
def test_moments_are_differentiable_inside_the_context_only_and_per_thread():
    x = np.random.default_rng(0).standard_normal(5)
    n = x.size
    true = 2.0 / n * (np.eye(n) - 1.0 / n)  # Hessian of mean((x − x̄)²)
    stopped = 2.0 / n * np.eye(n)  # tf.nn.moments': x̄ held constant
    opened, release = threading.Event(), threading.Event()
    other = {}

    def elsewhere():  # another thread, while the main thread holds the context open
        opened.wait(10)
        other["hessian"] = _variance_hessian(x)
        release.set()

    thread = threading.Thread(target=elsewhere)
    thread.start()
    with _keras_hooks.differentiable_moments():
        with _keras_hooks.differentiable_moments():  # nested: still on after the inner one
            pass
        opened.set()
        release.wait(10)
        inside = _variance_hessian(x)
    thread.join(10)
    np.testing.assert_allclose(inside, true, atol=1e-15)
    # Keras' own moments elsewhere and afterwards. (Should TF drop tf.nn.moments'
    # stop_gradient, these two would fail: the hook is then no longer needed.)
    np.testing.assert_allclose(other["hessian"], stopped, atol=1e-15)
    np.testing.assert_allclose(_variance_hessian(x), stopped, atol=1e-15)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_values_and_first_derivatives_unchanged_inside_the_context(dtype):
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).standard_normal((16, 3)) * 3 + 2, dtype=dtype)
    weights = tf.constant(np.random.default_rng(1).standard_normal((16, 3)), dtype=dtype)

    def run():
        with tf.GradientTape() as tape:
            tape.watch(x)
            mean, variance = ops.moments(x, axes=[0])
            loss = tf.reduce_sum(tf.cast(variance, "float64") * 3.0 + tf.cast(mean, "float64")) + tf.reduce_sum(
                tf.cast(ops.moments(x * weights, axes=[0])[1], "float64")
            )
        return mean, variance, tape.gradient(loss, x)

    mean, variance, grad = run()
    with _keras_hooks.differentiable_moments():
        mean_in, variance_in, grad_in = run()
    assert mean_in.dtype == mean.dtype and variance_in.dtype == variance.dtype  # Keras' float16 upcast kept
    np.testing.assert_array_equal(mean_in.numpy(), mean.numpy())  # the same forward ops
    np.testing.assert_array_equal(variance_in.numpy(), variance.numpy())
    # The gradient gains −(2/N)·Σ(x − x̄)·∂x̄, zero up to the rounding of Σ(x − x̄):
    # measured ≤ 0.4 ulp of the largest entry (0 for float16/bfloat16, whose moments
    # Keras computes in float32).
    eps = {"float16": 2.0**-10, "bfloat16": 2.0**-7}.get(dtype) or float(np.finfo(dtype).eps)
    g, g_in = grad.numpy().astype(np.float64), grad_in.numpy().astype(np.float64)
    np.testing.assert_allclose(g_in, g, rtol=0, atol=4 * eps * np.max(np.abs(g)))


def test_a_moved_moments_helper_fails_loudly(monkeypatch):
    """A Keras whose hooked function is gone, or no longer called where it was: an
    ImportError naming it (never a Hessian silently wrong again)."""
    common = "keras_optlab.curvature.autodiff.common"  # stands for Keras' TF nn module
    monkeypatch.setattr(_keras_hooks, "HOOKED_FUNCTIONS", ((common, "_compute_moments", "flat", None),))
    with pytest.raises(ImportError, match=r"common\._compute_moments"):
        _keras_hooks.check_hooks()
    monkeypatch.setattr(_keras_hooks, "HOOKED_FUNCTIONS", ((common, "unflat", "flat", None),))
    with pytest.raises(ImportError, match=r"common\.unflat \(no longer called by flat\)"):
        _keras_hooks.check_hooks()
