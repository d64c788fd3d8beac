"""The physics-informed Burgers problem of Raissi, Perdikaris & Karniadakis (2019),
Sec. 3.1: the data, the exact solution, the network and the loss — no download.

Viscous Burgers' equation on x ∈ [−1, 1], t ∈ [0, 1]::

    u_t + u u_x − ν u_xx = 0,    ν = 0.01/π,
    u(0, x) = −sin(πx),          u(t, −1) = u(t, 1) = 0.

A network u(x, t; θ) is trained on the loss (the paper's eq. (4)–(6))::

    J(θ) = MSE_u + MSE_f,
    MSE_u = (1/N_u) Σᵢ (u(xᵢᵘ, tᵢᵘ) − uᵢ)²         (N_u points on the initial and
                                                   boundary lines, uᵢ their data)
    MSE_f = (1/N_f) Σⱼ f(xⱼᶠ, tⱼᶠ)²,  f = u_t + u u_x − ν u_xx
                                                  (N_f collocation points inside)

with N_u = 100, N_f = 10,000 and a 2-[20×8]-1 tanh network (3,021 weights), trained with
L-BFGS; the paper reports a relative L2 error of 6.7e-4 on its 256 × 100 grid.

What is here:

* :func:`exact_solution` — u(t, x) by the Cole–Hopf transform and Gauss–Hermite
  quadrature, float64, vectorised; :func:`reference_grid` — it on the paper's grid;
* :func:`training_data` — N_u initial/boundary points, N_f Latin-hypercube collocation
  points (:func:`latin_hypercube`), as NumPy arrays (:class:`BurgersData`);
* :func:`pinn_model` — the 2-[20×8]-1 tanh network, Glorot-normal kernels drawn in NumPy;
* :func:`pinn_loss` — J as a zero-argument closure for
  ``keras_optlab`` optimizers' ``minimize(loss_fn, model.trainable_variables)``;
  :func:`pinn_loss_terms` — (MSE_u, MSE_f); :func:`input_derivatives` — u, ∇ₓu and
  ∂²u/∂xᵢ² through the backend's own autodiff;
* the loss for the peers: :func:`flat_loss_and_grad` (scipy), :func:`torch_closure` and
  :func:`torch_parameters` (``torch.optim.LBFGS``), :func:`jax_loss` (``optax.lbfgs``);
  :func:`flat_weights`, :func:`assign_flat_weights`;
* :func:`relative_l2_error` — ‖u_θ − u‖₂ / ‖u‖₂ on the reference grid.

Inputs of the network are the columns **(x, t)**, in that order, as in the paper's code
(``X = [x, t]``); :func:`exact_solution` takes ``(t, x)`` as the mathematical u(t, x).

Float64 on every backend. Keras 3.15.1's type promotion maps float64 to float32
(``keras.backend.result_type``), so some ops compute a float64 input in float32:
``ops.tanh`` and ``ops.mean`` on JAX, ``ops.matmul`` (hence ``Dense``) on torch. The
network and the loss here avoid them — ``EinsumDense`` for ``Dense``, tanh as 2σ(2z) − 1
(:func:`tanh64`), means as sums times 1/n — so that the loss agrees across backends to
rounding (tests/lab/test_burgers.py checks 1e-12 against a NumPy transcription).

References:
    Raissi, Perdikaris & Karniadakis (2019), "Physics-informed neural networks: a deep
    learning framework for solving forward and inverse problems involving nonlinear
    partial differential equations", J. Comput. Phys. 378, 686–707, Sec. 3.1; their code,
    ``continuous_time_inference (Burgers)``.
    Cole (1951), Quart. Appl. Math. 9, 225–236; Hopf (1950), Comm. Pure Appl. Math. 3,
    201–230; Basdevant et al. (1986), "Spectral and finite difference solutions of the
    Burgers equation", Computers & Fluids 14, 23–41 (the Hermite-quadrature form).
    McKay, Beckman & Conover (1979), Technometrics 21, 239–245 (Latin hypercubes).
    Glorot & Bengio (2010), AISTATS (the initialization).
"""

import functools
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from keras_optlab import _checks
from keras_optlab.lab import _input_derivatives

__all__ = [
    "BOUNDARY_POINTS",
    "LOWER",
    "NU",
    "UPPER",
    "BoxScaling",
    "BurgersData",
    "ReferenceGrid",
    "assign_flat_weights",
    "exact_solution",
    "flat_loss_and_grad",
    "flat_weights",
    "input_derivatives",
    "jax_loss",
    "latin_hypercube",
    "pinn_loss",
    "pinn_loss_terms",
    "pinn_model",
    "reference_grid",
    "relative_l2_error",
    "tanh64",
    "torch_closure",
    "torch_parameters",
    "training_data",
]

