"""Stochastic estimators of the trace and the diagonal of a curvature matrix.

From products only (any :class:`~keras_optlab.curvature.operators.LinearOperator`; for a
model, its :class:`~keras_optlab.curvature.operators.CurvatureOperator` over one batch or
a whole data set). v are Rademacher vectors (independent ±1 entries, E[vvᵀ] = I).

* **Hutchinson** (1989): tr A = E[vᵀAv]; the mean of m draws, one product each. The
  variance of one draw is 2 Σ_{i≠j} A_ij² (zero for a diagonal A): a matrix whose weight
  is off the diagonal needs many draws.
* **Hutch++** (Meyer, Musco, Musco & Woodruff 2021, "Hutch++: Optimal Stochastic Trace
  Estimation", SOSA, Algorithm 1): with m products, s = ⌊m/3⌋ of them sketch the range
  of A (Q = orth(A S), S an n×s Rademacher matrix), s more give tr(QᵀAQ) exactly, and
  the other g = m − 2s run Hutchinson on the deflated (I − QQᵀ)A(I − QQᵀ):

      tr A ≈ tr(QᵀAQ) + (1/g) Σᵢ gᵢᵀ(I − QQᵀ) A (I − QQᵀ)gᵢ

  For any orthonormal Q the two terms add up to tr A in expectation (unbiased), and
  the deflation removes the large eigenvalues from Hutchinson's part: for a spectrum
  with a few outliers — a network's Hessian (Sec. 8.2.1) — the error falls like 1/m
  instead of 1/√m. Its ``standard_error`` is the standard error of the Hutchinson part
  given Q (the sample standard deviation of its g draws over √g): given Q, the first
  term is exact and the estimate's whole randomness is that part's.
* **Diagonal** (Bekas, Kokiopoulou & Saad 2007, "An estimator for the diagonal of a
  matrix", Appl. Numer. Math. 57): diag A ≈ (Σₖ vₖ ⊙ Avₖ) ⊘ (Σₖ vₖ ⊙ vₖ), the second sum
  P for Rademacher probes; entry i of one draw is A_ii + Σ_{j≠i} A_ij vᵢvⱼ: exact for a
  diagonal A from one probe, unbiased in general with variance Σ_{j≠i} A_ij² per draw.

Probes are drawn from NumPy's ``default_rng(seed)``, one vector after another, so a seed
gives the same probes whatever the data, the batch size or the devices. Products are
grouped into matrices of columns (one pass over a data set for several probes), at most
``2**26`` float64 entries at a time.
"""

import collections
import dataclasses
import math

import numpy as np

from keras_optlab import _checks
from keras_optlab.curvature.operators import CurvatureOperator, LinearOperator, blocks_of

TRACE_METHODS = ("hutchinson", "hutch++")
# Columns of one product pass: at most this many float64 entries (512 MiB) at a time.
MAX_PROBE_ENTRIES = 2**26

TraceEstimate = collections.namedtuple("TraceEstimate", ["trace", "standard_error", "num_samples"])
TraceEstimate.__doc__ = """An estimate of tr A: ``trace``, its ``standard_error`` and
``num_samples``, the products it took. Hutchinson: the sample mean of vᵀAv and its sample
standard deviation / √num_samples. Hutch++: tr(QᵀAQ) plus the Hutchinson part's mean,
and that part's standard error (given Q, the rest is exact)."""


@dataclasses.dataclass(frozen=True)
class DiagonalEstimate:
    """What :func:`hessian_diagonal` and :func:`estimate_diagonal` return.

    Attributes:
        diagonal: The estimate of diag A, a list of float64 arrays shaped like the
            variables (``model.trainable_variables``, or the operator's ``shapes``).
        standard_error: Each entry's standard error (sample standard deviation over the
            probes / √num_probes), shaped alike.
        num_probes: The probes (one product each).
        trace: Σ of the diagonal estimate: Hutchinson's estimate of tr A from the same
            probes.
        trace_standard_error: Its standard error.
    """

    diagonal: list
    standard_error: list
    num_probes: int
    trace: float
    trace_standard_error: float


