"""keras_optlab.lab.burgers: the exact solution against an independent finite-difference
solver, the training data, the network, and the PINN loss against a NumPy transcription
on every backend (float64).

Run also with ``KERAS_BACKEND=jax JAX_ENABLE_X64=1`` and ``KERAS_BACKEND=torch``.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_optlab.lab import burgers
from keras_optlab.lab.burgers import LOWER, NU, UPPER, exact_solution

pytestmark = pytest.mark.backend_agnostic

BACKEND = keras.backend.backend()


# --------------------------------------------------------------------------- an independent solver


def finite_differences(cells, times, nu=NU):
    """Viscous Burgers on [−1, 1], u = 0 at x = ±1, u(0, x) = −sin(πx), on ``cells``
    uniform cells (``cells + 1`` nodes, both ends included): conservative central
    differences, second order in space,

        du_j/dt = −(u²_{j+1} − u²_{j−1}) / (4Δx) + ν (u_{j+1} − 2u_j + u_{j−1}) / Δx²,

    and classical RK4 in time at half its stability limit (diffusion: Δt ≤ 2.78Δx²/(4ν);
    advection: Δt ≤ 2.8Δx/max|u|, max|u| ≤ 1), so the time error (O(Δt⁴) ≈ 1e-16) is
    far below the space error O(Δx²). The cell Reynolds number max|u|Δx/ν stays below
    2 for ``cells`` ≥ 320, where central differences do not oscillate. Returns the
    nodes and u at ``times`` (increasing), shape (len(times), cells + 1)."""
    x = np.linspace(-1.0, 1.0, cells + 1)
    dx = 2.0 / cells
    u = -np.sin(np.pi * x)
    u[0] = u[-1] = 0.0

    def rhs(u):
        r = np.zeros_like(u)
        r[1:-1] = -(u[2:] ** 2 - u[:-2] ** 2) / (4.0 * dx) + nu * (u[2:] - 2.0 * u[1:-1] + u[:-2]) / dx**2
        return r

    dt_max = 0.5 * min(2.78 * dx**2 / (4.0 * nu), 2.8 * dx)
    now, out = 0.0, []
    for target in times:
        steps = int(np.ceil((target - now) / dt_max))
        dt = (target - now) / steps
        for _ in range(steps):
            k1 = rhs(u)
            k2 = rhs(u + 0.5 * dt * k1)
            k3 = rhs(u + 0.5 * dt * k2)
            k4 = rhs(u + dt * k3)
            u = u + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        now = target
        out.append(u.copy())
    return x, np.array(out)


def test_exact_solution_agrees_with_finite_differences_at_their_order():
    # On 510, 1020, 2040 cells (multiples of the grid's 255 intervals, so the paper's
    # 256 x's are nodes of all three). Richardson extrapolation R = (4u_{h/2} − u_h)/3
    # of a second-order scheme is fourth order: R on (1020, 2040) is 16× closer to the
    # truth than R on (510, 1020), and their difference estimates the error of the
    # finer R as |R_c − R_f|/15. Cole–Hopf agreeing with R_f within twice that
    # estimate, at every time, says its own error is below the FD's. Measured: the
    # difference shrinks 16×, to at most 7.6e-6 (at t = 0.5, the shock's steepest).
    times = np.array([0.1, 0.25, 0.5, 0.99])
    solutions = {}
    for cells in (510, 1020, 2040):
        x, u = finite_differences(cells, times)
        solutions[cells] = u[:, :: cells // 255]
    grid_x = x[:: 2040 // 255]
    np.testing.assert_allclose(grid_x, np.linspace(-1, 1, 256), atol=1e-15)
    coarse = (4.0 * solutions[1020] - solutions[510]) / 3.0
    fine = (4.0 * solutions[2040] - solutions[1020]) / 3.0
    exact = exact_solution(times[:, None], grid_x[None, :])
    error_fine = np.abs(exact - fine).max(axis=1)
    error_coarse = np.abs(exact - coarse).max(axis=1)
    estimate = np.abs(coarse - fine).max(axis=1) / 15.0
    assert np.all(error_fine <= 2.0 * estimate + 1e-12), (error_fine, estimate)
    assert np.all(error_fine * 8.0 <= error_coarse), (error_fine, error_coarse)
    assert error_fine.max() < 2e-5


def test_quadrature_converges_to_rounding():
    # The last 20 times of the grid (the shock formed, t/ν ≤ 311: the hardest part).
    grid = burgers.reference_grid()
    t, x = grid.t[-20:, None], grid.x[None, :]
    reference = exact_solution(t, x, quadrature_points=300)
    errors = [np.abs(exact_solution(t, x, quadrature_points=n) - reference).max() for n in (50, 75, 100)]
    assert errors[0] > errors[1] > errors[2]  # measured 0.1, 1e-3, 1.8e-7: super-exponential
    # Converged: 200 and 300 nodes agree to rounding (measured 2.3e-15).
    np.testing.assert_allclose(exact_solution(t, x), reference, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(grid.u[-20:], exact_solution(t, x))


def test_initial_and_boundary_conditions():
    x = np.linspace(-1, 1, 513)
    np.testing.assert_array_equal(exact_solution(0.0, x), -np.sin(np.pi * x))
    t = np.linspace(0, 1, 51)
    np.testing.assert_allclose(exact_solution(t, -1.0), 0.0, atol=1e-15)
    np.testing.assert_allclose(exact_solution(t, 1.0), 0.0, atol=1e-15)
    # Odd in x: u(t, −x) = −u(t, x), and u(t, 0) = 0.
    tt, xx = np.meshgrid(t, x[::4], indexing="ij")
    np.testing.assert_allclose(exact_solution(tt, -xx), -exact_solution(tt, xx), rtol=0, atol=1e-14)


def test_exact_solution_satisfies_the_equation():
    # f = u_t + u u_x − ν u_xx by central differences of step h at 200 random points
    # and at the shock. Its maximum falls 4× when h halves (measured 0.0080 → 0.0020 →
    # 0.0005 for h = 2e-4, 1e-4, 5e-5): the residual is the differences' O(h²)
    # truncation, not an error of u. At h = 1e-4 it is 3e-5 of the largest term
    # (ν u_xx ≈ 65 inside the shock).
    rng = np.random.default_rng(0)
    t = np.concatenate([rng.uniform(0.05, 0.99, 200), np.full(4, 0.9)])
    x = np.concatenate([rng.uniform(-1, 1, 200), [0.0, 0.002, -0.004, 0.01]])

    def residual(h):
        u = exact_solution(t, x)
        right, left = exact_solution(t, x + h), exact_solution(t, x - h)
        u_t = (exact_solution(t + h, x) - exact_solution(t - h, x)) / (2 * h)
        u_x = (right - left) / (2 * h)
        u_xx = (right - 2 * u + left) / h**2
        terms = np.abs(u_t) + np.abs(u * u_x) + np.abs(NU * u_xx)
        return np.abs(u_t + u * u_x - NU * u_xx).max(), terms.max()

    coarse, scale = residual(2e-4)
    fine, _ = residual(1e-4)
    assert 3.5 < coarse / fine < 4.5
    assert fine < 1e-4 * scale


def test_reference_grid_is_the_papers():
    grid = burgers.reference_grid()
    assert grid.x.shape == (256,) and grid.t.shape == (100,) and grid.u.shape == (100, 256)
    np.testing.assert_array_equal(grid.x, np.linspace(-1, 1, 256))
    np.testing.assert_array_equal(grid.t, np.linspace(0, 0.99, 100))
    points = grid.points()
    assert points.shape == (25600, 2)
    i, j = 37, 201
    np.testing.assert_array_equal(points[i * 256 + j], [grid.x[j], grid.t[i]])
    assert grid.u.ravel()[i * 256 + j] == exact_solution(grid.t[i], grid.x[j])
    grid.u[0, 0] = 5.0  # a copy: the cache is untouched
    assert burgers.reference_grid().u[0, 0] != 5.0


# --------------------------------------------------------------------------- data


def test_training_data_shapes_ranges_and_values():
    data = burgers.training_data()
    assert data.x_u.shape == (100, 2) and data.u_u.shape == (100, 1) and data.x_f.shape == (10000, 2)
    assert all(a.dtype == np.float64 for a in data)
    lower, upper = np.array(LOWER), np.array(UPPER)
    assert np.all(data.x_f >= lower) and np.all(data.x_f <= upper)
    on_lines = (data.x_u[:, 1] == 0.0) | (np.abs(data.x_u[:, 0]) == 1.0)
    assert on_lines.all()
    assert len(np.unique(data.x_u, axis=0)) >= 99  # drawn without replacement (the corners come twice)
    np.testing.assert_allclose(data.u_u[:, 0], exact_solution(data.x_u[:, 1], data.x_u[:, 0]), rtol=0, atol=1e-15)
    float32 = burgers.training_data(n_u=5, n_f=7, seed=3, dtype="float32")
    assert all(a.dtype == np.float32 for a in float32) and float32.x_f.shape == (7, 2)
    paper_code = burgers.training_data(n_f=50, append_boundary=True)
    assert paper_code.x_f.shape == (50 + burgers.BOUNDARY_POINTS, 2)


def test_collocation_points_are_a_latin_hypercube():
    n = 1000
    unit = burgers.latin_hypercube(n, 2, seed=4)
    for column in unit.T:
        np.testing.assert_array_equal(np.sort(np.floor(column * n)), np.arange(n))  # one point per stratum
    # The paper's pairing is random: the two axes' strata are not in the same order.
    assert abs(np.corrcoef(unit.T)[0, 1]) < 0.1
    data = burgers.training_data(n_f=n, seed=4)
    np.testing.assert_array_equal(data.x_f, np.array(LOWER) + (np.array(UPPER) - np.array(LOWER)) * unit)
    again, other = burgers.training_data(seed=4, n_f=n), burgers.training_data(seed=5, n_f=n)
    np.testing.assert_array_equal(again.x_u, data.x_u)
    assert not np.array_equal(other.x_f, data.x_f)


# --------------------------------------------------------------------------- network and loss


def test_network_has_the_papers_size_and_initialization():
    model = burgers.pinn_model()
    assert model.count_params() == 3021
    kernels = [w for w in model.get_weights() if w.ndim == 2]
    biases = [w for w in model.get_weights() if w.ndim == 1]
    assert [k.shape for k in kernels] == [(2, 20)] + [(20, 20)] * 7 + [(20, 1)]
    assert all(np.all(b == 0) for b in biases)
    stacked = np.concatenate([k.ravel() / np.sqrt(2.0 / sum(k.shape)) for k in kernels[1:-1]])
    assert np.abs(stacked).max() <= 2.0  # truncated at two standard deviations
    # Standard deviation of N(0, 1) truncated at ±2 is 0.880; 2,800 draws give it to ±0.012.
    assert abs(stacked.std() - 0.880) < 0.04
    np.testing.assert_array_equal(burgers.pinn_model(seed=0).get_weights()[2], model.get_weights()[2])
    assert not np.array_equal(burgers.pinn_model(seed=1).get_weights()[2], model.get_weights()[2])
    assert burgers.pinn_model(hidden=3, depth=2, dtype="float32").count_params() == 2 * 3 + 3 + 3 * 3 + 3 + 3 + 1


def test_network_scales_its_inputs_and_round_trips():
    model = burgers.pinn_model(hidden=4, depth=2)
    scaling = model.get_layer("scaling")
    corners = np.array([[-1.0, 0.0], [1.0, 0.99], [0.0, 0.495]])
    np.testing.assert_allclose(ops.convert_to_numpy(scaling(corners)), [[-1, -1], [1, 1], [0, 0]], atol=1e-15)
    clone = keras.Sequential.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(ops.convert_to_numpy(clone(corners)), ops.convert_to_numpy(model(corners)))


def numpy_loss(weights, data, nu=NU):
    """MSE_u + MSE_f of the network with ``weights`` (Keras order), in NumPy, its input
    derivatives by forward-mode differentiation written out by hand (independent of
    any autodiff): for a = hW + b and h' = tanh(a),

        a_x = h_x W,  a_xx = h_xx W,  h'_x = (1 − h'²) a_x,
        h'_xx = (1 − h'²) a_xx − 2 h'(1 − h'²) a_x²   (likewise for t, first order)."""
    lower, upper = np.array(LOWER), np.array(UPPER)
    scale = 2.0 / (upper - lower)

    def forward(points):
        h = scale * (points - lower) - 1.0
        n = len(points)
        h_x = np.tile([scale[0], 0.0], (n, 1))
        h_t = np.tile([0.0, scale[1]], (n, 1))
        h_xx = np.zeros((n, 2))
        layers = list(zip(weights[::2], weights[1::2]))
        for i, (w, b) in enumerate(layers):
            a, a_x, a_t, a_xx = h @ w + b, h_x @ w, h_t @ w, h_xx @ w
            if i == len(layers) - 1:
                return a, a_x, a_t, a_xx
            h = np.tanh(a)
            slope = 1.0 - h * h
            h_x, h_t, h_xx = slope * a_x, slope * a_t, slope * a_xx - 2.0 * h * slope * a_x**2

    u_b = forward(data.x_u)[0]
    u, u_x, u_t, u_xx = forward(data.x_f)
    f = u_t + u * u_x - nu * u_xx
    return np.mean((u_b - data.u_u) ** 2) + np.mean(f**2)


def small_problem(seed=2):
    model = burgers.pinn_model(hidden=8, depth=3, seed=seed)
    return model, burgers.training_data(n_u=40, n_f=300, seed=seed)


def test_loss_equals_numpy_transcription_and_its_gradient_checks():
    from keras_optlab.curvature.autodiff import for_backend

    model, data = small_problem()
    loss_fn = burgers.pinn_loss(model, data)
    weights = [np.asarray(w, np.float64) for w in model.get_weights()]
    expected = numpy_loss(weights, data)
    # float64 and a few thousand roundings: agreement to ~1e-14 relative; 1e-12 allows it.
    np.testing.assert_allclose(float(ops.convert_to_numpy(loss_fn())), expected, rtol=1e-12)
    mse_u, mse_f = burgers.pinn_loss_terms(model, data)()
    assert float(ops.convert_to_numpy(mse_u)) > 0 and float(ops.convert_to_numpy(mse_f)) > 0
    # The gradient (third derivatives of the network) against central differences of the
    # NumPy loss along random directions: step 1e-5 leaves truncation ~1e-10 and
    # rounding ~1e-11 on directional derivatives of order 0.1–1.
    adapter = for_backend()
    loss, grads = adapter.loss_and_gradient(loss_fn, model.trainable_variables)
    grads = [np.asarray(ops.convert_to_numpy(g), np.float64) for g in grads]
    assert all(np.isfinite(g).all() for g in grads)
    rng = np.random.default_rng(0)
    for _ in range(2):
        direction = [rng.standard_normal(w.shape) for w in weights]
        h = 1e-5
        plus = numpy_loss([w + h * d for w, d in zip(weights, direction)], data)
        minus = numpy_loss([w - h * d for w, d in zip(weights, direction)], data)
        slope = sum(float(np.sum(g * d)) for g, d in zip(grads, direction))
        np.testing.assert_allclose(slope, (plus - minus) / (2 * h), rtol=1e-6)


def test_input_derivatives_of_a_known_function():
    # u = exp(x₀) x₁³: ∇u = (exp(x₀) x₁³, 3 exp(x₀) x₁²), ∂²u/∂x₀² = exp(x₀) x₁³, ∂²u/∂x₁² = 6 exp(x₀) x₁.
    points = np.random.default_rng(1).uniform(-1, 1, (6, 2))
    e, y = np.exp(points[:, 0]), points[:, 1]

    def fn(z):
        return ops.exp(z[:, 0:1]) * z[:, 1:2] ** 3

    u, du, d2 = burgers.input_derivatives(fn, points, second=(0, 1))
    np.testing.assert_allclose(ops.convert_to_numpy(u)[:, 0], e * y**3, rtol=1e-14)
    np.testing.assert_allclose(ops.convert_to_numpy(du), np.stack([e * y**3, 3 * e * y**2], 1), rtol=1e-13)
    np.testing.assert_allclose(ops.convert_to_numpy(d2), np.stack([e * y**3, 6 * e * y], 1), rtol=1e-13)
    _, _, none = burgers.input_derivatives(fn, points)
    assert tuple(none.shape) == (6, 0)


def test_loss_trains_under_minimize():
    # The closure inside the optimizers' traced steps (tf.function, jax.jit with
    # substituted weights, eager torch): two L-BFGS steps lower it, and the weights move.
    from keras_optlab.optimizers import LBFGS

    model = burgers.pinn_model(hidden=4, depth=2, seed=1)
    loss_fn = burgers.pinn_loss(model, burgers.training_data(n_u=20, n_f=64, seed=1))
    before = burgers.flat_weights(model)
    result = LBFGS().minimize(loss_fn, model.trainable_variables, steps=2)
    losses, after = result.losses, float(ops.convert_to_numpy(loss_fn()))
    assert np.isfinite(losses).all() and losses[1] < losses[0] and after < losses[1]
    assert after == pytest.approx(result.loss, rel=1e-12)
    assert not np.array_equal(burgers.flat_weights(model), before)


def test_flat_loss_and_grad_for_scipy():
    from keras_optlab.curvature.autodiff import for_backend

    model, data = small_problem()
    w0 = burgers.flat_weights(model)
    assert w0.shape == (model.count_params(),) and w0.dtype == np.float64
    fun = burgers.flat_loss_and_grad(model, data)
    loss, grad = fun(w0)
    loss_fn = burgers.pinn_loss(model, data)
    _, grads = for_backend().loss_and_gradient(loss_fn, model.trainable_variables)
    expected = np.concatenate([np.asarray(ops.convert_to_numpy(g), np.float64).ravel() for g in grads])
    assert isinstance(loss, float) and grad.dtype == np.float64
    np.testing.assert_allclose(loss, numpy_loss(model.get_weights(), data), rtol=1e-12)
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-15)
    moved, _ = fun(w0 - 1e-3 * grad)  # a small step down the gradient lowers J, and the model holds it
    assert moved < loss
    np.testing.assert_array_equal(burgers.flat_weights(model), w0 - 1e-3 * grad)
    scipy_optimize = pytest.importorskip("scipy.optimize")
    result = scipy_optimize.minimize(fun, w0, jac=True, method="L-BFGS-B", options={"maxiter": 3})
    assert result.fun < loss


@pytest.mark.skipif(BACKEND != "torch", reason="torch.optim needs the torch backend")
def test_torch_lbfgs_trains_the_keras_model():
    import torch

    model, data = small_problem()
    start = float(ops.convert_to_numpy(burgers.pinn_loss(model, data)()))
    optimizer = torch.optim.LBFGS(burgers.torch_parameters(model), max_iter=3, line_search_fn="strong_wolfe")
    first = optimizer.step(burgers.torch_closure(model, data, optimizer))
    np.testing.assert_allclose(float(ops.convert_to_numpy(first)), start, rtol=1e-12)
    assert float(ops.convert_to_numpy(burgers.pinn_loss(model, data)())) < start
    with pytest.raises(TypeError, match="optimizer"):
        burgers.torch_closure(model, data, "lbfgs")


@pytest.mark.skipif(BACKEND != "jax", reason="jax_loss needs the JAX backend")
def test_jax_loss_is_pure():
    import jax

    model, data = small_problem()
    fun, params = burgers.jax_loss(model, data)
    value, grads = jax.jit(jax.value_and_grad(fun))(params)
    np.testing.assert_allclose(float(value), numpy_loss(model.get_weights(), data), rtol=1e-12)
    fun_flat = burgers.flat_loss_and_grad(model, data)
    _, expected = fun_flat(burgers.flat_weights(model))
    np.testing.assert_allclose(np.concatenate([np.ravel(g) for g in grads]), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.skipif(BACKEND == "torch", reason="the torch-only adapters work on torch")
def test_backend_adapters_refuse_other_backends():
    model, data = small_problem()
    with pytest.raises(RuntimeError, match="torch backend"):
        burgers.torch_parameters(model)
    if BACKEND != "jax":
        with pytest.raises(RuntimeError, match="jax backend"):
            burgers.jax_loss(model, data)


def test_relative_l2_error():
    model = burgers.pinn_model(hidden=4, depth=2)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    assert burgers.relative_l2_error(model) == 1.0  # u_θ ≡ 0
    grid = burgers.reference_grid()
    error = burgers.relative_l2_error(burgers.pinn_model(), grid)
    assert np.isfinite(error) and error > 0.1  # untrained


# --------------------------------------------------------------------------- bad arguments


def test_bad_arguments_are_named():
    model, data = small_problem()
    cases = [
        (TypeError, "t=", lambda: exact_solution("0.5", 0.0)),
        (ValueError, "`t` must be >= 0", lambda: exact_solution(-0.1, 0.0)),
        (ValueError, "`x` must be finite", lambda: exact_solution(0.1, np.nan)),
        (ValueError, "broadcast", lambda: exact_solution(np.zeros(3), np.zeros(4))),
        (ValueError, "nu=0", lambda: exact_solution(0.1, 0.0, nu=0)),
        (ValueError, "quadrature_points=351", lambda: exact_solution(0.1, 0.0, quadrature_points=351)),
        (TypeError, "quadrature_points=2.0", lambda: burgers.reference_grid(2.0)),
        (ValueError, "n_u=457", lambda: burgers.training_data(n_u=457)),
        (TypeError, "n_f=True", lambda: burgers.training_data(n_f=True)),
        (ValueError, "seed=-1", lambda: burgers.training_data(seed=-1)),
        (ValueError, "dtype", lambda: burgers.training_data(dtype="float16")),
        (TypeError, "append_boundary=1", lambda: burgers.training_data(append_boundary=1)),
        (ValueError, "hidden=0", lambda: burgers.pinn_model(hidden=0)),
        (TypeError, "depth=8.0", lambda: burgers.pinn_model(depth=8.0)),
        (ValueError, "upper", lambda: burgers.BoxScaling([0.0], [0.0])),
        (TypeError, "model=", lambda: burgers.pinn_loss("model", data)),
        (ValueError, "output shape", lambda: burgers.pinn_loss(keras.Sequential([keras.Input((2,)),
                                                                                  keras.layers.Dense(3)]), data)),
        (TypeError, "data", lambda: burgers.pinn_loss(model, data[:2])),
        (ValueError, "data.x_f", lambda: burgers.pinn_loss(model, data._replace(x_f=data.x_f[:, :1]))),
        (ValueError, "nu=-1", lambda: burgers.pinn_loss(model, data, nu=-1)),
        (TypeError, "fn=", lambda: burgers.input_derivatives(None, np.zeros((2, 2)))),
        (TypeError, "dtype int", lambda: burgers.input_derivatives(model, np.zeros((2, 2), int))),
        (ValueError, "second", lambda: burgers.input_derivatives(model, np.zeros((2, 2)), second=(2,))),
        (ValueError, "weights", lambda: burgers.assign_flat_weights(model, np.zeros(3))),
        (TypeError, "grid", lambda: burgers.relative_l2_error(model, grid=(1, 2, 3))),
    ]
    for error, match, call in cases:
        with pytest.raises(error, match=match):
            call()