NU = 0.01 / np.pi
# The box of the inputs (x, t), as the paper's code takes it: the bounds of its data grid
# (lb = X_star.min(0), ub = X_star.max(0)); the grid's last time is 0.99, so the
# collocation points and the input scaling use t ∈ [0, 0.99], not [0, 1].
LOWER = (-1.0, 0.0)
UPPER = (1.0, 0.99)
GRID_X = 256
GRID_T = 100
BOUNDARY_POINTS = GRID_X + 2 * GRID_T  # 456 candidates: the t = 0 line and both x = ±1 lines
QUADRATURE_POINTS = 200
# numpy.polynomial.hermite.hermgauss overflows (NaN weights) from about 370 nodes on.
MAX_QUADRATURE_POINTS = 350
_CHUNK = 2**20  # points × nodes evaluated at once (8 MiB per float64 array)


# --------------------------------------------------------------------------- the exact solution


def exact_solution(t, x, nu=NU, quadrature_points=QUADRATURE_POINTS):
    """u(t, x) of viscous Burgers' equation with u(0, x) = −sin(πx), by Cole–Hopf.

    The Cole–Hopf transform u = −2ν φ_x / φ turns u_t + u u_x = ν u_xx into the heat
    equation φ_t = ν φ_xx, solved by a Gaussian convolution of
    φ(0, y) ∝ f(y) = exp(−cos(πy) / (2πν)). Differentiating under the integral and
    substituting y = x − √(4νt) η (Basdevant et al. 1986)::

                 ∫ sin(π(x − ση)) f(x − ση) e^(−η²) dη
      u(t, x) = − ───────────────────────────────────────,    σ = √(4νt),
                      ∫ f(x − ση) e^(−η²) dη

    both integrals over ℝ, evaluated by n-point Gauss–Hermite quadrature (nodes ηₖ,
    weights wₖ of the weight e^(−η²), ``numpy.polynomial.hermite.hermgauss``). The
    common factor f is huge (exp(±1/(2πν)) = e^(±50) for the paper's ν), so each sum
    is taken as Σₖ exp(log wₖ − cos(πyₖ)/(2πν) − M) with M the largest exponent: no
    overflow, and the denominator is a sum of positive terms (no cancellation). At
    t = 0, σ = 0 and u = −sin(πx) (returned as such, not as a rounded weighted mean).
    Since f is 2-periodic and even about x = ±1, u is 2-periodic and odd about x = 0
    and x = ±1: the periodic solution is the Dirichlet one (u(t, ±1) = 0 to
    rounding); ``x`` outside [−1, 1] gives the periodic extension.

    Accuracy: the integrand e^(−η²) f(x − ση) is entire, and log f changes by up to
    √(t/ν) per unit of η (∂_η log f(x − ση) = −σ sin(πy)/(2ν)), so Gauss–Hermite
    converges super-exponentially once n is large against t/ν. Measured on the paper's grid
    (t/ν ≤ 311): n = 50 is off by 0.1 near the shock, n = 100 by 1.8e-7, n = 120 to
    n = 300 agree to 2.3e-15; at x on a 513-point grid, n = 200 agrees with n = 350 to
    2.2e-15 up to t/ν = 942 (t = 3), but only to 3.6e-10 at t/ν = 1571 (there n = 300
    reaches 1.9e-12). Against an independent finite-difference solution (Richardson
    extrapolation of a second-order scheme on 1,020 and 2,040 cells) the difference is
    at most 7.6e-6 and falls 16× per halving of the cells — the scheme's fourth-order
    error, not this function's (tests/lab/test_burgers.py).

    Args:
        t: Times t ≥ 0, a real number or array (finite).
        x: Positions, a real number or array (finite), broadcast against ``t``.
        nu: The viscosity ν > 0. Defaults to 0.01/π (the paper's).
        quadrature_points: Gauss–Hermite nodes n, an int in [1, 350] (NumPy's
            ``hermgauss`` breaks down beyond ~370). Defaults to 200, converged to
            rounding for t/ν ≤ 940 (above).

    Returns:
        u as a float64 NumPy array of the broadcast shape of ``t`` and ``x``.

    Raises:
        TypeError: ``t`` or ``x`` not real numbers (bools, strings, complex), ``nu``
            not a real number, ``quadrature_points`` not an integer.
        ValueError: ``t`` negative or not finite, ``x`` not finite, shapes that do not
            broadcast, ``nu`` ≤ 0, ``quadrature_points`` outside [1, 350].
    """
    t = _real_array("t", t)
    x = _real_array("x", x)
    if (t < 0).any():
        raise ValueError(f"`t` must be >= 0. Received: t={_checks.shown(t)}")
    nu = _checks.positive("nu", nu)
    n = _checks.integer("quadrature_points", quadrature_points, low=1, high=MAX_QUADRATURE_POINTS)
    try:
        t, x = np.broadcast_arrays(t, x)
    except ValueError:
        raise ValueError(f"`t` and `x` must broadcast together. Received: shapes {t.shape} and {x.shape}") from None
    nodes, weights = np.polynomial.hermite.hermgauss(n)
    log_weights = np.log(weights)
    flat_t, flat_x = t.ravel(), x.ravel()
    u = np.empty(flat_t.shape, np.float64)
    chunk = max(1, _CHUNK // n)
    for start in range(0, flat_t.size, chunk):
        tt = flat_t[start : start + chunk, None]
        y = flat_x[start : start + chunk, None] - np.sqrt(4.0 * nu * tt) * nodes
        exponent = log_weights - np.cos(np.pi * y) / (2.0 * np.pi * nu)
        kernel = np.exp(exponent - exponent.max(axis=1, keepdims=True))
        u[start : start + chunk] = -np.sum(np.sin(np.pi * y) * kernel, axis=1) / np.sum(kernel, axis=1)
    initial = flat_t == 0.0  # the weighted mean of n equal values, rounded: the value itself
    u[initial] = -np.sin(np.pi * flat_x[initial])
    return u.reshape(t.shape)


class ReferenceGrid(NamedTuple):
    """The paper's test grid with the exact solution on it.

    Fields: ``x`` (256,), ``t`` (100,), ``u`` (100, 256) with ``u[i, j] = u(t[i], x[j])``
    (the layout of the paper's ``Exact = usol.T``), all float64.
    """

    x: np.ndarray
    t: np.ndarray
    u: np.ndarray

    def points(self):
        """The grid as network inputs: a float64 (25,600, 2) array of rows (x, t), in
        the order of ``u.ravel()`` (t major), as the paper's ``X_star``."""
        xx, tt = np.meshgrid(self.x, self.t)
        return np.stack([xx.ravel(), tt.ravel()], axis=1)


def _grid_axes():
    return np.linspace(LOWER[0], UPPER[0], GRID_X), np.linspace(LOWER[1], UPPER[1], GRID_T)


@functools.lru_cache(maxsize=4)
def _grid_solution(quadrature_points):
    x, t = _grid_axes()
    u = exact_solution(t[:, None], x[None, :], quadrature_points=quadrature_points)
    u.flags.writeable = False
    return u


def reference_grid(quadrature_points=QUADRATURE_POINTS):
    """The exact solution on the paper's 256 (x) × 100 (t) grid, computed here.

    The grid of the paper's ``burgers_shock.mat``: x = linspace(−1, 1, 256) (both ends
    included), t = linspace(0, 0.99, 100) (100 snapshots 0.01 apart, the paper's
    "Δt = 0.01"; the last at t = 0.99). The paper's values came from a Chebfun spectral
    solver; these are :func:`exact_solution`'s (Cole–Hopf), converged to ~2e-15 with the
    default 200 nodes. Computed once per ``quadrature_points`` (about 1 s) and cached;
    each call returns fresh copies.

    Args:
        quadrature_points: Gauss–Hermite nodes, as :func:`exact_solution`.

    Returns:
        A :class:`ReferenceGrid` ``(x, t, u)``.
    """
    n = _checks.integer("quadrature_points", quadrature_points, low=1, high=MAX_QUADRATURE_POINTS)
    x, t = _grid_axes()
    return ReferenceGrid(x=x, t=t, u=np.array(_grid_solution(n)))


# --------------------------------------------------------------------------- training data


class BurgersData(NamedTuple):
    """The training set. ``x_u`` (N_u, 2): initial/boundary points, rows (x, t);
    ``u_u`` (N_u, 1): u there; ``x_f`` (N_f, 2): collocation points, rows (x, t)."""

    x_u: np.ndarray
    u_u: np.ndarray
    x_f: np.ndarray


def latin_hypercube(n, dimensions=2, seed=0):
    """``n`` points of a Latin hypercube in [0, 1)^``dimensions`` (McKay et al. 1979).

    Each axis is cut into n equal strata; each stratum of each axis holds exactly one
    point, at a uniform position inside it, the strata paired across axes by
    independent random permutations: column d is (π_d(k) + U_k)/n, k = 0..n−1. This is
    pyDOE's ``lhs(dimensions, n)`` without a criterion, which the paper's code calls.

    Args:
        n: Points, an int ≥ 1.
        dimensions: Axes, an int ≥ 1.
        seed: Seed of NumPy's ``default_rng``, an int ≥ 0.

    Returns:
        A float64 array of shape (n, dimensions).
    """
    n = _checks.integer("n", n, low=1)
    dimensions = _checks.integer("dimensions", dimensions, low=1)
    seed = _checks.integer("seed", seed, low=0)
    return _latin_hypercube(n, dimensions, np.random.default_rng(seed))


def _latin_hypercube(n, dimensions, rng):
    strata = np.stack([rng.permutation(n) for _ in range(dimensions)], axis=1)
    return (strata + rng.uniform(size=(n, dimensions))) / n


def training_data(n_u=100, n_f=10000, seed=0, dtype="float64", *, append_boundary=False):
    """The paper's training set: N_u initial/boundary points and N_f collocation points.

    As the paper's code: the candidates are the 456 points of the reference grid
    (:func:`reference_grid`) on the initial line t = 0 (256 points, u = −sin(πx)) and
    on the boundaries x = −1 and x = 1 (100 points each, t on the grid, u = 0 — the
    corners (±1, 0) appear twice, as there); N_u of them are drawn without
    replacement. The N_f collocation points are a Latin hypercube
    (:func:`latin_hypercube`) mapped onto the box [−1, 1] × [0, 0.99]
    (``lb + (ub − lb) · lhs``, lb and ub the grid's bounds :data:`LOWER`,
    :data:`UPPER`). The values on the lines are the exact −sin(πx) and 0 (the paper
    read them from its Chebfun data, equal to rounding).

    One generator, ``numpy.random.default_rng(seed)``, draws the hypercube first, then
    the subset: ``x_f`` equals ``LOWER + (UPPER − LOWER) * latin_hypercube(n_f, 2,
    seed)``.

    Args:
        n_u: Initial/boundary points N_u, an int in [1, 456]. Defaults to 100.
        n_f: Collocation points N_f, an int ≥ 1. Defaults to 10,000.
        seed: Seed, an int ≥ 0. Defaults to 0.
        dtype: ``"float64"`` (default) or ``"float32"``, of every array.
        append_boundary: ``True``: also append all 456 candidate points to the
            collocation points (N_f + 456 rows), as the paper's code does
            (``X_f_train = np.vstack((X_f_train, X_u_train))`` before subsampling);
            ``False`` (default): N_f rows, as the paper's text.

    Returns:
        A :class:`BurgersData` ``(x_u, u_u, x_f)`` of NumPy arrays, rows (x, t).

    Raises:
        TypeError: an argument of the wrong type. ValueError: one out of range.
    """
    n_u = _checks.integer("n_u", n_u, low=1, high=BOUNDARY_POINTS)
    n_f = _checks.integer("n_f", n_f, low=1)
    seed = _checks.integer("seed", seed, low=0)
    dtype = _checks.one_of("dtype", dtype, ("float32", "float64"))
    append_boundary = _checks.boolean("append_boundary", append_boundary)
    x, t = _grid_axes()
    candidates = np.concatenate([
        np.stack([x, np.zeros_like(x)], axis=1),
        np.stack([np.full_like(t, LOWER[0]), t], axis=1),
        np.stack([np.full_like(t, UPPER[0]), t], axis=1),
    ])
    values = np.concatenate([-np.sin(np.pi * x), np.zeros(2 * GRID_T)])[:, None]
    rng = np.random.default_rng(seed)
    lower, upper = np.asarray(LOWER), np.asarray(UPPER)
    x_f = lower + (upper - lower) * _latin_hypercube(n_f, 2, rng)
    chosen = rng.choice(BOUNDARY_POINTS, size=n_u, replace=False)
    if append_boundary:
        x_f = np.concatenate([x_f, candidates])
    return BurgersData(x_u=candidates[chosen].astype(dtype), u_u=values[chosen].astype(dtype),
                       x_f=x_f.astype(dtype))


# --------------------------------------------------------------------------- the network


@keras.saving.register_keras_serializable(package="keras_optlab")
def tanh64(z):
    """tanh(z) as 2σ(2z) − 1: float64-exact on every backend (Keras 3.15.1's ``ops.tanh``
    computes a float64 input in float32 on JAX) and free of overflow (σ saturates)."""
    return 2.0 * ops.sigmoid(2.0 * z) - 1.0


@keras.saving.register_keras_serializable(package="keras_optlab")
class BoxScaling(keras.layers.Layer):
    """Maps the box [lower, upper] onto [−1, 1] per feature: z = 2(x − lb)/(ub − lb) − 1.

    The paper's code feeds its network ``H = 2.0*(X - self.lb)/(self.ub - self.lb) - 1.0``
    (lb, ub the bounds of its data grid). No weights.

    Args:
        lower, upper: Sequences of real numbers, one per feature, ``upper > lower``.
        **kwargs: Keras ``Layer`` arguments (``name``, ``dtype``).
    """

    def __init__(self, lower, upper, **kwargs):
        super().__init__(**kwargs)
        self.lower = _bounds("lower", lower)
        self.upper = _bounds("upper", upper)
        if len(self.lower) != len(self.upper):
            raise ValueError(
                f"`lower` and `upper` must have one entry per feature each. Received: lower={self.lower}, "
                f"upper={self.upper}"
            )
        if any(hi <= lo for lo, hi in zip(self.lower, self.upper)):
            raise ValueError(
                f"`upper` must be > `lower` entry by entry. Received: lower={self.lower}, upper={self.upper}"
            )

    def call(self, inputs):
        lower = np.asarray(self.lower, np.float64)
        upper = np.asarray(self.upper, np.float64)
        scale = ops.convert_to_tensor(2.0 / (upper - lower), dtype=self.compute_dtype)
        offset = ops.convert_to_tensor(-2.0 * lower / (upper - lower) - 1.0, dtype=self.compute_dtype)
        return ops.cast(inputs, self.compute_dtype) * scale + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"lower": list(self.lower), "upper": list(self.upper)})
        return config