def _check_operator(op):
    if not isinstance(op, LinearOperator):
        raise TypeError(
            "`op` must be a keras_optlab.curvature.operators.LinearOperator (e.g. curvature.operator(model, x, y)). "
            f"Received: op={_checks.shown(op)}"
        )
    return op


def _rademacher(rng, n, k):
    """k Rademacher vectors of n entries as the columns of an (n, k) float64 matrix,
    drawn one vector after another."""
    return np.stack([rng.integers(0, 2, size=n).astype(np.float64) * 2.0 - 1.0 for _ in range(k)], axis=1)


def _chunks(n, k):
    step = max(1, min(k, MAX_PROBE_ENTRIES // max(n, 1)))
    return [(start, min(start + step, k)) for start in range(0, k, step)]


def _probe_products(op, rng, k):
    """The quadratic forms vᵀAv of k Rademacher probes (a float64 array of k), in
    passes of at most :data:`MAX_PROBE_ENTRIES` entries."""
    forms = np.empty(k)
    for start, end in _chunks(op.n, k):
        v = _rademacher(rng, op.n, end - start)
        forms[start:end] = np.sum(v * op._matmat(v), axis=0)
    return forms


def _mean_and_error(samples):
    samples = np.asarray(samples, dtype=np.float64)
    error = float(samples.std(ddof=1) / math.sqrt(samples.shape[0])) if samples.shape[0] > 1 else math.nan
    return float(samples.mean()), error


def _hutch_plus_plus(op, rng, num_samples):
    sketch = num_samples // 3
    probes = num_samples - 2 * sketch
    s = _rademacher(rng, op.n, sketch)
    q, _ = np.linalg.qr(op._matmat(s))  # (n, min(n, s)), orthonormal columns
    low_rank = float(np.trace(q.T @ op._matmat(q)))
    forms = np.empty(probes)
    for start, end in _chunks(op.n, probes):
        g = _rademacher(rng, op.n, end - start)
        g -= q @ (q.T @ g)
        forms[start:end] = np.sum(g * op._matmat(g), axis=0)
    mean, error = _mean_and_error(forms)
    return TraceEstimate(low_rank + mean, error, sketch + q.shape[1] + probes)


def _check_trace_arguments(num_samples, method, seed):
    method = _checks.one_of("method", method, TRACE_METHODS)
    low = 4 if method == "hutch++" else 2  # Hutch++: a sketch of >= 1 and >= 2 Hutchinson draws
    num_samples = _checks.integer("num_samples", num_samples, low=low)
    seed = _checks.integer("seed", seed, allow_none=True)
    return num_samples, method, seed


def _trace(op, rng, num_samples, method):
    if method == "hutch++":
        return _hutch_plus_plus(op, rng, num_samples)
    mean, error = _mean_and_error(_probe_products(op, rng, num_samples))
    return TraceEstimate(mean, error, num_samples)


def estimate_trace(op, num_samples=100, method="hutchinson", seed=0):
    """tr A of an operator ``op`` from ``num_samples`` products (see the module's
    docstring): ``method="hutchinson"`` (``num_samples`` >= 2) or ``"hutch++"``
    (>= 4). Returns a :class:`TraceEstimate`."""
    op = _check_operator(op)
    num_samples, method, seed = _check_trace_arguments(num_samples, method, seed)
    return _trace(op, np.random.default_rng(seed), num_samples, method)


def hessian_trace(model, x, y=None, num_samples=100, seed=0, sample_weight=None, curvature="hessian", per_layer=False,
                  method="hutchinson", batch_size=None):
    """An estimate of the trace of the Hessian of the compiled loss: Hutchinson's (1989)
    or Hutch++ (Meyer et al. 2021), with its standard error.

    ``method="hutchinson"`` (default): tr H = E[vᵀHv] for Rademacher v, the mean of
    ``num_samples`` draws, the standard error their sample standard deviation over
    √num_samples (one draw's variance is 2 Σ_{i≠j} H_ij², zero for a diagonal H).
    ``method="hutch++"``: the same number of products spent as a third sketching the top
    of the spectrum, a third computing its trace exactly and a third on Hutchinson's
    estimator of the rest (see :mod:`keras_optlab.curvature.estimators`); far smaller
    errors when a few eigenvalues dominate, as in a network's Hessian. One product per
    sample (a pass over the data for a data set).

    Args:
        model: Built, compiled ``keras.Model``.
        x, y: The data the loss is the mean over: one batch, arrays cut by
            ``batch_size``, or ``x`` a data set (``y`` ``None``).
        num_samples: Products per estimate: >= 2 (Hutchinson), >= 4 (Hutch++).
        seed: Seed of the Rademacher draws (NumPy ``default_rng``), or ``None``.
        sample_weight: Optional sample weights (with arrays).
        curvature: ``"hessian"`` (default), ``"gauss_newton"`` or ``"fisher"`` (the
            trace of G or F; tr F = (1/N) Σᵢ ‖gᵢ‖²).
        per_layer: Instead, the trace of each layer's diagonal block
            (:func:`~keras_optlab.curvature.operators.layer_blocks`), each from
            ``num_samples`` products on that block alone (probes zero elsewhere):
            ``num_samples`` products per layer.
        method: ``"hutchinson"`` (default) or ``"hutch++"``.
        batch_size: With arrays, the samples per product pass (``None``: all at once).

    Returns:
        :class:`TraceEstimate` ``(trace, standard_error, num_samples)``; with
        ``per_layer``, a dict ``{layer name: TraceEstimate}``.

    Raises:
        NonFiniteError: (a ``ValueError``) the loss on a batch is NaN or ±inf, or a
            product is not finite.
    """
    num_samples, method, seed = _check_trace_arguments(num_samples, method, seed)
    op = CurvatureOperator(model, x, y, curvature, batch_size, sample_weight, what="keras_optlab.curvature.hessian_trace")
    rng = np.random.default_rng(seed)
    results = {name: _trace(block, rng, num_samples, method) for name, block in blocks_of(op, per_layer)}
    return results if per_layer else results[None]


def _diagonal(op, rng, num_probes):
    """(the mean of vₖ ⊙ Avₖ over P = ``num_probes`` probes, each entry's standard
    error, each variable's per-probe sum of vₖ ⊙ Avₖ) — in passes, never P × n at once."""
    shift = total = total_sq = None
    offsets = np.cumsum([0] + op.sizes)
    per_variable = np.empty((len(op.sizes), num_probes))
    for start, end in _chunks(op.n, num_probes):
        v = _rademacher(rng, op.n, end - start)
        entries = v * op._matmat(v)  # (n, k): k draws of each diagonal entry
        if shift is None:  # sums of (draw − first draw): no cancellation in the variance
            shift, total, total_sq = entries[:, 0].copy(), np.zeros(op.n), np.zeros(op.n)
        centred = entries - shift[:, None]
        total += centred.sum(axis=1)
        total_sq += (centred**2).sum(axis=1)
        per_variable[:, start:end] = np.add.reduceat(entries, offsets[:-1], axis=0)
    mean = total / num_probes
    variance = np.maximum(total_sq - num_probes * mean**2, 0.0) / (num_probes - 1)
    return shift + mean, np.sqrt(variance / num_probes), per_variable


def _diagonal_estimate(op, mean, error, per_variable, indices, num_probes):
    shapes = [op.shapes[i] for i in indices]
    offsets = np.cumsum([0] + op.sizes)
    keep = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in indices])
    sizes = [op.sizes[i] for i in indices]
    cuts = np.cumsum(sizes)[:-1]
    trace, trace_error = _mean_and_error(per_variable[indices].sum(axis=0))
    return DiagonalEstimate(
        diagonal=[p.reshape(s) for p, s in zip(np.split(mean[keep], cuts), shapes)],
        standard_error=[p.reshape(s) for p, s in zip(np.split(error[keep], cuts), shapes)],
        num_probes=num_probes,
        trace=trace,
        trace_standard_error=trace_error,
    )


