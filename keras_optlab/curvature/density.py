"""The whole Hessian spectrum as a density: stochastic Lanczos quadrature (SLQ).

The extreme eigenvalues (:func:`~keras_optlab.curvature.top_eigenvalues`) say how sharp
the sharpest direction is; the density φ(t) = (1/n) Σᵢ δ(t − λᵢ) of all n eigenvalues
says how many directions are sharp, flat or of negative curvature — the picture of
Goodfellow et al. (2016), Sec. 8.2.3 (saddle points: a few negative eigenvalues among
many positive ones) and Sec. 8.2.1 (ill-conditioning: a bulk near zero and outliers).

**Algorithm** (Ubaru, Chen & Saad 2017; Ghorbani, Krishnan & Xiao 2019, Sec. 2):

    for each probe p = 1 … P:
        v ← a random unit vector (Rademacher ±1/√n, or Gaussian normalized)
        T ← m steps of Lanczos on H from v, full reorthogonalization
            (:func:`keras_optlab.curvature.spectrum.lanczos`; stops early if invariant)
        θⱼ, sⱼ ← eigenpairs of T;  τⱼ ← (first component of sⱼ)²     (Σⱼ τⱼ = 1)
    φ(t) ≈ (1/P) Σ_p Σⱼ τⱼ N(t; θⱼ, σ²)

vᵀ f(H) v = Σᵢ (uᵢᵀv)² f(λᵢ) is the integral of f against the spectral measure seen
from v, and the m-point Gauss quadrature of that integral has nodes θⱼ and weights τⱼ
(Golub & Meurant 1994); E[vvᵀ] = I/n makes its expectation (1/n) tr f(H). The quadrature
is exact for polynomials of degree < 2m, so each probe's moments Σⱼ τⱼθⱼᵏ (k < 2m)
are unbiased estimates of tr(Hᵏ)/n; in particular Σⱼ τⱼθⱼ = vᵀHv (Hutchinson's
estimator, :func:`~keras_optlab.curvature.hessian_trace`, divided by n). The
Gaussian kernel of width σ turns the discrete nodes into a density (it integrates to 1).
Cost: P · m products with H (or G, F). TensorFlow, JAX and PyTorch backends.

**What the density can tell from zero.** A node θⱼ stands for eigenvalues near it only
to within the kernel's width: a bulk of eigenvalues at or near 0 (zero modes — inputs
constant on the data, a rank-deficient Gauss-Newton term — and small eigenvalues of
either sign) gives nodes that straddle 0, and their kernels overlap it. So the summary
splits the quadrature weight three ways at ±kσ, k = ``zero_band`` (default 3: a node at
−3σ puts 99.87% of its kernel below 0):

    negative_mass  = mean_p Σ_{θⱼ < −kσ} τⱼ     (eigenvalues distinguishably < 0)
    near_zero_mass = mean_p Σ_{|θⱼ| ≤ kσ} τⱼ     (not distinguishable from 0)
    positive_mass  = mean_p Σ_{θⱼ > kσ} τⱼ      (the three sum to 1)

With m = n steps each probe's nodes are the eigenvalues it sees, and the three masses are
unbiased estimates of the fractions of eigenvalues below −kσ, within ±kσ and above kσ. On
a positive semi-definite matrix every Ritz value is ≥ λ_min ≥ 0 up to rounding (Cauchy
interlacing), so ``negative_mass`` is 0 for any σ above the rounding of the products —
while the weight at θ < 0 alone, what rounding puts on either side of an exact zero
eigenvalue, is not (tests/curvature/test_density.py).
"""

import dataclasses
import math

import numpy as np

from keras_optlab import _checks
from keras_optlab.curvature.operators import CurvatureOperator, LinearOperator
from keras_optlab.curvature.spectrum import lanczos

PROBES = ("rademacher", "gaussian")
DEFAULT_POINTS = 1000
ZERO_BAND = 3.0  # k: nodes with |θ| ≤ kσ count as not distinguishable from 0