def _bounds(name, value):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"`{name}` must be a sequence of real numbers. Received: {name}={_checks.shown(value)}")
    return tuple(_checks.number(f"{name}[{i}]", v) for i, v in enumerate(value))


def pinn_model(hidden=20, depth=8, seed=0, dtype="float64"):
    """The paper's network: (x, t) → ``depth`` tanh layers of ``hidden`` units → u.

    Layers: :class:`BoxScaling` (the input box [−1, 1] × [0, 0.99] onto [−1, 1]², as
    the paper's code), ``depth`` ``EinsumDense`` layers of ``hidden`` units with tanh
    (:func:`tanh64`), a linear ``EinsumDense`` output of 1 unit. With the defaults,
    2-[20×8]-1: 2·20+20 + 7·(20·20+20) + 20+1 = 3,021 weights. ``EinsumDense`` is Keras'
    ``Dense`` written as an einsum ("ab,bc->ac" plus a bias): the same function and
    weights, but float64-exact on torch, where Keras 3.15.1's ``Dense`` multiplies
    float64 in float32.

    Initialization, as the paper's ``xavier_init``: each kernel W (fan-in m, fan-out n)
    drawn from a normal of standard deviation √(2/(m + n)) truncated at two standard
    deviations (TensorFlow's ``truncated_normal``, not rescaled afterwards: the
    resulting standard deviation is ≈ 0.88 √(2/(m + n))); biases zero. The kernels are
    drawn with NumPy (``default_rng(seed)``, layer by layer), so a seed gives the same
    weights on every backend; the layers' own initializers are zeros, overwritten.

    Args:
        hidden: Units per hidden layer, an int ≥ 1. Defaults to 20.
        depth: Hidden layers, an int ≥ 1. Defaults to 8.
        seed: Seed of the kernels, an int ≥ 0. Defaults to 0.
        dtype: ``"float64"`` (default) or ``"float32"``: the weights and computation.

    Returns:
        An uncompiled ``keras.Sequential`` named ``burgers_pinn``, input (None, 2).

    Raises:
        TypeError: an argument of the wrong type. ValueError: one out of range, or
            ``dtype="float64"`` on JAX with its 64-bit mode off (``JAX_ENABLE_X64=1``).
    """
    hidden = _checks.integer("hidden", hidden, low=1)
    depth = _checks.integer("depth", depth, low=1)
    seed = _checks.integer("seed", seed, low=0)
    dtype = _checks.one_of("dtype", dtype, ("float32", "float64"))
    dtype = _checks.float64_available("dtype", dtype, keras.backend.backend())
    layers = [keras.Input((2,), dtype=dtype), BoxScaling(LOWER, UPPER, dtype=dtype, name="scaling")]
    for i in range(depth):
        layers.append(keras.layers.EinsumDense("ab,bc->ac", output_shape=hidden, bias_axes="c", activation=tanh64,
                                               kernel_initializer="zeros", dtype=dtype, name=f"hidden_{i}"))
    layers.append(keras.layers.EinsumDense("ab,bc->ac", output_shape=1, bias_axes="c", kernel_initializer="zeros",
                                           dtype=dtype, name="output"))
    model = keras.Sequential(layers, name="burgers_pinn")
    rng = np.random.default_rng(seed)
    widths = [2] + [hidden] * depth + [1]
    weights = []
    for m, n in zip(widths[:-1], widths[1:]):
        weights += [np.sqrt(2.0 / (m + n)) * _truncated_normal(rng, (m, n)), np.zeros(n)]
    model.set_weights([w.astype(dtype) for w in weights])
    return model


