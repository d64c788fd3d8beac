"""Textbook loss surfaces of Goodfellow et al. (2016), ch. 8, as functions in ``keras.ops``.

Each :class:`Surface` is a function of a parameter vector θ, written in ``keras.ops`` (so
it runs, and is differentiated, on any Keras backend), with a default start, its
minimizer and a plotting window. They are the problems of Sec. 8.2:

* :func:`quadratic` — ill-conditioning (Sec. 8.2.1): ½(θ − θ*)ᵀH(θ − θ*) with a chosen
  condition number κ = λmax/λmin;
* :func:`rosenbrock` — a curved, narrow valley (the classic test of Sec. 8.3–8.6);
* :func:`saddle` — x² − y², the saddle point of Sec. 8.2.3 that attracts Newton's method;
* :func:`cliff` — a wall with a huge gradient (Sec. 8.2.4, Fig. 8.3);
* :func:`plateau` — a wide flat region around a narrow well (Sec. 8.2.3);
* :func:`long_term_dependency` — the repeated product Wᵗ of Sec. 8.2.5, Eq. 8.11–8.12;
* :func:`gaussian_wells` — a bowl with a deep broad well and a shallow narrow one, and
  its Gaussian blur in closed form: the continuation of Sec. 8.7.6 (not in
  :data:`SURFACES`, the race's problems: it is the continuation example's).

:func:`value_and_gradient` differentiates a surface on the active backend.
"""

import dataclasses
import math
from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from keras_optlab import _checks

DTYPE = "float64"


@dataclasses.dataclass(frozen=True)
class Surface:
    """A loss surface J(θ) with a start, a minimizer and a window to draw it in.

    Attributes:
        name: Short identifier (``"rosenbrock"``), used for file names and tables.
        title: Human-readable name with its parameters, for figure titles.
        function: θ (1-D tensor) ↦ J(θ) (scalar tensor), written in ``keras.ops``.
        start: Default initial θ.
        minimizer: A global minimizer θ*, or ``None`` when J is unbounded below
            (the saddle).
        xlim, ylim: Plotting window of the first two coordinates.
        escape_value: For a surface without minimizer, the loss at or below which a
            run counts as having escaped (the race's target there).
        log_levels: Draw contours at logarithmically spaced heights.
        steps: Default number of updates in a race.
        section: Where the book discusses it.
    """

    name: str
    title: str
    function: Callable
    start: tuple
    minimizer: tuple | None
    xlim: tuple
    ylim: tuple
    escape_value: float | None = None
    log_levels: bool = False
    steps: int = 200
    section: str = ""

    def __call__(self, theta):
        return self.function(theta)

    @property
    def dim(self):
        return len(self.start)

    def value(self, theta):
        """J(θ) as a Python float (θ any array-like)."""
        return float(ops.convert_to_numpy(self.function(ops.convert_to_tensor(np.asarray(theta, DTYPE)))))

    def gradient(self, theta):
        """∇J(θ) as a float64 NumPy array, by automatic differentiation."""
        _, grad = value_and_gradient(self.function, np.asarray(theta, DTYPE))
        return np.asarray(ops.convert_to_numpy(grad), dtype=np.float64)

    @property
    def min_value(self):
        """J(θ*), or ``None`` without a minimizer."""
        return None if self.minimizer is None else self.value(self.minimizer)

    def target(self, tolerance):
        """The loss at or below which a run is solved: J(θ*) + ``tolerance``, or
        :attr:`escape_value` for a surface without a minimizer."""
        return self.escape_value if self.minimizer is None else self.min_value + tolerance

    def grid(self, points=200):
        """``(X, Y, Z)`` on the plotting window (2-D surfaces), for contour plots."""
        if self.dim != 2:
            raise ValueError(f"Only 2-D surfaces have a contour grid; {self.name} has dim={self.dim}.")
        xs, ys = np.linspace(*self.xlim, points), np.linspace(*self.ylim, points)
        x, y = np.meshgrid(xs, ys)
        batched = keras.ops.vectorized_map(self.function, ops.convert_to_tensor(np.stack([x.ravel(), y.ravel()], 1)))
        return x, y, np.asarray(ops.convert_to_numpy(batched)).reshape(x.shape)


