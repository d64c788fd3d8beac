"""Nonlinear CG (Alg. 8.9), L-BFGS (Sec. 8.6.3) and their line searches, against
independent references in float64: linear CG's n-step termination, scipy's L-BFGS-B
minimizer, and the Wolfe/Armijo conditions checked in NumPy at every accepted step.
TensorFlow, JAX and PyTorch (this file runs in each backend's pass).

Float64 throughout; losses are written with ``*`` and ``ops.sum`` (Keras 3.15's torch
``matmul`` computes float64 in float32, see tests/optimizers/test_newton.py).
"""

import keras
import numpy as np
import pytest
import scipy.optimize
from keras import ops

import keras_optlab as ko
from keras_optlab.optimizers import arrays, line_search
from tests.helpers import digits_subset, rosenbrock_loss
from tests.helpers import spd_quadratic as quadratic

pytestmark = pytest.mark.backend_agnostic


def variable(values):
    return keras.Variable(np.asarray(values, dtype="float64"), dtype="float64")


def value(var):
    return np.asarray(ops.convert_to_numpy(var), dtype="float64")


def rosenbrock_start(n=10):
    x0 = np.full(n, -1.2)
    x0[1::2] = 1.0
    return x0


def logistic_problem(n=120, l2=1e-2):
    """Multinomial logistic regression on digits with an L2 penalty (strictly convex):
    the loss for Keras and the same loss and gradient in NumPy for scipy."""
    x, y = digits_subset(n)
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y)
    onehot = np.eye(10)[y]
    x_t, onehot_t = ops.convert_to_tensor(x), ops.convert_to_tensor(onehot)
    shape = (64, 10)

    def keras_loss(var):
        def loss():
            w = ops.reshape(var, shape)
            logits = ops.einsum("ij,jk->ik", x_t, w)
            logits = logits - ops.max(logits, axis=1, keepdims=True)
            log_z = ops.log(ops.sum(ops.exp(logits), axis=1))
            return ops.sum(log_z - ops.sum(onehot_t * logits, axis=1)) / n + 0.5 * l2 * ops.sum(var * var)

        return loss

    def numpy_loss_and_gradient(theta):
        w = theta.reshape(shape)
        logits = x @ w
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.sum(np.log(p[np.arange(n), y])) / n + 0.5 * l2 * theta @ theta
        grad = (x.T @ (p - onehot) / n).ravel() + l2 * theta
        return loss, grad

    return keras_loss, numpy_loss_and_gradient, np.zeros(64 * 10)


def numpy_rosenbrock(theta):
    return scipy.optimize.rosen(theta), scipy.optimize.rosen_der(theta)


# ------------------------------------------------------------------ nonlinear CG


@pytest.mark.parametrize("beta", ["polak_ribiere", "fletcher_reeves"])
def test_cg_with_exact_line_search_ends_in_n_steps_on_a_quadratic(beta):
    """On a strictly convex quadratic, CG with exact line searches is linear CG, which
    reaches the minimizer in at most n steps (N&W Thm. 5.1); tiny c1 < c2 make the
    strong-Wolfe search exact (its cubic interpolation is exact on a quadratic)."""
    n = 8
    a, b, make = quadratic(n)
    var = variable(np.zeros(n))
    opt = ko.NonlinearCG(beta=beta, c1=1e-12, c2=1e-10, max_evaluations=30, restart_threshold=None)
    opt.minimize(make(var), [var], steps=n)
    # rtol 1e-8 is the issue's bar: κ = 100 costs ~2 digits of float64's 16.
    np.testing.assert_allclose(value(var), np.linalg.solve(a, b), rtol=1e-8)
    assert int(opt.restarts) == 0


def test_cg_beta_formulas():
    g, g_prev = np.array([1.0, 2.0, -1.0]), np.array([0.5, -1.0, 2.0])
    t, t_prev = ops.convert_to_tensor(g), ops.convert_to_tensor(g_prev)
    from keras_optlab.optimizers.nonlinear_cg import conjugate_beta

    xp = arrays.TRACED
    fr = float(conjugate_beta(xp, t, t_prev, "fletcher_reeves"))
    pr = float(conjugate_beta(xp, t, t_prev, "polak_ribiere"))
    assert fr == pytest.approx(g @ g / (g_prev @ g_prev), rel=1e-15)
    assert pr == pytest.approx(max(0.0, (g - g_prev) @ g / (g_prev @ g_prev)), rel=1e-15)
    assert float(conjugate_beta(xp, t, t * 0.0, "fletcher_reeves")) == 0.0  # no previous gradient