def _truncated_normal(rng, shape):
    """Standard normal draws, those beyond ±2 redrawn (TensorFlow's ``truncated_normal``)."""
    z = rng.standard_normal(shape)
    outside = np.abs(z) > 2.0
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2.0
    return z


# --------------------------------------------------------------------------- the loss


def input_derivatives(fn, x, second=()):
    """u = fn(x), its gradient in the inputs, and chosen pure second derivatives.

    For a row-wise ``fn`` (row n of the output depends on row n of ``x`` only, as in an
    MLP) from (N, d) inputs to N values::

        u[n]       = fn(x)[n]
        du[n, i]   = ∂u/∂xᵢ (xₙ)
        d2[n, k]   = ∂²u/∂xᵢ² (xₙ),  i = second[k]

    computed with the backend's own autodiff and left differentiable with respect to
    whatever ``fn`` reads (a model's weights), so a loss built on them can be
    differentiated again: nested ``tf.GradientTape`` on TensorFlow (inside
    ``tf.function`` too), ``jax.vjp`` and ``jax.jvp`` over it on JAX (inside
    ``jax.grad``/``jax.jit``; the weights are whatever ``fn`` reads — a Keras model
    reads substituted values inside a ``keras.StatelessScope``, which is how
    keras_optlab's optimizers trace it), ``torch.autograd.grad(create_graph=True)`` on
    torch. ``x`` is an independent input: nothing is differentiated through it.

    Args:
        fn: A callable (a Keras model) from an (N, d) tensor to (N, 1) or (N,).
        x: The points, a 2-D float array or tensor (N, d).
        second: Columns i whose ∂²u/∂xᵢ² to return, a sequence of ints in [0, d).
            Defaults to none.

    Returns:
        ``(u, du, d2)``: backend tensors; u as ``fn`` returns it, du (N, d),
        d2 (N, len(second)).

    Raises:
        TypeError: ``fn`` not callable, ``x`` not a float array, ``second`` not a
            sequence of ints. ValueError: ``x`` not 2-D, a column out of range.
        RuntimeError: a backend without autodiff (numpy, openvino).
    """
    if not callable(fn):
        raise TypeError(f"`fn` must be callable (a model, a function of x). Received: fn={_checks.shown(fn)}")
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        else:
            raise TypeError(f"`x` must be a 2-D float array or tensor. Received: x={_checks.shown(x)}")
    dtype = keras.backend.standardize_dtype(x.dtype)
    if not dtype.startswith("float"):
        raise TypeError(f"`x` must be a float array or tensor. Received: x of dtype {dtype}")
    shape = tuple(x.shape)
    if len(shape) != 2:
        raise ValueError(f"`x` must be 2-D (points × input dimensions). Received: x of shape {shape}")
    if isinstance(second, (str, bytes)) or not hasattr(second, "__iter__"):
        raise TypeError(f"`second` must be a sequence of column indices. Received: second={_checks.shown(second)}")
    high = None if shape[1] is None else shape[1] - 1
    second = tuple(_checks.integer(f"second[{k}]", i, low=0, high=high) for k, i in enumerate(second))
    return _input_derivatives.for_backend()(fn, x, second)