def value_and_gradient(function, theta):
    """``(J(θ), ∇J(θ))`` of a ``keras.ops`` function on the active backend.

    Keras 3 has no backend-neutral gradient, so this dispatches to ``tf.GradientTape``,
    ``jax.value_and_grad`` or ``torch.autograd``.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        theta = tf.convert_to_tensor(theta)
        with tf.GradientTape() as tape:
            tape.watch(theta)
            value = function(theta)
        return value, tape.gradient(value, theta)
    if backend == "jax":
        import jax

        return jax.value_and_grad(function)(ops.convert_to_tensor(theta))
    if backend == "torch":
        import torch

        # A trainable torch variable's value is a parameter that requires grad: detach it.
        theta = ops.convert_to_tensor(theta).detach().clone().requires_grad_(True)
        value = function(theta)
        (grad,) = torch.autograd.grad(value, theta)
        return value.detach(), grad
    raise RuntimeError(f"value_and_gradient supports tensorflow, jax and torch; the backend is {backend!r}.")


def _constant(array, like):
    return ops.convert_to_tensor(np.asarray(array), dtype=like.dtype)


def rotation(angle):
    """The 2×2 rotation matrix by ``angle`` radians."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def quadratic_hessian(condition_number, dim=2, smallest=1.0, angle=math.pi / 6):
    """H of :func:`quadratic`: eigenvalues from ``smallest`` to ``smallest·κ``
    (geometrically spaced), eigenvectors rotated by ``angle`` in 2-D, axis-aligned
    otherwise."""
    condition_number = _checks.number("condition_number", condition_number, low=1.0)
    dim = _checks.integer("dim", dim, low=1)
    eigenvalues = smallest * np.geomspace(1.0, condition_number, dim)
    if dim != 2:
        return np.diag(eigenvalues)
    q = rotation(angle)
    return q @ np.diag(eigenvalues) @ q.T


def quadratic(condition_number=10.0, dim=2, smallest=1.0, angle=math.pi / 6, start=None):
    """J(θ) = ½ θᵀHθ with condition number κ = λmax/λmin (Sec. 8.2.1, Sec. 4.3.1).

    Gradient descent's best constant step 2/(λmin + λmax) contracts the error by
    (κ − 1)/(κ + 1) per step; heavy-ball momentum at its best by (√κ − 1)/(√κ + 1)
    (Sec. 8.3.2) — the lab's theory tests measure both. The minimizer is θ* = 0.
    """
    hessian = quadratic_hessian(condition_number, dim, smallest, angle)

    def function(theta):
        # einsum, not matmul: Keras 3.15's torch matmul computes float64 in float32.
        return 0.5 * ops.sum(theta * ops.einsum("ij,j->i", _constant(hessian, theta), theta))

    if start is None:
        start = (-4.5, -1.5) if dim == 2 else tuple(np.ones(dim))
    return Surface(
        name="quadratic",
        title=f"ill-conditioned quadratic, κ = {condition_number:g}",
        function=function,
        start=tuple(float(s) for s in start),
        minimizer=(0.0,) * dim,
        xlim=(-5.0, 5.0),
        ylim=(-4.0, 4.0),
        log_levels=True,
        steps=100,
        section="Sec. 8.2.1",
    )


