"""Gradient clipping against the notes' cliffs (Goodfellow et al. 2016, Sec. 8.2.4, 10.11.1).

A cliff is a region where several large weights multiply into a huge gradient: one
step −εg taken there throws the parameters far away. Clipping bounds the step. Every
function here is pure — it takes gradients (and, for adaptive clipping, the weights) and
returns new gradients plus a boolean scalar that says whether clipping changed anything
— so each is tested alone; the optimizers in :mod:`keras_optlab.optimizers` call them
from their ``clipnorm``/``clipvalue``/``global_clipnorm``/``adaptive_clipnorm`` arguments.

All functions are written in ``keras.ops`` and accept ``None`` entries (variables without
a gradient), which they pass through. TensorFlow ``IndexedSlices`` (sparse gradients of
embeddings) are clipped through their ``values``, as ``tf.clip_by_norm`` does.

Thresholds are checked (finite, > 0; TypeError for a non-number) and ``grads`` must be
a list or tuple, as everywhere in keras_optlab (``_checks``).

Norms of float16/bfloat16 gradients are accumulated in float32 so that squaring does not
overflow; the clipped gradients keep their own dtype.
"""

import keras
from keras import ops

from keras_optlab import _checks

__all__ = [
    "global_norm",
    "all_finite",
    "clip_by_value",
    "clip_by_norm",
    "clip_by_global_norm",
    "adaptive_clip",
    "unit_norms",
    "gradient_list",
]

_HALF = ("float16", "bfloat16")


def _is_slices(g):
    return type(g).__name__ == "IndexedSlices"


def _is_bcoo(g):
    return type(g).__name__ == "BCOO" and type(g).__module__.startswith("jax.experimental.sparse")


def is_sparse(g):
    """Whether ``g`` is a sparse gradient (TF ``IndexedSlices`` or JAX ``BCOO``)."""
    return _is_slices(g) or _is_bcoo(g)


def _values(g):
    """The stored values of a gradient (``IndexedSlices.values``, ``BCOO.data``)."""
    if _is_slices(g):
        return g.values
    if _is_bcoo(g):
        return g.data
    return g


def _rewrap(g, values):
    if _is_slices(g):
        return type(g)(values, g.indices, g.dense_shape)
    if _is_bcoo(g):
        return type(g)((values, g.indices), shape=g.shape)
    return values


def densify(g):
    """A dense tensor for any gradient (a sparse one scattered into zeros, duplicate
    indices summed)."""
    if _is_slices(g):
        import tensorflow as tf  # IndexedSlices only exist on the TF backend.

        # tf's own conversion: Keras' convert_to_tensor(sparse=False) fails on an
        # IndexedSlices whose indices are a Python tuple (Keras' own tests make them so).
        return tf.convert_to_tensor(g)
    if _is_bcoo(g):
        return g.todense()
    return g


def _accumulation_dtype(x):
    dtype = keras.backend.standardize_dtype(x.dtype)
    return "float32" if dtype in _HALF else dtype


def _sum_squares(x, axis=None, keepdims=False):
    x = ops.cast(x, _accumulation_dtype(x))
    return ops.sum(ops.square(x), axis=axis, keepdims=keepdims)


def gradient_list(grads, name="grads"):
    """``grads`` as a list; a single tensor, a string or a dict is a ``TypeError``."""
    if not isinstance(grads, (list, tuple)):
        raise TypeError(
            f"`{name}` must be a list or tuple of gradients (tensors or None). "
            f"Received: {name} of type {type(grads).__name__}"
        )
    for i, g in enumerate(grads):
        if g is not None and not is_sparse(g) and (isinstance(g, (str, bytes)) or not hasattr(g, "shape")):
            raise TypeError(f"`{name}[{i}]` must be a tensor or None. Received: {name}[{i}]={g!r}")
    return list(grads)


def _false():
    return ops.convert_to_tensor(False)


def global_norm(grads):
    """‖g‖ over every gradient together, as a scalar of the widest gradient dtype
    (float64 when any gradient is float64, else float32).

    The norm is NaN or Inf when any entry is.
    """
    grads = gradient_list(grads)
    parts = [_sum_squares(_values(g)) for g in grads if g is not None]
    if not parts:
        return ops.convert_to_tensor(0.0, "float32")
    wide = "float64" if any(keras.backend.standardize_dtype(p.dtype) == "float64" for p in parts) else "float32"
    return ops.sqrt(ops.sum(ops.stack([ops.cast(p, wide) for p in parts])))


def _torch_finite(x):
    """On the PyTorch backend, ``all(isfinite(x))`` in one read of ``x``, or ``None``
    when ``x`` is not a dense, non-empty torch tensor.

    torch's ``isfinite`` builds ``abs(x)`` and two boolean tensors (eager, nothing
    fuses them): about 10× the cost of ``aminmax``, which reads ``x`` once and
    propagates NaN, so min and max are both finite exactly when every entry is
    (−Inf is the min, +Inf the max, NaN both). TensorFlow's ``IsFinite`` is one
    kernel and XLA (JAX) fuses isfinite into the reduction: they keep the plain form.
    """
    import torch

    if not torch.is_tensor(x) or x.layout != torch.strided or x.numel() == 0 or not x.is_floating_point():
        return None
    low, high = torch.aminmax(x)
    return torch.logical_and(torch.isfinite(low), torch.isfinite(high))


def _finite(x):
    if keras.backend.backend() == "torch":
        flag = _torch_finite(x)
        if flag is not None:
            return flag
    return ops.all(ops.isfinite(x))


