"""Hessian spectrum from Hessian-vector products: top eigenvalues and the trace.

Neither function forms H: both only apply it to vectors, through the model's
:class:`~keras_optlab.curvature.operators.CurvatureOperator` (double backprop,
Pearlmutter 1994; one batch or a whole data set). The vector algebra runs in float64
NumPy on the flattened parameter vector (n = number of trainable parameters); H v runs
in the model's own dtype. TensorFlow, JAX and PyTorch backends.

* :func:`top_eigenvalues` — Lanczos (1950) with full reorthogonalization, or power
  iteration with deflation. The largest eigenvalue λ_max bounds the stable learning rate
  of gradient descent on the local quadratic model, ε < 2/λ_max (Goodfellow et al. 2016,
  Sec. 8.2.1 and 4.3.1).
* :func:`hessian_trace` — Hutchinson's (1989) and Hutch++ (Meyer et al. 2021) estimators
  of tr H (:mod:`keras_optlab.curvature.estimators`, re-exported here).
* :func:`lanczos` — the one Lanczos tridiagonalization of keras_optlab, shared by
  :func:`top_eigenvalues` and the spectral density
  (:mod:`keras_optlab.curvature.density`).

Both take ``curvature="gauss_newton"`` or ``"fisher"`` (G or F in place of H, see
:mod:`keras_optlab.curvature.hvp`) and ``per_layer=True`` (each layer's diagonal block,
:func:`layer_blocks`; a dict keyed by layer name).
"""

import collections
import math

import numpy as np
from keras import ops

from keras_optlab import _checks
from keras_optlab.curvature.along_gradient import curvature_report
from keras_optlab.curvature.operators import CurvatureOperator, blocks_of, layer_blocks
from keras_optlab.curvature.oracle import check_batch, model_oracle, refuse_nonfinite, sum_dtype


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


Tridiagonal = collections.namedtuple("Tridiagonal", ["ritz_values", "ritz_vectors", "basis", "steps"])
Tridiagonal.__doc__ = """What :func:`lanczos` returns: the eigenpairs (θ, S) of the final
tridiagonal T = QᵀHQ (``ritz_values`` ascending, ``ritz_vectors`` the columns of S), the
orthonormal Lanczos basis Q (``steps`` rows) and the number of steps taken."""


def lanczos(matvec, v0, steps, done=None, rng=None):
    """Lanczos (1950) tridiagonalization of a symmetric operator, full reorthogonalization.

    From the unit vector q₁ = ``v0``: w = H qⱼ − αⱼqⱼ − βⱼ₋₁qⱼ₋₁ with αⱼ = qⱼᵀHqⱼ,
    w orthogonalized twice against every earlier q (Kahan–Parlett "twice is enough"),
    βⱼ = ‖w‖, qⱼ₊₁ = w/βⱼ. After step j the eigenpairs of the j×j tridiagonal T (α on
    the diagonal, β beside it) are the Ritz pairs; ``done(theta, s, beta)`` may stop
    the iteration there (the residual of Ritz pair i is |β sᵢ,ⱼ|). Stops after
    ``steps`` steps (at most n), when ``done`` says so, or when the Krylov space is
    invariant (β ≤ 1e-12 ‖T‖): then, given ``rng``, it restarts in the orthogonal
    complement with a random vector (β = 0: T splits into blocks; the first block holds
    q₁'s spectrum, so quadrature weights e₁ᵀS are unchanged), else it stops.

    The one Lanczos of keras_optlab: :func:`top_eigenvalues` (extreme Ritz pairs) and
    :func:`~keras_optlab.curvature.density.hessian_spectral_density` (Gauss quadrature
    nodes θ and weights (e₁ᵀs)²) both run it. Memory: (steps + 1) · n float64.

    Returns:
        :class:`Tridiagonal` ``(ritz_values, ritz_vectors, basis, steps)``.
    """
    n = v0.size
    m = min(steps, n)
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
        invariant = beta <= 1e-12 * max(float(np.max(np.abs(theta))), np.finfo(np.float64).tiny)
        if (done is not None and done(theta, s, beta)) or j + 1 == m or (invariant and rng is None):
            break
        if invariant:  # restart in the complement
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
    return Tridiagonal(theta, s, basis[: len(alphas)], len(alphas))


