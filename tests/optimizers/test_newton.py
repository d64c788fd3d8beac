"""Newton's method (Alg. 8.8, Sec. 8.6.1) against closed forms and a NumPy reference,
on TensorFlow, JAX and PyTorch (this file runs in each backend's pass).

Float64 throughout. Keras 3.15.1's ``dtypes.result_type`` maps float64 to float32, so
some Keras ops compute a float64 input in float32: ``ops.matmul`` (and ``dot``,
``tensordot``) on torch, ``ops.tanh`` / ``ops.mean`` on JAX. The losses and models
here avoid them — products as ``*`` and ``ops.sum``, ``EinsumDense`` for ``Dense``
(``ops.einsum`` is exact), tanh and MSE from tests/curvature/exact.py — so that every
backend keeps the float64 tolerances.
"""

import keras
import numpy as np
import pytest
from keras import ops

import keras_optlab as ko
from keras_optlab.optimizers.newton import MAX_EXACT_PARAMETERS
from tests.curvature.exact import mean, mse, tanh

pytestmark = pytest.mark.backend_agnostic

TENSORFLOW = keras.backend.backend() == "tensorflow"


def variable(values, dtype="float64"):
    return keras.Variable(np.asarray(values, dtype=dtype), dtype=dtype)


def value(var):
    return ops.convert_to_numpy(var)


def quartic_problem(dim=6, seed=0):
    """J(θ) = ½θᵀAθ + ¼Σθ⁴ − bᵀθ: ∇J = Aθ + θ³ − b, H = A + 3 diag(θ²) (closed forms)."""
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(dim, dim))
    a = m @ m.T / dim + 0.1 * np.eye(dim)
    b = rng.normal(size=dim)
    theta0 = rng.normal(size=dim)
    a_t, b_t = ops.convert_to_tensor(a), ops.convert_to_tensor(b)

    def make(var):
        # Aθ as Σⱼ Aᵢⱼθⱼ: ops.matmul of float64 is float32 on torch (module docstring).
        return lambda: 0.5 * ops.sum(var * ops.sum(a_t * var, axis=1)) + 0.25 * ops.sum(var**4) - ops.sum(b_t * var)

    grad = lambda t: a @ t + t**3 - b  # noqa: E731
    hess = lambda t: a + 3 * np.diag(t**2)  # noqa: E731
    return theta0, make, grad, hess


@pytest.mark.parametrize("solver", ["exact", "cg"])
@pytest.mark.parametrize("damping, lr", [(0.0, 1.0), (0.5, 1.0), (0.25, 0.5)])
def test_step_equals_numpy_reference(solver, damping, lr):
    theta0, make, grad, hess = quartic_problem()
    var = variable(theta0)
    opt = ko.Newton(learning_rate=lr, damping=damping, solver=solver, max_cg_iterations=60, cg_tolerance=1e-12)
    theta = theta0.copy()
    for _ in range(3):
        opt.minimize(make(var), [var])
        theta = theta - np.float32(lr) * np.linalg.solve(hess(theta) + damping * np.eye(6), grad(theta))
        # exact: float64 solve, ~1e-13; CG: residual ≤ 1e-12‖g‖ on κ(H) ≲ 1e3 → ≲ 1e-9.
        np.testing.assert_allclose(value(var), theta, rtol=1e-8, atol=1e-10)
    assert int(opt.iterations) == 3


def linear_regression(n=128, d=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = x @ rng.normal(size=(d, 1)) + 0.3 * rng.normal(size=(n, 1)) + 0.7
    # Keras' data adapters hand float64 NumPy arrays to the model as float32: make the
    # data float32-exact so that the least-squares solution below is of the same data.
    x, y = x.astype("float32").astype("float64"), y.astype("float32").astype("float64")
    xb = np.hstack([x, np.ones((n, 1))])
    solution = np.linalg.lstsq(xb, y, rcond=None)[0].ravel()
    return x, y, solution


class MSE64(keras.losses.Loss):
    """Mean squared error in float64 on every backend (Keras' own computes in floatx,
    and its ops.mean is float32 on JAX: see the module docstring)."""

    def __init__(self):
        super().__init__(name="mse64", dtype="float64")

    def call(self, y_true, y_pred):
        return mse(y_true, y_pred)


def dense64(units, activation=None):
    """Dense in float64 as an EinsumDense (ops.einsum stays float64 where Dense's
    ops.matmul does not: torch)."""
    return keras.layers.EinsumDense("ab,bc->ac", output_shape=units, bias_axes="c", activation=activation,
                                    dtype="float64")


def float64_regressor(d):
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((d,), dtype="float64"), dense64(1)])
    return inner, ko.SecondOrder(inner)


def weights_of(inner):
    return np.concatenate([value(inner.layers[0].kernel).ravel(), value(inner.layers[0].bias)])