def _check_model(model):
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"`model` must be a Keras model (u of rows (x, t)). Received: model={_checks.shown(model)}")
    if not model.trainable_variables:
        raise ValueError(f"`model` must be built and have trainable weights. Received: model={_checks.shown(model)}")
    try:
        out = tuple(model.compute_output_shape((None, 2)))
    except Exception as error:  # a model that cannot take (x, t) rows says why
        raise ValueError(f"`model` must map (None, 2) inputs (x, t) to (None, 1). Received: model "
                         f"{model.name!r}, which refuses (None, 2): {error}") from None
    if out != (None, 1):
        raise ValueError(f"`model` must map (None, 2) inputs (x, t) to (None, 1). Received: model {model.name!r} "
                         f"with output shape {out}")
    return model


def _check_data(data):
    if not isinstance(data, (tuple, list)) or len(data) != 3:
        raise TypeError(f"`data` must be a BurgersData (x_u, u_u, x_f), as training_data returns. "
                        f"Received: data={_checks.shown(data)}")
    x_u, u_u, x_f = (_real_array(f"data.{name}", v) for name, v in zip(BurgersData._fields, data))
    u_u = u_u.reshape(-1, 1) if u_u.ndim == 1 else u_u
    for name, value, width in (("x_u", x_u, 2), ("u_u", u_u, 1), ("x_f", x_f, 2)):
        if value.ndim != 2 or value.shape[1] != width or value.shape[0] == 0:
            raise ValueError(f"`data.{name}` must have shape (n, {width}), n >= 1. Received: shape {value.shape}")
    if x_u.shape[0] != u_u.shape[0]:
        raise ValueError(
            f"`data.x_u` and `data.u_u` must have as many rows. Received: shapes {x_u.shape} and {u_u.shape}"
        )
    return BurgersData(x_u, u_u, x_f)