def _converged(theta, s, beta, k, tol):
    """Whether each of the top ``k`` Ritz values θ (of T's eigenpairs ``theta``, ``s``)
    has residual ‖H y − θ y‖ = |β sⱼ| ≤ tol · max(|θ₁|, tiny), or the Krylov space is
    invariant (β ≤ 1e-12 · max(|θ₁|, tiny)); never before k steps."""
    if theta.size < k:
        return False
    top = np.argsort(theta)[::-1][:k]
    scale = max(abs(theta[top[0]]), np.finfo(np.float64).tiny)
    return bool(np.all(np.abs(beta * s[-1, top]) <= tol * scale) or beta <= 1e-12 * scale)


def _lanczos(matvec, n, k, max_iterations, tol, v0, rng):
    """Top-k Ritz pairs of a symmetric operator by :func:`lanczos`.

    Stops when every one of the top k Ritz values θ has residual ‖H y − θ y‖ =
    |β_j s_j| ≤ tol · max(|θ_1|, tiny), when the Krylov space is invariant (after at
    least k steps; before, it restarts), or after ``max_iterations`` (at most n) steps.
    """

    def done(theta, s, beta):
        return _converged(theta, s, beta, k, tol)

    result = lanczos(matvec, v0, max_iterations, done, rng)
    top = np.argsort(result.ritz_values)[::-1][:k]
    vectors = result.basis.T @ result.ritz_vectors[:, top]
    return result.ritz_values[top], vectors.T, result.steps


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
    y=None,
    k=1,
    method="lanczos",
    max_iterations=100,
    tol=1e-6,
    seed=0,
    sample_weight=None,
    initial_vector=None,
    return_eigenvectors=False,
    curvature="hessian",
    per_layer=False,
    return_vectors=None,
    batch_size=None,
):
    """The k largest eigenvalues of the Hessian of the model's compiled loss on (x, y).

    Algebraically largest, in decreasing order (λ_max first); negative values appear when
    the batch sits near a saddle point. H is applied through :func:`hvp` only
    (Pearlmutter 1994); vectors live in float64.

    * ``method="lanczos"`` (default): Lanczos iteration (Lanczos 1950) with full
      reorthogonalization (:func:`lanczos`); stops when each of the top k Ritz pairs has
      residual ``‖Hy − θy‖ ≤ tol · |θ_1|``. Extreme eigenvalues converge in a few tens
      of HVPs. Memory: ``(max_iterations + 1) · n`` float64.
    * ``method="power"``: power iteration with deflation (PyHessian's approach), shifted
      by the smallest eigenvalue when the dominant one is negative; stops when the
      Rayleigh quotient changes by less than ``tol`` (relative). Slow when λ_1 ≈ λ_2.

    Args:
        model: Built, compiled ``keras.Model``.
        x, y: The data the loss is the mean over: one batch, arrays cut by
            ``batch_size``, or ``x`` a data set (``y`` ``None``;
            :mod:`keras_optlab.curvature.data`).
        k: Number of eigenvalues, ``1 <= k <= n``.
        method: ``"lanczos"`` or ``"power"``.
        max_iterations: Lanczos steps in all (capped at n), or power iterations per
            eigenvalue.
        tol: Relative tolerance, > 0.
        seed: Seed of the random start vector (NumPy ``default_rng``).
        sample_weight: Optional sample weights.
        initial_vector: Optional start vector (list shaped like
            ``model.trainable_variables``, or flat) — a warm start, e.g. the previous
            top eigenvector. Not with ``per_layer``.
        return_eigenvectors: Also return the eigenvectors, as lists shaped like
            ``model.trainable_variables`` (NumPy float64).
        curvature: ``"hessian"`` (default), ``"gauss_newton"`` (G = JᵀH_LJ) or
            ``"fisher"`` (empirical Fisher), see :mod:`keras_optlab.curvature.hvp`.
        per_layer: Instead, the top k eigenvalues of each layer's diagonal block of the
            matrix (the curvature of that layer's parameters with every other one held
            fixed; :func:`layer_blocks`), k capped at the block's size. (Lanczos from
            one start vector finds each distinct eigenvalue once: the block of a
            linear output layer under a squared loss is a Kronecker product with the
            identity of the outputs, each of its eigenvalues repeated K times.)
        return_vectors: The same as ``return_eigenvectors`` (the name of issue 15);
            ``None`` (default) defers to it; ``False`` with ``return_eigenvectors=True``
            is a ``ValueError``.
        batch_size: With arrays, the samples per product pass (``None``: all at once).

    Returns:
        NumPy float64 array of shape ``(k,)``; with ``return_eigenvectors``, the pair
        ``(values, vectors)``. With ``per_layer``, a dict ``{layer name: that}``, the
        vectors shaped like the layer's variables.
   
    Raises:
        NonFiniteError: (a ``ValueError``) the loss on (x, y) is NaN or ±inf, or a
            product is not finite (:mod:`keras_optlab.curvature.hvp`); no eigenvalue is
            computed from it.
    """
    op = CurvatureOperator(model, x, y, curvature, batch_size, sample_weight, what="keras_optlab.curvature.top_eigenvalues")
    k = _checks.integer("k", k, low=1)
    if k > op.n:
        raise ValueError(f"`k` must be <= the number of trainable parameters ({op.n}). Received: k={k}")
    max_iterations = _checks.integer("max_iterations", max_iterations, low=1)
    tol = _checks.positive("tol", tol)
    method = _checks.one_of("method", method, ("lanczos", "power"))
    seed = _checks.integer("seed", seed, allow_none=True)
    return_eigenvectors = _checks.boolean("return_eigenvectors", return_eigenvectors)
    if return_vectors is not None:
        return_vectors = _checks.boolean("return_vectors", return_vectors)
        if return_eigenvectors and not return_vectors:
            raise ValueError(
                "`return_vectors` is another name of `return_eigenvectors`: give one, or both alike. "
                f"Received: return_vectors={return_vectors}, return_eigenvectors={return_eigenvectors}"
            )
        return_eigenvectors = return_vectors
    blocks = blocks_of(op, per_layer)
    if per_layer and initial_vector is not None:
        raise ValueError(
            "`initial_vector` is a start vector of the whole model; with per_layer=True every block starts "
            f"from a random vector. Received: initial_vector={_checks.shown(initial_vector)}"
        )
    rng = np.random.default_rng(seed)
    solver = _lanczos if method == "lanczos" else _power
    results = {}
    for name, block in blocks:
        v0 = _start_vector(block, seed, initial_vector) if name is None else _start_vector(block, int(rng.integers(2**31)), None)
        values, vectors, _ = solver(block, block.n, min(k, block.n), max_iterations, tol, v0, rng)
        values = np.asarray(values, dtype=np.float64)
        results[name] = (values, [block.split(v) for v in vectors]) if return_eigenvectors else values
    return results if per_layer else results[None]