def test_exact_newton_solves_least_squares_in_one_step():
    x, y, solution = linear_regression()
    inner, model = float64_regressor(5)
    model.compile(optimizer=ko.Newton(damping=0.0, solver="exact"), loss=MSE64())
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)  # one full-batch step
    np.testing.assert_allclose(weights_of(inner), solution, rtol=1e-10, atol=1e-12)


def test_cg_newton_reaches_least_squares_in_a_few_steps():
    x, y, solution = linear_regression()
    inner, model = float64_regressor(5)
    model.compile(optimizer=ko.Newton(damping=0.0, solver="cg", cg_tolerance=1e-10), loss=MSE64())
    model.fit(x, y, batch_size=128, epochs=3, verbose=0)
    # CG on 6 unknowns is exact in ≤ 6 iterations up to roundoff.
    np.testing.assert_allclose(weights_of(inner), solution, rtol=1e-8, atol=1e-10)
    assert 1 <= int(model.optimizer.cg_iterations) <= 6


def saddle():
    var = variable([0.5, 0.5])
    return var, lambda: var[0] ** 2 - var[1] ** 2


def test_plain_newton_jumps_to_the_saddle_and_saddle_free_leaves_it():
    var, f = saddle()
    ko.Newton(damping=0.0, solver="exact").minimize(f, [var])
    np.testing.assert_allclose(value(var), [0.0, 0.0], atol=1e-15)  # the saddle point

    var, f = saddle()
    losses = ko.Newton(damping=0.0, solver="exact", saddle_free=True).minimize(f, [var], steps=3).losses
    # |H| = 2I: x goes to 0, y moves away by 0.5 per step (−(1/2)·(−2y)... doubles y's distance).
    assert abs(value(var)[0]) < 1e-15 and value(var)[1] > 0.5
    assert float(f()) < losses[0]


def test_damping_interpolates_towards_gradient_descent():
    """(H + αI)⁻¹g → g/α as α grows: the direction turns into steepest descent."""
    theta0, make, grad, _ = quartic_problem()
    var = variable(theta0)
    ko.Newton(damping=1e6, solver="exact").minimize(make(var), [var])
    np.testing.assert_allclose(theta0 - value(var), grad(theta0) / 1e6, rtol=1e-3)


def test_adaptive_damping_follows_the_reduction_ratio():
    # On a quadratic the model is exact: ρ = 1 > 3/4 → α ← 2/3 α.
    var = variable([2.0, -1.0])
    opt = ko.Newton(damping=0.5, adaptive_damping=True, solver="exact")
    opt.minimize(lambda: ops.sum(var**2), [var])
    assert float(opt.damping_value) == pytest.approx(0.5 * 2 / 3, rel=1e-6)
    # J = √(1 + θ²) from θ = 2 with tiny α: the step overshoots to θ ≈ −8, ρ < 0 → α ← 3/2 α,
    # and the step, which raised the loss, is undone.
    var = variable([2.0])
    opt = ko.Newton(damping=1e-3, adaptive_damping=True, solver="exact")
    opt.minimize(lambda: ops.sum(ops.sqrt(1.0 + var**2)), [var])
    assert float(opt.damping_value) == pytest.approx(1.5e-3, rel=1e-5)
    assert value(var)[0] == 2.0
    # Repeated, α grows until the step is trusted, and the loss goes down.
    result = opt.minimize(lambda: ops.sum(ops.sqrt(1.0 + var**2)), [var], steps=30)
    assert result.loss < result.losses[0] and abs(value(var)[0]) < 2.0


def test_cg_falls_back_to_steepest_descent_on_negative_curvature():
    """J = −½θ² at θ = 1: pᵀ(H + αI)p < 0 on CG's first direction → d = g, θ ← θ − g = 2."""
    var = variable([1.0])
    opt = ko.Newton(damping=1e-4, solver="cg")
    opt.minimize(lambda: -0.5 * ops.sum(var**2), [var])
    np.testing.assert_allclose(value(var), [2.0], rtol=1e-12)
    assert int(opt.cg_iterations) == 1


def test_exact_solver_refuses_large_models():
    inner = keras.Sequential([keras.Input((64,)), keras.layers.Dense(MAX_EXACT_PARAMETERS // 64 + 1)])
    model = ko.SecondOrder(inner)
    model.compile(optimizer=ko.Newton(solver="exact"), loss="mse")
    x = np.zeros((4, 64), "float32")
    with pytest.raises(ValueError, match="solver='cg'"):
        model.fit(x, np.zeros((4, inner.output_shape[-1]), "float32"), verbose=0)


def test_plain_model_with_newton_says_to_wrap_it():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=ko.Newton(), loss="mse")
    with pytest.raises(TypeError, match="SecondOrder"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 1)), verbose=0)