def _residual_terms(predict, x_u, u_u, x_f, nu):
    """(MSE_u, MSE_f) of u = ``predict`` (a function of (x, t) rows) in keras.ops."""
    misfit = predict(x_u) - u_u
    mse_u = ops.sum(misfit * misfit) * (1.0 / x_u.shape[0])
    u, du, d2 = input_derivatives(predict, x_f, second=(0,))
    f = du[:, 1:2] + u * du[:, 0:1] - nu * d2
    mse_f = ops.sum(f * f) * (1.0 / x_f.shape[0])
    return mse_u, mse_f


def _prepared(model, data, nu):
    model = _check_model(model)
    data = _check_data(data)
    nu = _checks.positive("nu", nu)
    dtype = keras.backend.standardize_dtype(model.trainable_variables[0].dtype)
    tensors = [ops.convert_to_tensor(np.asarray(a, dtype=dtype)) for a in data]
    return model, tensors, nu


def pinn_loss_terms(model, data, nu=NU):
    """A zero-argument function returning (MSE_u, MSE_f) of ``model`` on ``data``
    (scalar tensors; see :func:`pinn_loss`). Arguments as :func:`pinn_loss`."""
    model, (x_u, u_u, x_f), nu = _prepared(model, data, nu)

    def terms():
        return _residual_terms(model, x_u, u_u, x_f, nu)

    return terms