def test_cg_restarts_every_k_steps():
    _, _, make = quadratic(8)
    var = variable(np.zeros(8))
    opt = ko.NonlinearCG(restart=3, restart_threshold=None)
    opt.minimize(make(var), [var], steps=7)
    assert int(opt.restarts) == 2  # at steps 4 and 7 (the first step is no restart)


# ------------------------------------------------------------------ L-BFGS against scipy


@pytest.mark.parametrize("problem", ["rosenbrock", "logistic"])
def test_lbfgs_reaches_scipys_minimizer(problem):
    if problem == "rosenbrock":
        make, reference, x0 = rosenbrock_loss, numpy_rosenbrock, rosenbrock_start()
    else:
        make, reference, x0 = logistic_problem()
    expected = scipy.optimize.minimize(
        reference, x0, jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 0.0, "maxiter": 2000}
    )
    var = variable(x0)
    opt = ko.LBFGS()
    opt.minimize(make(var), [var], steps=300, gradient_tolerance=1e-9)
    # Both stop at ‖g‖∞ ≤ 1e-9 on problems whose Hessian at the minimizer has smallest
    # eigenvalue ≥ 1e-2 (the L2 term; Rosenbrock's ≈ 0.4): |θ − θ*| ≤ 1e-7 each.
    np.testing.assert_allclose(value(var), expected.x, atol=1e-6)
    assert int(opt.line_search_failures) == 0
    # Evaluations: scipy's and ours within 1.5× (the benchmark reports the ratio).
    assert int(opt.function_evaluations) <= 1.5 * expected.nfev


@pytest.mark.parametrize(
    "make_optimizer, c1, c2",
    [
        (lambda: ko.LBFGS(), 1e-4, 0.9),
        (lambda: ko.LBFGS(history=3, c2=0.5), 1e-4, 0.5),
        (lambda: ko.NonlinearCG(), 1e-4, 0.4),
        (lambda: ko.NonlinearCG(c2=0.1, restart_threshold=0.1), 1e-4, 0.1),
        (lambda: ko.NonlinearCG(beta="fletcher_reeves", c1=1e-3, c2=0.3), 1e-3, 0.3),
    ],
)
def test_every_accepted_step_satisfies_the_strong_wolfe_conditions(make_optimizer, c1, c2):
    """Checked in NumPy on Rosenbrock with s = θ₊ − θ = αd (the conditions times α):
    J(θ₊) ≤ J(θ) + c1·gᵀs and |g₊ᵀs| ≤ c2·|gᵀs|."""
    var = variable(rosenbrock_start())
    opt = make_optimizer()
    points = [value(var)]
    opt.minimize(rosenbrock_loss(var), [var], steps=25, callback=lambda step, loss: points.append(value(var)))
    assert len(points) == 26
    for before, after in zip(points, points[1:]):
        s = after - before
        (f, g), (f_new, g_new) = numpy_rosenbrock(before), numpy_rosenbrock(after)
        assert np.any(s != 0.0)
        assert f_new <= f + c1 * g @ s + 1e-12 * abs(f)  # rounding of J in float64
        assert abs(g_new @ s) <= c2 * abs(g @ s) * (1 + 1e-9)
    assert int(opt.line_search_failures) == 0


def test_armijo_steps_satisfy_sufficient_decrease():
    var = variable(rosenbrock_start())
    opt = ko.LBFGS(line_search="armijo")
    points = [value(var)]
    opt.minimize(rosenbrock_loss(var), [var], steps=25, callback=lambda step, loss: points.append(value(var)))
    for before, after in zip(points, points[1:]):
        (f, g), (f_new, _) = numpy_rosenbrock(before), numpy_rosenbrock(after)
        assert f_new <= f + 1e-4 * g @ (after - before) + 1e-12 * abs(f)
    assert int(opt.line_search_failures) == 0