@dataclasses.dataclass(frozen=True)
class SpectralDensity:
    """What :func:`hessian_spectral_density` returns.

    Attributes:
        grid: The points t (float64, ascending).
        density: φ(t) on ``grid`` (integrates to 1 over the real line).
        nodes: One float64 array of Ritz values θⱼ per probe (ascending; fewer than
            ``lanczos_steps`` where Lanczos found an invariant subspace).
        weights: The matching quadrature weights τⱼ (each probe's sum to 1).
        sigma: The Gaussian kernel's standard deviation σ.
        num_parameters: n, the number of trainable parameters.
        curvature: ``"hessian"``, ``"gauss_newton"`` or ``"fisher"``.
        summary: Dict of floats: ``lambda_max`` and ``lambda_min`` (the extreme Ritz
            values over all probes: Lanczos' extreme Ritz values converge to the
            extreme eigenvalues first); ``negative_mass``, ``near_zero_mass`` and
            ``positive_mass`` (the mean over probes of the weight at nodes θ < −kσ,
            |θ| ≤ kσ and θ > kσ: estimates of the fractions of eigenvalues
            distinguishably negative, not distinguishable from 0 and distinguishably
            positive; see the module's docstring), ``zero_band`` (k) and
            ``zero_threshold`` (kσ); ``trace_estimate`` (n · mean Σⱼ τⱼθⱼ) and
            ``trace_standard_error`` (n · the standard error of that mean over probes;
            NaN for one probe), ``num_probes``, ``lanczos_steps`` (the most steps a
            probe took).
    """

    grid: np.ndarray
    density: np.ndarray
    nodes: tuple
    weights: tuple
    sigma: float
    num_parameters: int
    curvature: str
    summary: dict

    def masses(self, threshold=None):
        """The mean over probes of the quadrature weight at nodes θ < −t, |θ| ≤ t and
        θ > t, as ``(negative, near_zero, positive)`` floats (they sum to 1);
        ``threshold`` t ≥ 0, ``None``: the summary's ``zero_threshold`` kσ."""
        t = self.summary["zero_threshold"] if threshold is None else _checks.number("threshold", threshold, low=0.0)
        return _masses(self.nodes, self.weights, t)

    def moments(self, power):
        """Each probe's estimate Σⱼ τⱼθⱼ^power of tr(H^power)/n (a float64 array, one
        entry per probe; unbiased for power < 2 · the probe's steps)."""
        power = _checks.integer("power", power, low=0)
        return np.array([np.sum(w * t**power) for t, w in zip(self.nodes, self.weights)])


def _masses(nodes, weights, threshold):
    parts = np.array([[np.sum(w[t < -threshold]), np.sum(w[np.abs(t) <= threshold]), np.sum(w[t > threshold])]
                      for t, w in zip(nodes, weights)])
    return tuple(float(v) for v in parts.mean(axis=0))


def _probe(rng, n, kind):
    if kind == "rademacher":
        v = rng.integers(0, 2, size=n).astype(np.float64) * 2.0 - 1.0
    else:
        v = rng.standard_normal(n)
    return v / np.linalg.norm(v)


def _check_grid(grid):
    """``grid`` as a number of points (an int >= 2; :data:`DEFAULT_POINTS` for ``None``)
    or as a sorted float64 array of finite points."""
    if grid is None:
        return DEFAULT_POINTS
    if isinstance(grid, (bool, np.bool_)):
        raise TypeError(f"`grid` must be None, a number of points or a 1-d array of points. Received: grid={grid!r}")
    if isinstance(grid, (int, np.integer)):
        return _checks.integer("grid", grid, low=2)
    try:
        values = np.asarray(grid, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`grid` must be None, a number of points or a 1-d array of points. Received: grid={_checks.shown(grid)}"
        ) from error
    if values.ndim != 1 or values.size < 1 or not np.all(np.isfinite(values)):
        raise ValueError(
            "`grid` must be None, a number of points >= 2 or a non-empty 1-d array of finite points. "
            f"Received: grid={_checks.shown(grid)}"
        )
    return np.sort(values)


def _grid(grid, low, high, sigma):
    """The points of the density: ``grid`` itself (an array), or that many points
    (an int) evenly from ``low − 5σ`` to ``high + 5σ``."""
    if isinstance(grid, int):
        return np.linspace(low - 5.0 * sigma, high + 5.0 * sigma, grid)
    return grid


def gaussian_density(grid, nodes, weights, sigma):
    """φ(t) = (1/P) Σ_p Σⱼ τ_pj N(t; θ_pj, σ²) on ``grid`` (``nodes``, ``weights``: one
    array per probe)."""
    theta = np.concatenate(nodes)
    tau = np.concatenate(weights) / len(nodes)
    z = (np.asarray(grid)[:, None] - theta[None, :]) / sigma
    return (np.exp(-0.5 * z * z) @ tau) / (sigma * math.sqrt(2.0 * math.pi))


