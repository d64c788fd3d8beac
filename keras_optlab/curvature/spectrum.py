"""Hessian spectrum from Hessian-vector products: top eigenvalues and the trace.

Neither function forms H: both only apply it to vectors (:func:`~keras_optlab.curvature.hvp.hvp`,
double backprop, Pearlmutter 1994). The vector algebra runs in float64 NumPy on the
flattened parameter vector (n = number of trainable parameters); H v runs in the model's
own dtype. TensorFlow, JAX and PyTorch backends.

* :func:`top_eigenvalues` — Lanczos (1950) with full reorthogonalization, or power
  iteration with deflation. The largest eigenvalue λ_max bounds the stable learning rate
  of gradient descent on the local quadratic model, ε < 2/λ_max (Goodfellow et al. 2016,
  Sec. 8.2.1 and 4.3.1).
* :func:`hessian_trace` — Hutchinson's (1989) estimator tr H = E[vᵀHv] over Rademacher v.
"""

import collections

import numpy as np
from keras import ops

from keras_optlab import _checks
from keras_optlab.curvature.hvp import check_batch, model_oracle


class _FlatOperator:
    """v ↦ H v on flattened float64 vectors for one model and one batch."""

    def __init__(self, model, x, y, sample_weight, what):
        self.oracle = model_oracle(model, what)
        self.variables = list(model.trainable_variables)
        self.shapes = [tuple(v.shape) for v in self.variables]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.n = int(sum(self.sizes))
        self.args = check_batch(x, y, sample_weight)

    def split(self, flat):
        parts = np.split(np.asarray(flat), np.cumsum(self.sizes)[:-1])
        return [p.reshape(s) for p, s in zip(parts, self.shapes)]

    def flatten(self, tensors):
        return np.concatenate([np.asarray(ops.convert_to_numpy(t), dtype=np.float64).ravel() for t in tensors])

    def __call__(self, flat):
        vectors = [ops.convert_to_tensor(p, dtype=v.dtype) for p, v in zip(self.split(flat), self.variables)]
        return self.flatten(self.oracle.product(*self.args, vectors))


def _start_vector(op, seed, initial_vector):
    if initial_vector is None:
        v = np.random.default_rng(seed).standard_normal(op.n)
    else:
        try:
            if isinstance(initial_vector, (list, tuple)):
                if len(initial_vector) != len(op.shapes) or any(
                    np.shape(p) != s for p, s in zip(initial_vector, op.shapes)
                ):
                    raise ValueError(
                        "`initial_vector` given as a list must be shaped like `model.trainable_variables` "
                        f"{op.shapes}. Received: shapes {[np.shape(p) for p in initial_vector]}"
                    )
                v = op.flatten(initial_vector)
            else:
                v = np.asarray(initial_vector, dtype=np.float64).ravel()
        except (TypeError,) as error:
            raise TypeError(
                f"`initial_vector` must be numeric. Received: initial_vector={initial_vector!r:.80}"
            ) from error
        if v.shape != (op.n,) or not np.any(v) or not np.all(np.isfinite(v)):
            raise ValueError(
                f"`initial_vector` must be a finite, non-zero vector of {op.n} parameters "
                "(a list shaped like `model.trainable_variables`, or flat). Received: "
                f"initial_vector with {v.size} entries, {int(np.count_nonzero(v))} non-zero, "
                f"{int(np.count_nonzero(~np.isfinite(v)))} non-finite"
            )
    return v / np.linalg.norm(v)


def _lanczos(matvec, n, k, max_iterations, tol, v0, rng):
    """Top-k Ritz pairs of a symmetric operator; full reorthogonalization.

    Stops when every one of the top k Ritz values θ has residual ‖H y − θ y‖ =
    |β_j s_j| ≤ tol · max(|θ_1|, tiny), when the Krylov space is invariant, or after
    ``max_iterations`` (at most n) steps. Memory: (m + 1) · n float64.
    """
    m = min(max_iterations, n)
    basis = np.zeros((m + 1, n))
    basis[0] = v0
    alphas, betas = [], []
    for j in range(m):
        w = matvec(basis[j])
        alpha = float(w @ basis[j])
        w = w - alpha * basis[j] - (betas[-1] * basis[j - 1] if j > 0 else 0.0)
        for _ in range(2):  # twice is enough (Kahan–Parlett "twice is enough")
            w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(np.linalg.norm(w))
        alphas.append(alpha)
        tri = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        theta, s = np.linalg.eigh(tri)
        top = np.argsort(theta)[::-1][:k]
        scale = max(abs(theta[top[0]]), np.finfo(np.float64).tiny)
        residuals = np.abs(beta * s[-1, top])
        invariant = beta <= 1e-12 * scale
        if j + 1 >= k and (np.all(residuals <= tol * scale) or invariant):
            break
        if j + 1 == m:
            break
        if invariant:  # fewer than k Ritz values so far: restart in the complement
            w = rng.standard_normal(n)
            for _ in range(2):
                w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
            beta_next = 0.0
            w /= np.linalg.norm(w)
        else:
            beta_next = beta
            w /= beta
        betas.append(beta_next)
        basis[j + 1] = w
    vectors = basis[: len(alphas)].T @ s[:, top]
    return theta[top], vectors.T, len(alphas)