def test_skip_nonfinite_skips_a_nan_step():
    var = variable([1.0, 2.0])
    opt = ko.Newton(skip_nonfinite=True, solver="exact")
    opt.minimize(lambda: ops.sum(ops.sqrt(var - 3.0)), [var])  # sqrt of negatives: NaN
    np.testing.assert_array_equal(value(var), [1.0, 2.0])
    assert int(opt.skipped_steps) == 1 and int(opt.iterations) == 0


def test_config_round_trip_and_serialization():
    opt = ko.Newton(learning_rate=0.5, damping=1e-3, solver="cg", max_cg_iterations=7, cg_tolerance=1e-4,
                    adaptive_damping=True, curvature="gauss_newton")
    assert ko.Newton.from_config(opt.get_config()).get_config() == opt.get_config()
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(clone, ko.Newton) and clone.get_config() == opt.get_config()


def test_minimize_validates_steps():
    var = variable([1.0], "float32")
    with pytest.raises(ValueError, match="steps"):
        ko.Newton().minimize(lambda: ops.sum(var**2), [var], steps=0)


def mlp_jacobian(x, w1, b1, w2):
    """∂z/∂θ of z = tanh(x W₁ + b₁) W₂ + b₂ by hand: (n·k) × |θ|, θ = (W₁, b₁, W₂, b₂)."""
    n, k = x.shape[0], w2.shape[1]
    h = np.tanh(x @ w1 + b1)
    dh = 1.0 - h**2  # (n, j)
    eye = np.eye(k)
    d_w1 = np.einsum("jk,nj,ni->nkij", w2, dh, x).reshape(n * k, -1)
    d_b1 = np.einsum("jk,nj->nkj", w2, dh).reshape(n * k, -1)
    d_w2 = np.einsum("nj,kl->nkjl", h, eye).reshape(n * k, -1)
    d_b2 = np.tile(eye, (n, 1))
    return np.concatenate([d_w1, d_b1, d_w2, d_b2], axis=1)


def softmax_ce_hessian(z, n):
    """∂²/∂z² of the mean over n samples of −log softmax(z)[y]: diag(p) − ppᵀ per sample, / n."""
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    blocks = [(np.diag(q) - np.outer(q, q)) / n for q in p]
    out = np.zeros((z.size, z.size))
    k = z.shape[1]
    for i, block in enumerate(blocks):
        out[i * k : (i + 1) * k, i * k : (i + 1) * k] = block
    return out


def test_gauss_newton_product_equals_jt_hl_j():
    """G v against Jᵀ H_L J with J and H_L written out by hand in NumPy (float64, tiny
    MLP, softmax CE): independent of every backend's autodiff."""
    from keras_optlab.curvature.hvp import gauss_newton_product

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4,), dtype="float64"), dense64(3, activation=tanh), dense64(3)])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4))
    y = rng.integers(0, 3, size=5)
    # Keras' SparseCategoricalCrossentropy reduces with ops.mean: float32 on torch.
    ce = lambda y_true, z: mean(ops.sparse_categorical_crossentropy(y_true, z, from_logits=True))  # noqa: E731
    variables = model.trainable_variables
    vectors = [rng.normal(size=v.shape) for v in variables]

    got = gauss_newton_product(lambda: model(x), lambda z: ce(y, z), variables, vectors)

    w1, b1, w2, b2 = (value(v) for v in variables)
    j = mlp_jacobian(x, w1, b1, w2)
    h_l = softmax_ce_hessian(np.tanh(x @ w1 + b1) @ w2 + b2, n=5)
    v = np.concatenate([np.ravel(a) for a in vectors])
    want = j.T @ h_l @ j @ v
    np.testing.assert_allclose(np.concatenate([np.ravel(value(g)) for g in got]), want, rtol=1e-10, atol=1e-14)
    assert v @ want >= 0  # positive semi-definite: CE is convex in the logits


def test_gauss_newton_cg_solves_least_squares():
    """For a linear model under squared error G = H: one Gauss-Newton step is exact."""
    x, y, solution = linear_regression()
    inner, model = float64_regressor(5)
    model.compile(optimizer=ko.Newton(damping=0.0, curvature="gauss_newton", cg_tolerance=1e-10), loss=MSE64())
    model.fit(x, y, batch_size=128, epochs=2, verbose=0)
    assert model.optimizer.resolved_solver == "cg"
    np.testing.assert_allclose(weights_of(inner), solution, rtol=1e-8, atol=1e-10)


def test_gauss_newton_needs_the_outputs():
    var = variable([1.0], "float32")
    with pytest.raises(ValueError, match="SecondOrder"):
        ko.Newton(curvature="gauss_newton").minimize(lambda: ops.sum(var**2), [var])