def all_finite(grads):
    """A boolean scalar: True when no gradient entry is NaN or ±Inf."""
    grads = gradient_list(grads)
    checks = [_finite(_values(g)) for g in grads if g is not None]
    if not checks:
        return ops.convert_to_tensor(True)
    return ops.all(ops.stack(checks))


def _per_tensor(grads, clip_one):
    """Apply ``clip_one(values) -> (values, changed)`` to every gradient tensor."""
    out, changed = [], _false()
    for g in grads:
        if g is None:
            out.append(g)
            continue
        values, c = clip_one(_values(g))
        changed = ops.logical_or(changed, c)
        out.append(_rewrap(g, values))
    return out, changed


def clip_by_value(grads, clipvalue):
    """Clip every entry into [−clipvalue, clipvalue] (``clipvalue`` finite, > 0).
    Returns (grads, changed)."""
    grads = gradient_list(grads)
    clipvalue = _checks.positive("clipvalue", clipvalue)
    return _per_tensor(grads, lambda v: (ops.clip(v, -clipvalue, clipvalue), ops.any(ops.abs(v) > clipvalue)))


def _larger(x, y):
    """max(x, y) element-wise in the inputs' dtype, NaN in ``x`` kept.

    Not ``ops.maximum``: on the PyTorch backend (Keras 3.15) it resolves the result
    dtype from the torch dtypes as floatx, so the maximum of two float64 tensors comes
    back float32 (a 1e-8 error in a float64 clipping scale).
    """
    return ops.where(y > x, y, x)


def _scale_to(norm, threshold, dtype):
    """threshold / max(norm, threshold), cast to ``dtype``: 1 when norm ≤ threshold."""
    norm = ops.cast(norm, dtype)
    # convert_to_tensor(dtype=…), not cast: casting a Python float goes through
    # float32 on TensorFlow and would round a float64 threshold.
    threshold = ops.convert_to_tensor(threshold, dtype)
    return threshold / _larger(norm, threshold)


def clip_by_norm(grads, clipnorm):
    """Rescale each gradient tensor whose own norm exceeds ``clipnorm`` to that norm.

    g ← g · clipnorm / max(‖g‖, clipnorm), per tensor (Keras' ``clipnorm``).
    Returns (grads, changed).
    """
    grads = gradient_list(grads)
    clipnorm = _checks.positive("clipnorm", clipnorm)

    def clip_one(v):
        norm = ops.sqrt(_sum_squares(v))
        return ops.multiply(v, _scale_to(norm, clipnorm, v.dtype)), norm > clipnorm

    return _per_tensor(grads, clip_one)


def clip_by_global_norm(grads, clipnorm, norm=None):
    """Rescale all gradients together when their global norm exceeds ``clipnorm``.

    g ← g · clipnorm / max(‖g‖_global, clipnorm) (the book's Eq. 10.48, and Keras'
    ``global_clipnorm``). ``norm`` may pass an already computed :func:`global_norm`.
    Returns (grads, changed).
    """
    grads = gradient_list(grads)
    clipnorm = _checks.positive("clipnorm", clipnorm)
    if norm is None:
        norm = global_norm(grads)
    out = [
        None if g is None else _rewrap(g, ops.multiply(_values(g), _scale_to(norm, clipnorm, _values(g).dtype)))
        for g in grads
    ]
    return out, norm > clipnorm


def unit_norms(x):
    """Norm of each unit of ``x``: over every axis but the last; a 1-D tensor's
    units are its entries and a scalar is one unit."""
    rank = len(x.shape)
    if rank <= 1:
        return ops.abs(ops.cast(x, _accumulation_dtype(x)))
    return ops.sqrt(_sum_squares(x, axis=tuple(range(rank - 1)), keepdims=True))


def adaptive_clip(grads, params, clipnorm, eps=1e-3):
    """Unit-wise adaptive gradient clipping (Brock et al. 2021, "High-Performance
    Large-Scale Image Recognition Without Normalization", Sec. 4.1).

    For every unit i (see :func:`unit_norms`):
    g_i ← g_i · min(1, λ · max(‖w_i‖, eps) / ‖g_i‖), with λ = ``clipnorm``.
    A sparse gradient is made dense first, since a unit spans every row.
    Returns (grads, changed).
    """
    grads = gradient_list(grads)
    params = gradient_list(params, "params")
    if len(params) != len(grads):
        raise ValueError(
            f"`params` must hold one weight per gradient. Received: len(params)={len(params)}, "
            f"len(grads)={len(grads)}"
        )
    clipnorm = _checks.positive("clipnorm", clipnorm)
    eps = _checks.positive("eps", eps)
    out, changed = [], _false()
    for g, w in zip(grads, params):
        if g is None:
            out.append(g)
            continue
        g = ops.convert_to_tensor(densify(g))
        w = ops.convert_to_tensor(w)
        g_norm = unit_norms(g)
        w_norm = unit_norms(w)
        wide = w_norm.dtype
        max_norm = ops.convert_to_tensor(clipnorm, wide) * _larger(w_norm, ops.convert_to_tensor(eps, wide))
        max_norm = ops.cast(max_norm, g_norm.dtype)
        too_big = g_norm > max_norm
        changed = ops.logical_or(changed, ops.any(too_big))
        # where() keeps 0/0 out of units whose gradient is zero.
        factor = ops.where(too_big, max_norm / ops.where(too_big, g_norm, 1.0), 1.0)
        out.append(ops.multiply(g, ops.cast(factor, g.dtype)))
    return out, changed