def pinn_loss(model, data, nu=NU):
    """The physics-informed loss J = MSE_u + MSE_f as a zero-argument closure.

    ``loss_fn()`` returns the scalar tensor (module docstring)::

        J = (1/N_u) Σᵢ (u(xᵢᵘ) − uᵢ)² + (1/N_f) Σⱼ (u_t + u u_x − ν u_xx)²(xⱼᶠ)

    with u_x, u_t, u_xx from :func:`input_derivatives` (the backend's autodiff, left
    differentiable), so the closure is what ``keras_optlab`` optimizers' ``minimize``
    takes::

        from keras_optlab.lab import burgers
        model = burgers.pinn_model()
        loss_fn = burgers.pinn_loss(model, burgers.training_data())
        keras_optlab.optimizers.LBFGS().minimize(loss_fn, model.trainable_variables, steps=1000)

    The contract: ``loss_fn`` reads the weights only by calling ``model`` (never by
    converting a variable to a number), so it sees whatever values the caller puts in
    them — assigned (TensorFlow inside ``tf.function``, torch eagerly) or substituted
    through a ``keras.StatelessScope`` under ``jax.jit`` (how ``minimize`` and
    ``SecondOrder`` trace it on JAX). The data are converted once, here, to tensors of
    the weights' dtype, and captured as constants.

    Args:
        model: A built Keras model from (N, 2) rows (x, t) to (N, 1), row-wise (e.g.
            :func:`pinn_model`).
        data: A :class:`BurgersData` (or a 3-tuple of arrays ``(x_u, u_u, x_f)``).
        nu: The viscosity ν > 0. Defaults to 0.01/π.

    Returns:
        ``loss_fn``, a function of no arguments returning a scalar tensor.

    Raises:
        TypeError: ``model`` not a Keras model, ``data`` not a 3-tuple of real arrays,
            ``nu`` not a number. ValueError: a model without weights or whose output
            for (None, 2) is not (None, 1); data of the wrong shapes or not finite;
            ``nu`` ≤ 0.
    """
    terms = pinn_loss_terms(model, data, nu)

    def loss_fn():
        mse_u, mse_f = terms()
        return mse_u + mse_f

    return loss_fn


# --------------------------------------------------------------------------- the loss for the peers


def flat_weights(model):
    """The trainable weights of ``model`` as one float64 NumPy vector (Keras' order:
    each layer's kernel, row-major, then its bias)."""
    _check_model(model)
    return np.concatenate([np.asarray(ops.convert_to_numpy(v), np.float64).ravel() for v in model.trainable_variables])


def assign_flat_weights(model, weights):
    """Assign the vector ``weights`` (as :func:`flat_weights` orders it) to ``model``'s
    trainable weights, cast to their dtype. ValueError if its length is not the number
    of weights."""
    _check_model(model)
    weights = _real_array("weights", weights)
    variables = model.trainable_variables
    total = sum(int(np.prod(v.shape)) for v in variables)
    if weights.shape != (total,):
        raise ValueError(f"`weights` must be a vector of the model's {total} weights. Received: shape {weights.shape}")
    start = 0
    for v in variables:
        n = int(np.prod(v.shape))
        v.assign(weights[start : start + n].reshape(tuple(v.shape)).astype(keras.backend.standardize_dtype(v.dtype)))
        start += n


def flat_loss_and_grad(model, data, nu=NU):
    """J and ∇J as a function of one float64 weight vector, for ``scipy.optimize.minimize``::

        fun = burgers.flat_loss_and_grad(model, data)
        result = scipy.optimize.minimize(fun, burgers.flat_weights(model), jac=True,
                                         method="L-BFGS-B")
        burgers.assign_flat_weights(model, result.x)

    ``fun(w)`` assigns ``w`` to the model's weights (:func:`assign_flat_weights`: the
    model is left at the last point evaluated), then evaluates :func:`pinn_loss` and its
    gradient by the backend's autodiff, traced once (``tf.function``, ``jax.jit``;
    eager torch), and returns ``(float, float64 vector)``. Arguments as
    :func:`pinn_loss`; any backend with autodiff.
    """
    from keras_optlab.curvature.autodiff import for_backend

    loss_fn = pinn_loss(model, data, nu)
    variables = list(model.trainable_variables)
    adapter = for_backend("keras_optlab.lab.burgers.flat_loss_and_grad")
    evaluate = adapter.compiled(lambda: adapter.loss_and_gradient(loss_fn, variables), variables)

    def fun(weights):
        assign_flat_weights(model, weights)
        loss, grads = evaluate()
        grad = np.concatenate([np.asarray(ops.convert_to_numpy(g), np.float64).ravel() for g in grads])
        return float(ops.convert_to_numpy(loss)), grad

    return fun