@pytest.mark.parametrize("solver", ["exact", "cg"])
def test_a_vector_loss_is_refused_before_any_step(solver):
    var = variable([1.0, 2.0, 3.0])
    opt = ko.Newton(solver=solver)
    with pytest.raises(ValueError, match=r"loss_fn.*scalar.*shape \(3,\)"):
        opt.minimize(lambda: (var - 5.0) ** 2, [var])
    np.testing.assert_array_equal(value(var), [1.0, 2.0, 3.0])
    assert int(opt.iterations) == 0


def test_newton_step_checks_its_variables():
    a = variable([1.0, 2.0])
    opt = ko.Newton(solver="exact")
    opt.minimize(lambda: ops.sum((a - 3.0) ** 2), [a])
    b = variable([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"built for \(shapes \[\(2,\)\]\).*\[\(3,\)\]"):
        opt.minimize(lambda: ops.sum(b**2), [b])
    np.testing.assert_array_equal(value(b), [1.0, 2.0, 3.0])
    accepted = "keras.Variable or tf.Variable" if TENSORFLOW else "keras.Variable objects"
    with pytest.raises(TypeError, match=accepted):
        ko.Newton().minimize(lambda: ops.convert_to_tensor(0.0), [ops.convert_to_tensor([1.0])])
    # An integer variable cannot be trainable on torch (no requires_grad): non-trainable.
    integer = keras.Variable(np.array([1], "int32"), dtype="int32", trainable=False)
    with pytest.raises(ValueError, match="floating-point.*int32"):
        ko.Newton().minimize(lambda: ops.convert_to_tensor(0.0), [integer])


@pytest.mark.skipif(not TENSORFLOW, reason="a tf.Variable is a variable on TensorFlow only")
def test_a_tf_variable_is_accepted_on_tensorflow():
    import tensorflow as tf

    var = tf.Variable([2.0, -1.0], dtype=tf.float64)
    ko.Newton(damping=0.0, solver="exact").minimize(lambda: tf.reduce_sum((var - 1.0) ** 2), [var])
    np.testing.assert_allclose(var.numpy(), [1.0, 1.0], rtol=1e-12)


def _trained_second_order(adaptive_damping):
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model = ko.SecondOrder(inner)
    model.compile(optimizer=ko.Newton(damping=0.5, adaptive_damping=adaptive_damping, solver="cg"), loss="mse")
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    model.fit(x, x[:, :1], verbose=0)
    return model


@pytest.mark.parametrize(
    "variable_name, new_value, adaptive, match",
    [
        ("damping_value", -0.5, False, r"damping_value.*>= 0.*-0.5"),
        ("damping_value", 0.0, True, r"damping_value.*> 0 \(adaptive_damping\).*0.0"),
        ("cg_iterations", -3, False, r"cg_iterations.*>= 0.*-3"),
    ],
)
def test_newton_own_state_is_checked_on_load(variable_name, new_value, adaptive, match):
    model = _trained_second_order(adaptive)
    opt = model.optimizer
    target = {"damping_value": opt.damping_value, "cg_iterations": opt.cg_iterations}[variable_name]
    index = next(i for i, v in enumerate(opt.variables) if v is target)
    store = {str(i): value(v) for i, v in enumerate(opt.variables)}
    store[str(index)] = np.asarray(new_value, dtype=store[str(index)].dtype)
    before = [value(v).copy() for v in opt.variables]
    with pytest.raises(ValueError, match=match):
        opt.load_own_variables(store)
    for v, old in zip(opt.variables, before):  # nothing assigned
        np.testing.assert_array_equal(value(v), old)
    store[str(index)] = np.asarray(before[index])
    opt.load_own_variables(store)  # the saved state itself loads


def test_newton_constructs_on_this_backend():
    opt = ko.Newton(damping=0.1)
    assert opt.damping == 0.1 and keras.backend.backend() in ("tensorflow", "jax", "torch")


def test_backend_without_autodiff_is_refused_at_construction(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    with pytest.raises(RuntimeError, match="Newton runs on the TensorFlow, JAX and PyTorch.*'numpy'"):
        ko.Newton()
    with pytest.raises(ValueError, match="damping=-1.0"):  # a bad value is still a ValueError
        ko.Newton(damping=-1.0)


def test_unnamed_newtons_are_auto_named():
    """Two unnamed Newton() were both "newton" (the constructor's default); Keras gives
    newton, newton_1 — on Keras' own counter, like our first-order optimizers."""
    first, second = ko.Newton(), ko.Newton()
    assert first.name.startswith("newton") and second.name != first.name, (first.name, second.name)
    assert ko.Newton(name="mine").name == "mine"
    assert keras.optimizers.deserialize(keras.optimizers.serialize(first)).name == first.name