def _power(matvec, n, k, max_iterations, tol, v0, rng):
    """Top-k eigenpairs (largest algebraic) by power iteration with deflation.

    Power iteration finds the eigenvalue of largest magnitude. When that one is negative
    it is the smallest, μ, and power iteration on H − μI (spectrum ≥ 0) finds the largest.
    Each found eigenvector is projected out of the iterate (deflation).
    """
    values, vectors, used = [], [], 0

    def project(v):
        for u in vectors:
            v = v - (u @ v) * u
        return v

    def run(shift, start):
        nonlocal used
        v = project(start)
        v /= np.linalg.norm(v)
        value = None
        for _ in range(max_iterations):
            w = project(matvec(v) - shift * v)
            used += 1
            new = float(v @ w)
            norm = np.linalg.norm(w)
            if norm == 0.0:
                return shift, v
            v = w / norm
            if value is not None and abs(new - value) <= tol * max(abs(new), np.finfo(np.float64).tiny):
                value = new
                break
            value = new
        return value + shift, v

    for i in range(k):
        start = v0 if i == 0 else rng.standard_normal(n)
        value, v = run(0.0, start)
        if value < 0.0:
            value, v = run(value, v + 1e-3 * rng.standard_normal(n))
        values.append(value)
        vectors.append(v)
    order = np.argsort(values)[::-1]
    return np.asarray(values)[order], np.asarray(vectors)[order], used


def top_eigenvalues(
    model,
    x,
    y,
    k=1,
    method="lanczos",
    max_iterations=100,
    tol=1e-6,
    seed=0,
    sample_weight=None,
    initial_vector=None,
    return_eigenvectors=False,
):
    """The k largest eigenvalues of the Hessian of the model's compiled loss on (x, y).

    Algebraically largest, in decreasing order (λ_max first); negative values appear when
    the batch sits near a saddle point. H is applied through :func:`hvp` only
    (Pearlmutter 1994); vectors live in float64.

    * ``method="lanczos"`` (default): Lanczos iteration (Lanczos 1950) with full
      reorthogonalization; stops when each of the top k Ritz pairs has residual
      ``‖Hy − θy‖ ≤ tol · |θ_1|``. Extreme eigenvalues converge in a few tens of HVPs.
      Memory: ``(max_iterations + 1) · n`` float64.
    * ``method="power"``: power iteration with deflation (PyHessian's approach), shifted
      by the smallest eigenvalue when the dominant one is negative; stops when the
      Rayleigh quotient changes by less than ``tol`` (relative). Slow when λ_1 ≈ λ_2.

    Args:
        model: Built, compiled ``keras.Model``.
        x, y: The batch the loss is evaluated on.
        k: Number of eigenvalues, ``1 <= k <= n``.
        method: ``"lanczos"`` or ``"power"``.
        max_iterations: Lanczos steps in all (capped at n), or power iterations per
            eigenvalue.
        tol: Relative tolerance, > 0.
        seed: Seed of the random start vector (NumPy ``default_rng``).
        sample_weight: Optional sample weights.
        initial_vector: Optional start vector (list shaped like
            ``model.trainable_variables``, or flat) — a warm start, e.g. the previous
            top eigenvector.
        return_eigenvectors: Also return the eigenvectors, as lists shaped like
            ``model.trainable_variables`` (NumPy float64).

    Returns:
        NumPy float64 array of shape ``(k,)``; with ``return_eigenvectors``, the pair
        ``(values, vectors)``.
    """
    op = _FlatOperator(model, x, y, sample_weight, "keras_optlab.curvature.top_eigenvalues")
    k = _checks.integer("k", k, low=1)
    if k > op.n:
        raise ValueError(f"`k` must be <= the number of trainable parameters ({op.n}). Received: k={k}")
    max_iterations = _checks.integer("max_iterations", max_iterations, low=1)
    tol = _checks.positive("tol", tol)
    method = _checks.one_of("method", method, ("lanczos", "power"))
    seed = _checks.integer("seed", seed, allow_none=True)
    return_eigenvectors = _checks.boolean("return_eigenvectors", return_eigenvectors)
    rng = np.random.default_rng(seed)
    v0 = _start_vector(op, seed, initial_vector)
    solver = _lanczos if method == "lanczos" else _power
    values, vectors, _ = solver(op, op.n, k, max_iterations, tol, v0, rng)
    values = np.asarray(values, dtype=np.float64)
    if return_eigenvectors:
        return values, [op.split(v) for v in vectors]
    return values


TraceEstimate = collections.namedtuple("TraceEstimate", ["trace", "standard_error", "num_samples"])
TraceEstimate.__doc__ = """Hutchinson estimate of tr H: ``trace`` (sample mean of vᵀHv),
``standard_error`` (sample standard deviation / √num_samples) and ``num_samples``."""


def hessian_trace(model, x, y, num_samples=100, seed=0, sample_weight=None):
    """Hutchinson's (1989) estimate of the trace of the Hessian of the compiled loss.

    tr H = E[vᵀHv] for v with independent Rademacher (±1) entries; the estimate is the
    mean over ``num_samples`` draws and its standard error is the sample standard
    deviation over √num_samples (the variance of one draw is 2 Σ_{i≠j} H_ij², zero for
    a diagonal H). One HVP per sample.

    Args:
        model: Built, compiled ``keras.Model``.
        x, y: The batch the loss is evaluated on.
        num_samples: Number of Rademacher vectors, >= 2.
        seed: Seed of the Rademacher draws (NumPy ``default_rng``).
        sample_weight: Optional sample weights.

    Returns:
        :class:`TraceEstimate` ``(trace, standard_error, num_samples)``.
    """
    num_samples = _checks.integer("num_samples", num_samples, low=2)
    seed = _checks.integer("seed", seed, allow_none=True)
    op = _FlatOperator(model, x, y, sample_weight, "keras_optlab.curvature.hessian_trace")
    rng = np.random.default_rng(seed)
    samples = np.empty(num_samples)
    for i in range(num_samples):
        v = rng.integers(0, 2, size=op.n).astype(np.float64) * 2.0 - 1.0
        samples[i] = v @ op(v)
    return TraceEstimate(
        float(samples.mean()), float(samples.std(ddof=1) / np.sqrt(num_samples)), num_samples
    )