def _require(backend, what):
    if keras.backend.backend() != backend:
        raise RuntimeError(f"keras_optlab.lab.burgers.{what} needs the {backend} backend. "
                           f"Received: keras.backend.backend()={keras.backend.backend()!r}")


def torch_parameters(model):
    """The model's trainable weights as the ``torch.nn.Parameter`` objects Keras keeps
    (torch backend): hand them to a ``torch.optim`` optimizer, which then updates the
    model in place."""
    _require("torch", "torch_parameters")
    _check_model(model)
    return [v.value for v in model.trainable_variables]


def torch_closure(model, data, optimizer, nu=NU):
    """The closure ``torch.optim.LBFGS.step`` takes (torch backend)::

        optimizer = torch.optim.LBFGS(burgers.torch_parameters(model), line_search_fn="strong_wolfe")
        optimizer.step(burgers.torch_closure(model, data, optimizer))

    Each call zeroes the gradients, evaluates :func:`pinn_loss`, back-propagates into
    the parameters' ``.grad`` and returns the loss tensor. ``optimizer``: a
    ``torch.optim.Optimizer`` over :func:`torch_parameters`; other arguments as
    :func:`pinn_loss`.
    """
    _require("torch", "torch_closure")
    import torch

    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"`optimizer` must be a torch.optim.Optimizer. Received: optimizer={_checks.shown(optimizer)}")
    loss_fn = pinn_loss(model, data, nu)

    def closure():
        optimizer.zero_grad()
        with torch.enable_grad():
            loss = loss_fn()
            loss.backward()
        return loss

    return closure


def jax_loss(model, data, nu=NU):
    """J as a pure function of a parameter pytree, for ``optax.lbfgs`` and other JAX
    code (JAX backend)::

        fun, params = burgers.jax_loss(model, data)
        value, grad = jax.value_and_grad(fun)(params)

    ``params`` is the list of the model's trainable weight values (JAX arrays, in
    ``model.trainable_variables`` order); ``fun(params)`` evaluates the model through
    ``model.stateless_call`` (its non-trainable values as now), so ``jax.jit``,
    ``jax.grad`` and optax's loops trace it with no Keras state. Write the result back
    with ``for v, p in zip(model.trainable_variables, params): v.assign(p)``. Arguments
    as :func:`pinn_loss`.
    """
    _require("jax", "jax_loss")
    model, (x_u, u_u, x_f), nu = _prepared(model, data, nu)
    non_trainable = [v.value for v in model.non_trainable_variables]

    def fun(params):
        def predict(z):
            return model.stateless_call(list(params), non_trainable, z)[0]

        mse_u, mse_f = _residual_terms(predict, x_u, u_u, x_f, nu)
        return mse_u + mse_f

    return fun, [v.value for v in model.trainable_variables]


def relative_l2_error(model, grid=None):
    """‖u_θ − u‖₂ / ‖u‖₂ over the points of ``grid`` (the paper's error measure).

    Args:
        model: A built Keras model from rows (x, t) to u (as :func:`pinn_loss`).
        grid: A :class:`ReferenceGrid`; ``None`` (default): :func:`reference_grid`.

    Returns:
        A Python float.
    """
    _check_model(model)
    if grid is None:
        grid = reference_grid()
    if not isinstance(grid, ReferenceGrid):
        raise TypeError(f"`grid` must be a ReferenceGrid (reference_grid()). Received: grid={_checks.shown(grid)}")
    dtype = keras.backend.standardize_dtype(model.trainable_variables[0].dtype)
    predicted = model(ops.convert_to_tensor(grid.points().astype(dtype)))
    predicted = np.asarray(ops.convert_to_numpy(predicted), np.float64).reshape(grid.u.shape)
    return float(np.linalg.norm(predicted - grid.u) / np.linalg.norm(grid.u))


# --------------------------------------------------------------------------- checks


def _real_array(name, value):
    """``value`` as a float64 NumPy array of finite real numbers."""
    try:
        array = np.asarray(value)
    except Exception:  # ragged nesting and the like
        array = None
    if array is None or array.dtype.kind not in "iuf":
        raise TypeError(
            f"`{name}` must be real numbers (a number or array). Received: {name}={_checks.shown(value)}"
        )
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` must be finite. Received: {name}={_checks.shown(value)}")
    return array