def estimate_diagonal(op, num_probes=100, seed=0):
    """diag A of an operator ``op`` by Bekas et al.'s (2007) estimator over
    ``num_probes`` >= 2 Rademacher probes (see the module's docstring); a
    :class:`DiagonalEstimate` shaped like ``op.shapes``."""
    op = _check_operator(op)
    num_probes = _checks.integer("num_probes", num_probes, low=2)
    seed = _checks.integer("seed", seed, allow_none=True)
    mean, error, per_variable = _diagonal(op, np.random.default_rng(seed), num_probes)
    return _diagonal_estimate(op, mean, error, per_variable, list(range(len(op.shapes))), num_probes)


def hessian_diagonal(model, x, y=None, num_probes=100, seed=0, sample_weight=None, curvature="hessian",
                     per_layer=False, batch_size=None):
    """An estimate of the diagonal of the Hessian of the compiled loss: Hutchinson's
    diagonal estimator (Bekas, Kokiopoulou & Saad 2007), diag H ≈ (1/P) Σₖ vₖ ⊙ Hvₖ over
    P Rademacher probes.

    Unbiased; entry i of one draw is H_ii + Σ_{j≠i} H_ij vᵢvⱼ, so the estimate is exact
    from any number of probes when H is diagonal, and its error elsewhere falls like
    1/√P (each entry's standard error is given). The per-layer (and whole) traces come
    from the same probes: the sums of the diagonal's entries, Hutchinson's estimator.
    One product per probe (a pass over the data for a data set); the diagonal of
    BackPACK's and curvlinops' "Hutchinson diagonal".

    Args:
        model: Built, compiled ``keras.Model``.
        x, y: The data (one batch, arrays cut by ``batch_size``, or ``x`` a data set).
        num_probes: P, >= 2.
        seed: Seed of the Rademacher probes (NumPy ``default_rng``), or ``None``.
        sample_weight: Optional sample weights (with arrays).
        curvature: ``"hessian"`` (default), ``"gauss_newton"`` or ``"fisher"``.
        per_layer: Return ``{layer name: DiagonalEstimate}`` of each layer's variables
            (the same probes over the whole model: P products in all, and each layer's
            ``trace`` is the trace of its diagonal block H_ll).
        batch_size: With arrays, the samples per product pass (``None``: all at once).

    Returns:
        :class:`DiagonalEstimate` (lists shaped like ``model.trainable_variables``); with
        ``per_layer``, a dict ``{layer name: DiagonalEstimate}``.

    Raises:
        NonFiniteError: (a ``ValueError``) the loss on a batch is NaN or ±inf, or a
            product is not finite.
    """
    num_probes = _checks.integer("num_probes", num_probes, low=2)
    seed = _checks.integer("seed", seed, allow_none=True)
    op = CurvatureOperator(model, x, y, curvature, batch_size, sample_weight,
                           what="keras_optlab.curvature.hessian_diagonal")
    per_layer = _checks.boolean("per_layer", per_layer)
    mean, error, per_variable = _diagonal(op, np.random.default_rng(seed), num_probes)
    if not per_layer:
        return _diagonal_estimate(op, mean, error, per_variable, list(range(len(op.shapes))), num_probes)
    return {name: _diagonal_estimate(op, mean, error, per_variable, indices, num_probes) for name, indices in op.layers}


__all__ = [
    "DiagonalEstimate",
    "TRACE_METHODS",
    "TraceEstimate",
    "estimate_diagonal",
    "estimate_trace",
    "hessian_diagonal",
    "hessian_trace",
]