def rosenbrock(a=1.0, b=100.0, start=(-1.5, 2.0)):
    """J(x, y) = (a − x)² + b(y − x²)², minimizer (a, a²): a curved, narrow valley."""

    def function(theta):
        x, y = theta[0], theta[1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    return Surface(
        name="rosenbrock",
        title="Rosenbrock valley",
        function=function,
        start=tuple(map(float, start)),
        minimizer=(a, a * a),
        xlim=(-2.0, 2.0),
        ylim=(-1.0, 3.0),
        log_levels=True,
        steps=500,
        section="Sec. 8.2, 8.6",
    )


def saddle(start=(1.5, 1e-3), escape_value=-1.0):
    """J(x, y) = x² − y²: a saddle point at the origin, unbounded below (Sec. 8.2.3).

    The default start lies almost on the attracting direction x, so first-order
    methods take long to leave, and Newton's method jumps onto the saddle (Sec. 8.6.1).
    No minimizer: a run has escaped once J ≤ ``escape_value``.
    """

    def function(theta):
        return theta[0] ** 2 - theta[1] ** 2

    return Surface(
        name="saddle",
        title="saddle x² − y²",
        function=function,
        start=tuple(map(float, start)),
        minimizer=None,
        xlim=(-2.0, 2.0),
        ylim=(-2.0, 2.0),
        escape_value=escape_value,
        steps=100,
        section="Sec. 8.2.3",
    )


def cliff(height=20.0, steepness=30.0, edge=1.0, curvature=0.3, start=(2.5, 1.5)):
    """A bowl cut by a cliff: J = ½a‖θ‖² + H·σ(s(x − c)) (Sec. 8.2.4, Fig. 8.3).

    For x > c the parameters sit on a high shelf; at x = c the loss drops by H
    (``height``) over a width ~1/s (``steepness``), where the gradient reaches H·s/4.
    In a deep or recurrent network such walls come from multiplying several large
    weights; here the wall is drawn directly so that its size is known. A plain
    gradient step taken on the wall face throws θ far beyond the minimizer; gradient
    clipping (Sec. 10.11.1) bounds the step. The minimizer is near the origin; it is
    computed (Newton's method in one variable) to float64 precision.
    """

    def function(theta):
        x = theta[0]
        return 0.5 * curvature * ops.sum(theta**2) + height * ops.sigmoid(steepness * (x - edge))

    # ∂J/∂x = a x + H s σ'(s(x − c)) = 0 on y = 0; Newton from x = 0 (σ' is ~e^{-sc} there).
    x = 0.0
    for _ in range(50):
        z = steepness * (x - edge)
        p = 1.0 / (1.0 + math.exp(-z))
        grad = curvature * x + height * steepness * p * (1 - p)
        hess = curvature + height * steepness**2 * p * (1 - p) * (1 - 2 * p)
        x -= grad / hess
    return Surface(
        name="cliff",
        title=f"cliff (wall of height {height:g}, max slope {height * steepness / 4:g})",
        function=function,
        start=tuple(map(float, start)),
        minimizer=(x, 0.0),
        xlim=(-3.0, 4.0),
        ylim=(-2.0, 3.0),
        steps=100,
        section="Sec. 8.2.4, Fig. 8.3",
    )


def plateau(start=(3.0, 1.5), scales=(1.0, 4.0)):
    """J(θ) = 1 − exp(−½ Σ sᵢθᵢ²): a narrow well in a flat plain (Sec. 8.2.3).

    Far from the well J ≈ 1 and the gradient is exponentially small: a fixed-step
    method barely moves, while methods that divide by the gradient's running scale
    (Sec. 8.5) keep a useful step. Minimizer 0.
    """

    def function(theta):
        return 1.0 - ops.exp(-0.5 * ops.sum(_constant(scales, theta) * theta**2))

    return Surface(
        name="plateau",
        title="plateau around a narrow well",
        function=function,
        start=tuple(map(float, start)),
        minimizer=(0.0, 0.0),
        xlim=(-2.0, 4.0),
        ylim=(-2.0, 2.5),
        steps=300,
        section="Sec. 8.2.3",
    )


# Eigenvectors of W (columns, not orthogonal) and the input h₀ of long_term_dependency.
LTD_EIGENVECTORS = np.array([[1.0, 0.6], [0.0, 0.8]])
LTD_INPUT = np.array([1.0, 1.0])


def long_term_dependency(t=15, target=(0.95, 1.05), start=(0.6, 1.15)):
    """J(λ) = ½‖Wᵗh₀ − Wₜᵗh₀‖² with W = V diag(λ) V⁻¹ (Sec. 8.2.5, Eq. 8.11–8.12).

    θ = λ are the eigenvalues of a recurrent weight matrix W applied t times (the
    product is computed as t matrix products, the way a deep graph would). Wᵗ =
    V diag(λ)ᵗ V⁻¹, so the gradient scales like t·λᵗ⁻¹: it vanishes for |λ| < 1 and
    explodes for |λ| > 1. The target matrix has eigenvalues ``target``; t is odd, so
    λ* = ``target`` is the unique minimizer.
    """
    t = _checks.integer("t", t, low=1)
    if t % 2 == 0:
        raise ValueError(f"`t` must be an odd positive integer (unique minimizer). Received: t={t!r}")
    v_inv = np.linalg.inv(LTD_EIGENVECTORS)
    goal = LTD_EIGENVECTORS @ (np.asarray(target) ** t * (v_inv @ LTD_INPUT))

    def function(theta):
        v = _constant(LTD_EIGENVECTORS, theta)
        # einsum, not matmul: Keras 3.15's torch matmul computes float64 in float32.
        w = ops.einsum("ij,jk->ik", v * theta[None, :], _constant(v_inv, theta))
        h = _constant(LTD_INPUT, theta)
        for _ in range(t):
            h = ops.einsum("ij,j->i", w, h)
        return 0.5 * ops.sum((h - _constant(goal, theta)) ** 2)

    return Surface(
        name="long_term_dependency",
        title=f"long-term dependency, W^{t}",
        function=function,
        start=tuple(map(float, start)),
        minimizer=tuple(map(float, target)),
        xlim=(0.0, 1.3),
        ylim=(0.0, 1.3),
        log_levels=True,
        steps=300,
        section="Sec. 8.2.5",
    )


# (centre x, centre y, depth A, width s) of the wells of gaussian_wells: a broad deep
# well (the global minimum) and a narrow shallow one next to the default start.
WELLS = ((1.2, 0.8, 2.0, 1.0), (-1.5, -1.2, 1.0, 0.35))


def _check_wells(blur, wells, bowl):
    """The validated ``(blur, wells, bowl)`` of :func:`gaussian_wells`."""
    blur = _checks.number("blur", blur, low=0.0)
    bowl = _checks.positive("bowl", bowl)
    if isinstance(wells, (str, bytes)) or not hasattr(wells, "__iter__"):
        raise TypeError(f"`wells` must be a sequence of (x, y, depth, width). Received: wells={_checks.shown(wells)}")
    checked = []
    for well in wells:
        if isinstance(well, (str, bytes)) or not hasattr(well, "__len__") or len(well) != 4:
            raise TypeError(f"each of `wells` must be (x, y, depth, width). Received: wells={_checks.shown(wells)}")
        cx, cy = _checks.number("wells", well[0]), _checks.number("wells", well[1])
        checked.append((cx, cy, _checks.positive("wells", well[2]), _checks.positive("wells", well[3])))
    if not checked:
        raise ValueError(f"`wells` must hold at least one well. Received: wells={wells!r}")
    return blur, tuple(checked), bowl


def _wells_numpy(theta, wells, bowl, blur):
    """(J, ∇J, ∇²J) of :func:`gaussian_wells` at one 2-D point, float64 NumPy."""
    theta = np.asarray(theta, dtype=np.float64)
    value = 0.5 * bowl * theta @ theta + bowl * blur**2
    grad = bowl * theta
    hess = bowl * np.eye(2)
    for cx, cy, depth, width in wells:
        var = width**2 + blur**2
        d = theta - np.array([cx, cy])
        e = depth * (width**2 / var) * math.exp(-0.5 * d @ d / var)
        value -= e
        grad = grad + e * d / var
        hess = hess + e * (np.eye(2) / var - np.outer(d, d) / var**2)
    return value, grad, hess


def gaussian_wells_minima(blur=0.0, wells=WELLS, bowl=0.15):
    """The local minima of :func:`gaussian_wells` (same arguments) reached from each
    well's centre, lowest first, as ``(x, y)`` tuples: gradient descent with backtracking
    (Armijo), then Newton steps to float64 precision, in NumPy. Duplicates (two centres,
    one minimum) are merged, so a blur that has swallowed a well returns fewer minima."""
    blur, wells, bowl = _check_wells(blur, wells, bowl)
    found = []
    for cx, cy, *_ in wells:
        theta = np.array([cx, cy], dtype=np.float64)
        for _ in range(2000):
            value, grad, _ = _wells_numpy(theta, wells, bowl, blur)
            if grad @ grad < 1e-16:
                break
            step = 1.0
            while _wells_numpy(theta - step * grad, wells, bowl, blur)[0] > value - 0.5 * step * grad @ grad:
                step *= 0.5
            theta = theta - step * grad
        for _ in range(5):
            _, grad, hess = _wells_numpy(theta, wells, bowl, blur)
            theta = theta - np.linalg.solve(hess, grad)
        if not any(np.linalg.norm(theta - other) < 1e-6 for other, _ in found):
            found.append((theta, _wells_numpy(theta, wells, bowl, blur)[0]))
    return [tuple(float(t) for t in theta) for theta, _ in sorted(found, key=lambda pair: pair[1])]


def gaussian_wells(blur=0.0, wells=WELLS, bowl=0.15, start=(-2.0, -1.8)):
    """J(θ) = ½a‖θ‖² − Σₖ Aₖ exp(−‖θ − μₖ‖²/(2sₖ²)), blurred by N(0, σ²I) in closed form.

    Continuation (Goodfellow et al. 2016, Sec. 8.7.6) minimizes a sequence of easier
    cost functions J⁽⁰⁾, J⁽¹⁾, …, J⁽ⁿ⁾ = J, each solution the start of the next; the
    blurred versions J⁽ⁱ⁾(θ) = E_{θ′∼N(θ, σᵢ²I)} J(θ′), σ₀ > σ₁ > … > 0, are the book's
    example (Mobahi & Fisher 2015). This surface blurs exactly: convolving a Gaussian
    well of width s with N(0, σ²I) in d = 2 dimensions gives a well of width
    √(s² + σ²) and depth A·s²/(s² + σ²); the bowl ½a‖θ‖² gains the constant aσ². So

        J_σ(θ) = ½a‖θ‖² + aσ² − Σₖ Aₖ sₖ²/(sₖ² + σ²) · exp(−‖θ − μₖ‖²/(2(sₖ² + σ²))).

    The default ``wells`` (:data:`WELLS`) put a deep broad well (A = 2, s = 1) at the
    global minimum and a shallow narrow one (A = 1, s = 0.35) beside the default start:
    gradient descent from the start falls into the narrow one; blurred by σ ≳ 1 the
    narrow well all but disappears (its depth shrinks by s²/(s² + σ²)) and the broad one
    draws the path to the global basin.

    Args:
        blur: σ ≥ 0 (0: the surface itself).
        wells: Sequence of ``(μ_x, μ_y, A, s)``, A > 0 the depth, s > 0 the width.
        bowl: a > 0, the curvature of the bowl (keeps J bounded below).
        start: Default initial θ.

    The minimizer (of J_σ) is found in float64 NumPy: descent from each well's centre,
    polished by Newton's method; the lowest minimum found is the global one.
    """
    blur, wells, bowl = _check_wells(blur, wells, bowl)
    terms = [(np.array([cx, cy]), depth * width**2 / (width**2 + blur**2), width**2 + blur**2)
             for cx, cy, depth, width in wells]

    def function(theta):
        value = 0.5 * bowl * ops.sum(theta**2) + bowl * blur**2
        for centre, depth, var in terms:
            value = value - depth * ops.exp(-0.5 * ops.sum((theta - _constant(centre, theta)) ** 2) / var)
        return value

    title = "two Gaussian wells in a bowl" + (f", blurred σ = {blur:g}" if blur else "")
    return Surface(
        name="gaussian_wells",
        title=title,
        function=function,
        start=tuple(map(float, start)),
        minimizer=gaussian_wells_minima(blur, wells, bowl)[0],
        xlim=(-3.0, 3.0),
        ylim=(-3.0, 3.0),
        steps=300,
        section="Sec. 8.7.6",
    )


SURFACES = {
    "quadratic": quadratic,
    "rosenbrock": rosenbrock,
    "saddle": saddle,
    "cliff": cliff,
    "plateau": plateau,
    "long_term_dependency": long_term_dependency,
}


def default_surfaces():
    """Every surface with its default arguments, by name."""
    return {name: factory() for name, factory in SURFACES.items()}