WarmStart = collections.namedtuple("WarmStart", ["basis", "coefficients"])
WarmStart.__doc__ = """The Ritz vector y = Qᵀs of a :func:`gradient_curvature_and_lambda_max`
call, kept as its Lanczos basis Q (a backend tensor, on the device) and the
coefficients s (NumPy): the next call forms y where Q is."""


def gradient_curvature_and_lambda_max(model, x, y=None, sample_weight=None, max_iterations=5, tol=1e-6, seed=0,
                                      warm_start=None, what="keras_optlab.curvature.gradient_curvature_and_lambda_max"):
    """:func:`~keras_optlab.curvature.gradient_curvature` and λ_max of
    :func:`top_eigenvalues` on one batch, in one compiled call: what
    :class:`~keras_optlab.callbacks.CurvatureMonitor` measures.

    The same numbers as ``gradient_curvature(model, x, y)`` and ``top_eigenvalues(model,
    x, y, max_iterations=max_iterations, tol=tol, initial_vector=y₀)`` (y₀ the previous
    call's Ritz vector, or the random start of ``seed``) up to rounding, for less: the
    gradient is linearized once (the forward and backward pass are not repeated for
    each of the ``max_iterations + 1`` products; :mod:`keras_optlab.curvature.autodiff`),
    the Lanczos recurrence (:func:`lanczos`, unrolled) runs in the same trace, and one
    small vector (the loss, gᵀg, gᵀHg and T's entries) comes back to the host, where
    T's Ritz values are read step by step and the iteration "stops" where
    :func:`lanczos` would. The basis stays on the device: ``warm_start`` (a
    :class:`WarmStart` returned by the previous call, or ``None``) starts the next call
    from the Ritz vector without a transfer. Vectors in float64 (float32 on JAX
    outside its 64-bit mode). One batch on one device only: ``x`` arrays (no
    ``batch_size``) and no ``tf.distribute`` strategy — the callers check.

    Returns:
        ``(report, lambda_max, warm_start)``: the dict of ``gradient_curvature`` (loss,
        g_norm_sq, gHg, critical_learning_rate), λ_max (a float) and the
        :class:`WarmStart` of the next call.

    Raises:
        NonFiniteError: as ``gradient_curvature`` and ``top_eigenvalues`` do (the loss,
            the gradient, H g or a product H qⱼ of the steps read is not finite).
    """
    oracle = model_oracle(model, what)
    x, y, sample_weight = check_batch(x, y, sample_weight)
    max_iterations = _checks.integer("max_iterations", max_iterations, low=1)
    n = int(sum(int(np.prod(v.shape)) for v in model.trainable_variables))
    steps = min(max_iterations, n)
    dtype = sum_dtype()
    if not isinstance(warm_start, WarmStart) or tuple(warm_start.basis.shape) != (steps, n):
        start = np.zeros((steps, n))
        start[0] = np.random.default_rng(seed).standard_normal(n)  # as top_eigenvalues' first start
        basis, coefficients = ops.convert_to_tensor(start, dtype=dtype), np.eye(steps)[0]
    else:
        basis, coefficients = warm_start
    numbers, basis = oracle.measurement(steps)(x, y, sample_weight, basis, ops.convert_to_tensor(coefficients, dtype=dtype))
    numbers = np.asarray(ops.convert_to_numpy(numbers), dtype=np.float64)
    loss, g_norm_sq, ghg = (float(t) for t in numbers[:3])
    alphas, betas, finite = numbers[3 : 3 + steps], numbers[3 + steps : 3 + 2 * steps], numbers[3 + 2 * steps :]
    refuse_nonfinite(what, model, loss, math.isfinite(g_norm_sq), math.isfinite(ghg), "Hessian-vector product H g (gᵀHg)")
    for j in range(steps):
        if not finite[j]:
            refuse_nonfinite(what, model, loss, True, False)
        tri = np.diag(alphas[: j + 1]) + np.diag(betas[:j], 1) + np.diag(betas[:j], -1)
        theta, s = np.linalg.eigh(tri)
        if _converged(theta, s, betas[j], 1, tol):
            break
    top = int(np.argmax(theta))
    coefficients = np.zeros(steps)
    coefficients[: theta.size] = s[:, top]
    return curvature_report(loss, g_norm_sq, ghg, None), float(theta[top]), WarmStart(basis, coefficients)


# Hutchinson's and Hutch++ trace estimators live in estimators.py; their names stay
# importable from here, where they were first.
from keras_optlab.curvature.estimators import TraceEstimate, hessian_trace  # noqa: E402

__all__ = ["TraceEstimate", "Tridiagonal", "hessian_trace", "lanczos", "layer_blocks", "top_eigenvalues"]