def hessian_spectral_density(
    model,
    x,
    y=None,
    num_probes=10,
    lanczos_steps=40,
    grid=None,
    sigma=None,
    curvature="hessian",
    seed=0,
    sample_weight=None,
    probe="rademacher",
    batch_size=None,
    zero_band=ZERO_BAND,
):
    """The eigenvalue density of the Hessian of the compiled loss, by stochastic Lanczos
    quadrature (Ghorbani, Krishnan & Xiao 2019; Ubaru, Chen & Saad 2017).

    See the module's docstring for the algorithm. H is applied through Hessian-vector
    products only (or G, F: ``curvature``); the Lanczos vectors live in float64 NumPy.

    Args:
        model: Built, compiled ``keras.Model``.
        x, y: The data the loss is the mean over: one batch, arrays cut by
            ``batch_size``, or ``x`` a data set (``y`` ``None``;
            :mod:`keras_optlab.curvature.data`).
        num_probes: P, the number of random start vectors, >= 1 (>= 2 for a standard
            error).
        lanczos_steps: m, Lanczos steps per probe, >= 1 (capped at n; m = n makes every
            probe's quadrature exact). Memory (m + 1) · n float64.
        grid: Where φ is evaluated: ``None`` (:data:`DEFAULT_POINTS` points), a number
            of points >= 2 (both from λ_min − 5σ to λ_max + 5σ), or a 1-d array of points.
        sigma: The kernel's standard deviation σ > 0; ``None`` (default): 1% of
            λ_max − λ_min (1.0 when every node is the same).
        curvature: ``"hessian"`` (default), ``"gauss_newton"`` or ``"fisher"``.
        seed: Seed of the probes (NumPy ``default_rng``), or ``None``.
        sample_weight: Optional sample weights.
        probe: ``"rademacher"`` (default; ±1/√n entries) or ``"gaussian"``
            (normalized).
        batch_size: With arrays, the samples per product pass (``None``: all at once).
        zero_band: k >= 0: nodes with |θ| ≤ kσ are counted in ``near_zero_mass``, not
            in ``negative_mass`` or ``positive_mass`` (default :data:`ZERO_BAND` = 3).

    Returns:
        :class:`SpectralDensity`.

    Raises:
        NonFiniteError: (a ``ValueError``) the loss on (x, y) is NaN or ±inf, or a
            product is not finite (:mod:`keras_optlab.curvature.hvp`).

    Example:

    >>> result = hessian_spectral_density(model, x, y, num_probes=4, lanczos_steps=30)
    >>> result.summary["lambda_max"], result.summary["negative_mass"], result.summary["near_zero_mass"]
    """
    op = CurvatureOperator(model, x, y, curvature, batch_size, sample_weight,
                           what="keras_optlab.curvature.hessian_spectral_density")
    return estimate_density(op, num_probes=num_probes, lanczos_steps=lanczos_steps, grid=grid, sigma=sigma, seed=seed,
                            probe=probe, zero_band=zero_band)


def estimate_density(op, num_probes=10, lanczos_steps=40, grid=None, sigma=None, seed=0, probe="rademacher",
                     zero_band=ZERO_BAND):
    """The spectral density of any symmetric operator ``op`` (a
    :class:`~keras_optlab.curvature.operators.LinearOperator`: a model's
    :class:`~keras_optlab.curvature.operators.CurvatureOperator`, a ``DenseOperator``
    of a matrix with a designed spectrum, a sum or a block), by stochastic Lanczos
    quadrature; the arguments are :func:`hessian_spectral_density`'s. Returns a
    :class:`SpectralDensity` (``curvature``: the operator's, ``None`` for one that is
    not a model's)."""
    if not isinstance(op, LinearOperator):
        raise TypeError(
            "`op` must be a keras_optlab.curvature.operators.LinearOperator (e.g. curvature.operator(model, x, y)). "
            f"Received: op={_checks.shown(op)}"
        )
    num_probes = _checks.integer("num_probes", num_probes, low=1)
    lanczos_steps = _checks.integer("lanczos_steps", lanczos_steps, low=1)
    sigma = _checks.positive("sigma", sigma, allow_none=True)
    seed = _checks.integer("seed", seed, allow_none=True)
    probe = _checks.one_of("probe", probe, PROBES)
    zero_band = _checks.number("zero_band", zero_band, low=0.0)
    grid = _check_grid(grid)
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    for _ in range(num_probes):
        result = lanczos(op, _probe(rng, op.n, probe), lanczos_steps)
        nodes.append(result.ritz_values)
        weights.append(result.ritz_vectors[0] ** 2)
    low = float(min(t[0] for t in nodes))
    high = float(max(t[-1] for t in nodes))
    if sigma is None:
        sigma = 0.01 * (high - low) if high > low else 1.0
    points = _grid(grid, low, high, sigma)
    firsts = np.array([np.sum(w * t) for t, w in zip(nodes, weights)])
    threshold = zero_band * sigma
    negative, near_zero, positive = _masses(nodes, weights, threshold)
    summary = {
        "lambda_max": high,
        "lambda_min": low,
        "negative_mass": negative,
        "near_zero_mass": near_zero,
        "positive_mass": positive,
        "zero_band": zero_band,
        "zero_threshold": float(threshold),
        "trace_estimate": float(op.n * firsts.mean()),
        "trace_standard_error": float(op.n * firsts.std(ddof=1) / math.sqrt(num_probes)) if num_probes > 1 else math.nan,
        "num_probes": num_probes,
        "lanczos_steps": max(t.size for t in nodes),
    }
    return SpectralDensity(
        grid=points,
        density=gaussian_density(points, nodes, weights, sigma),
        nodes=tuple(nodes),
        weights=tuple(weights),
        sigma=float(sigma),
        num_parameters=op.n,
        curvature=getattr(op, "curvature", None),
        summary=summary,
    )


__all__ = ["ZERO_BAND", "SpectralDensity", "estimate_density", "gaussian_density", "hessian_spectral_density"]