def namespaces():
    """The traced namespace, and the host one where torch is installed (it runs on
    torch tensors whatever the Keras backend)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return [arrays.TRACED]
    return [arrays.TRACED, arrays.HOST_TORCH]


def as_namespace(xp, array, kind="vector"):
    """A float64 vector or matrix as ``xp`` takes it (a tensor; a torch tensor on the
    host path, whose scalar vectors are NumPy arrays)."""
    if not xp.host:
        return ops.convert_to_tensor(np.asarray(array, dtype="float64"))
    import torch

    return np.array(array, dtype="float64") if kind == "scalars" else torch.tensor(np.array(array, dtype="float64"))


@pytest.mark.parametrize("xp", namespaces(), ids=lambda xp: "host" if xp.host else "traced")
@pytest.mark.parametrize("count, head", [(3, 3), (4, 1), (2, 0)])
def test_lbfgs_two_loop_equals_the_dense_bfgs_recursion(xp, count, head):
    """H g from the two-loop recursion over the circular buffer equals the explicit
    product of the BFGS updates Hₖ₊₁ = (I − ρsyᵀ) Hₖ (I − ρysᵀ) + ρssᵀ from H₀ = γI
    (N&W Eq. 7.19): a partly filled buffer, a full one wrapped around, and one whose
    newest pair is in the last row."""
    from keras_optlab.optimizers.lbfgs import two_loop

    rng = np.random.default_rng(0)
    n, m = 6, 4
    a = np.diag(np.geomspace(1, 10, n))
    pairs_s = rng.normal(size=(count, n))  # oldest first
    pairs_y = pairs_s @ a  # sᵀy > 0
    g = rng.normal(size=n)
    s, y, rho = rng.normal(size=(m, n)), rng.normal(size=(m, n)), rng.normal(size=m)  # unused rows: junk
    for age in range(count):  # the newest pair sits at row head − 1 (mod m)
        row = (head - count + age) % m
        s[row], y[row], rho[row] = pairs_s[age], pairs_y[age], 1.0 / (pairs_s[age] @ pairs_y[age])
    gamma = pairs_s[-1] @ pairs_y[-1] / (pairs_y[-1] @ pairs_y[-1])
    h = gamma * np.eye(n)
    for j in range(count):
        r = 1.0 / (pairs_s[j] @ pairs_y[j])
        left = np.eye(n) - r * np.outer(pairs_s[j], pairs_y[j])
        h = left @ h @ left.T + r * np.outer(pairs_s[j], pairs_s[j])
    integer = (lambda v: v) if xp.host else (lambda v: ops.convert_to_tensor(v, "int32"))
    got = two_loop(xp, as_namespace(xp, g), as_namespace(xp, s), as_namespace(xp, y),
                   as_namespace(xp, rho, "scalars"), integer(head), integer(count), xp.scalar(gamma, as_namespace(xp, g)))
    np.testing.assert_allclose(np.asarray(ops.convert_to_numpy(got) if not xp.host else got.numpy()), h @ g,
                               rtol=1e-12)


# ------------------------------------------------------------------ line search alone


def _phi_evaluator(f, df):
    """``evaluate`` of a 1-D φ given as keras.ops functions of α (traced by the search's
    while_loop on JAX and TensorFlow)."""

    def evaluate(alpha):
        return f(alpha), df(alpha), ops.reshape(df(alpha), (1,))

    return evaluate


def _f64(x):
    return ops.convert_to_tensor(x, "float64")


def test_strong_wolfe_treats_non_finite_points_as_too_far():
    xp = arrays.TRACED
    """φ(α) = (α − 1)² − 1, NaN beyond α = 1.5: from a first trial of 4 the search comes
    back inside and ends at a Wolfe point."""
    nan = float("nan")
    f = lambda a: ops.where(a <= 1.5, (a - 1.0) ** 2 - 1.0, nan * a)  # noqa: E731
    df = lambda a: ops.where(a <= 1.5, 2.0 * (a - 1.0), nan * a)  # noqa: E731
    alpha, f_out, _, used, ok = line_search.strong_wolfe(
        xp, _phi_evaluator(f, df), _f64(0.0), _f64(-2.0), _f64([-2.0]), _f64(4.0), c1=1e-4, c2=0.1, max_evaluations=10
    )
    a = float(alpha)
    assert bool(ok) and 0.0 < a <= 1.5 and abs(2.0 * (a - 1.0)) <= 0.1 * 2.0
    assert float(f_out) == pytest.approx((a - 1.0) ** 2 - 1.0, rel=1e-15) and int(used) <= 10


def test_a_search_without_decrease_returns_no_step():
    """φ increasing everywhere (a wrong-signed d): α = 0, the point unchanged."""
    f, df = (lambda a: a), (lambda a: ops.ones_like(a))
    for search in (line_search.strong_wolfe, line_search.armijo):
        alpha, f_out, _, used, ok = search(
            arrays.TRACED, _phi_evaluator(f, df), _f64(0.0), _f64(-1.0), _f64([-1.0]), _f64(1.0), max_evaluations=5
        )
        assert float(alpha) == 0.0 and float(f_out) == 0.0 and not bool(ok) and int(used) == 5


# ------------------------------------------------------------------ skipping, training, saving


@pytest.mark.parametrize("make_optimizer", [ko.LBFGS, ko.NonlinearCG])
def test_skip_nonfinite_leaves_weights_and_memory_unchanged(make_optimizer):
    var = variable(rosenbrock_start(4))
    loss = rosenbrock_loss(var)
    poison = keras.Variable(0.0, dtype="float64")
    opt = make_optimizer(skip_nonfinite=True)
    opt.minimize(lambda: loss() + poison, [var], steps=3)
    state = [value(v) for v in opt.variables]
    weights = value(var)
    poison.assign(float("nan"))
    opt.closure_step(lambda: loss() + poison, [var])
    assert int(opt.skipped_steps) == 1
    np.testing.assert_array_equal(value(var), weights)
    for v, before in zip(opt.variables, state):
        if v.path.endswith(("skipped_steps", "function_evaluations", "line_search_evaluations",
                            "line_search_failures", "gradient_norm", "last_valid")):
            continue
        np.testing.assert_array_equal(value(v), before, err_msg=v.path)


@pytest.mark.parametrize("make_optimizer", [ko.LBFGS, ko.NonlinearCG])
def test_fit_full_batch_and_keras_file_resume_bit_for_bit(make_optimizer, tmp_path):
    x, y = digits_subset(64)
    keras.utils.set_random_seed(0)
    model = ko.SecondOrder(keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)]))
    model.compile(optimizer=make_optimizer(history=3) if make_optimizer is ko.LBFGS else make_optimizer(),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=64, epochs=4, shuffle=False, verbose=0).history["loss"]
    assert all(b < a for a, b in zip(history, history[1:])), history  # full batch: every step descends
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.optimizer, make_optimizer) and loaded.optimizer.get_config() == model.optimizer.get_config()
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)  # memory included
    # shuffle=False: Keras shuffles within the one batch otherwise, and the loss's
    # summation order (last bits) would follow the shuffle RNG, not the optimizer.
    model.fit(x, y, batch_size=64, epochs=2, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=64, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_loading_more_pairs_than_history_is_refused(tmp_path):
    var = variable(rosenbrock_start(4))
    opt = ko.LBFGS(history=2)
    opt.minimize(rosenbrock_loss(var), [var], steps=3)
    store = {str(i): np.asarray(v) for i, v in enumerate(opt.variables)}
    store[str([v.path for v in opt.variables].index(opt.pairs.path))] = np.asarray(3, dtype="int32")
    with pytest.raises(ValueError, match="pairs"):
        opt.load_own_variables(store)


@pytest.mark.parametrize("make_optimizer", [ko.LBFGS, ko.NonlinearCG])
def test_config_round_trip_and_apply_refused(make_optimizer):
    opt = make_optimizer(learning_rate=0.5, line_search="armijo", max_evaluations=7)
    clone = type(opt).from_config(opt.get_config())
    assert clone.get_config() == opt.get_config()
    with pytest.raises(TypeError, match="SecondOrder"):
        opt.apply([np.ones(3)], [keras.Variable(np.ones(3))])
