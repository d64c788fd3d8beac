"""The two ways a closure optimizer's algorithm runs: traced ``keras.ops``, or eager
PyTorch with its control scalars on the host.

The algorithms of the closure wing — the line searches, L-BFGS's two-loop recursion,
nonlinear CG's β, Newton's conjugate gradient — are written once against the small
namespace ``xp`` defined twice here:

* :data:`TRACED` — ``keras.ops``. Every value is a backend tensor; loops are
  ``ops.while_loop``/``ops.fori_loop`` and branches are selects, so one function holds a
  whole solve and ``tf.function`` or ``jax.jit`` traces it once (TensorFlow, JAX).
* :data:`HOST_TORCH` — PyTorch run eagerly, the way ``torch.optim.LBFGS`` runs: vectors
  are torch tensors; the scalars that steer the control flow (losses, slopes, step
  lengths, flags, counters) are NumPy float64/int/bool values on the host; loops are
  Python loops and a select takes one branch. Keras' own ``ops.while_loop`` on torch is
  a Python loop too, but it syncs a tensor flag every turn, and a select computes both
  branches; each ``keras.ops`` call also costs 6–12× the torch call it wraps on the CPU
  (``ops.sum(a * b)`` against ``torch.dot``, measured with 1,000-vectors).

Scalars follow IEEE arithmetic in both (NumPy scalars under ``np.errstate``: a select
may evaluate a quotient or a root it then discards, as traced code does).

The namespace is what the algorithms call:

``dot(a, b)``, ``norm_inf(v)``, ``all_finite(v)`` (vector → scalar); ``axpy(y, a, x)``
(y + a·x, one pass on torch); ``flat(tensors, dtype)``, ``unflat(vector, like)`` (the
variables' tensors as one vector and back);
``where(c, a, b)``, ``lnot``, ``land``, ``lor``, ``isfinite``, ``sqrt``, ``abs``,
``sign``, ``larger``, ``smaller`` (scalars, and ``where`` on vectors too);
``scalar(value, like)`` (a scalar of ``like``'s kind), ``integer(value)``,
``scalars(n, like)`` (a vector of ``n`` zero scalars: a tensor, or a NumPy array),
``increment(counter, flag)`` (``counter`` + 1 where ``flag``, in the counter's dtype);
``while_loop(cond, body, state)``, ``fori_loop(lower, upper, body, carry)``
(``state``/``carry`` a tuple); ``row(matrix, i)``, ``set_row(matrix, i, vector)``,
``entry(vector, i)``, ``set_entry(vector, i, scalar)`` (``i`` an integer scalar;
``set_*`` return the updated array and may update it in place).
"""

import numpy as np
from keras import ops

from keras_optlab.curvature.autodiff import common


class _Traced:
    """``keras.ops``: every value a tensor, everything traceable."""

    host = False

    @staticmethod
    def dot(a, b):
        # A sum of products, not ops.dot: Keras 3.15's torch matmul/dot compute float64
        # in float32 (keras_optlab's float64 paths stay float64-accurate).
        return ops.sum(a * b)

    @staticmethod
    def norm_inf(v):
        return ops.max(ops.abs(v))

    @staticmethod
    def axpy(y, a, x):
        return y + a * x

    flat = staticmethod(common.flat)
    unflat = staticmethod(common.unflat)

    @staticmethod
    def all_finite(v):
        return ops.all(ops.isfinite(v))

    where = staticmethod(ops.where)
    lnot = staticmethod(ops.logical_not)
    land = staticmethod(ops.logical_and)
    lor = staticmethod(ops.logical_or)
    isfinite = staticmethod(ops.isfinite)
    sqrt = staticmethod(ops.sqrt)
    abs = staticmethod(ops.abs)
    sign = staticmethod(ops.sign)

    # Larger/smaller by a select: Keras 3.15's torch maximum/minimum/clip resolve a
    # float64 pair to float32 (its dtypes.result_type).
    @staticmethod
    def larger(a, b):
        return ops.where(a > b, a, b)

    @staticmethod
    def smaller(a, b):
        return ops.where(a < b, a, b)

    @staticmethod
    def scalar(value, like):
        return ops.cast(value, like.dtype) if hasattr(like, "dtype") else ops.convert_to_tensor(value)

    @staticmethod
    def integer(value):
        return ops.convert_to_tensor(value, "int32")

    @staticmethod
    def scalars(n, like):
        return ops.zeros((n,), like.dtype)

    @staticmethod
    def increment(counter, flag):
        return counter + ops.cast(flag, counter.dtype)

    @staticmethod
    def while_loop(cond, body, state):
        return ops.while_loop(cond, body, state)

    @staticmethod
    def fori_loop(lower, upper, body, carry):
        return ops.fori_loop(lower, upper, lambda i, c: body(i, *c), carry)

    @staticmethod
    def row(matrix, i):
        return ops.take(matrix, i, axis=0)

    @staticmethod
    def set_row(matrix, i, vector):
        return ops.scatter_update(matrix, ops.reshape(i, (1, 1)), ops.expand_dims(ops.cast(vector, matrix.dtype), 0))

    @staticmethod
    def entry(vector, i):
        return ops.take(vector, i, axis=0)

    @staticmethod
    def set_entry(vector, i, value):
        return ops.scatter_update(vector, ops.reshape(i, (1, 1)), ops.reshape(ops.cast(value, vector.dtype), (1,)))


class _HostTorch:
    """Eager torch vectors, NumPy host scalars, Python control flow."""

    host = True

    def __init__(self):
        self._torch = None

    @property
    def torch(self):
        if self._torch is None:
            import torch  # noqa: PLC0415 - only when the torch path runs

            self._torch = torch
        return self._torch

    def dot(self, a, b):
        return np.float64(self.torch.dot(a, b).item())

    def axpy(self, y, a, x):
        return self.torch.add(y, x, alpha=float(a))

    def flat(self, tensors, dtype):
        """``dtype`` a torch dtype; the tensors are already in it (gradients of the
        variables) or are cast."""
        return self.torch.cat([t.reshape(-1) if t.dtype == dtype else t.reshape(-1).to(dtype) for t in tensors])

    def unflat(self, vector, like):
        sizes = [common.size(v.shape) for v in like]
        return [piece.view(tuple(v.shape)) for piece, v in zip(self.torch.split(vector, sizes), like)]

    def norm_inf(self, v):
        return np.float64(self.torch.max(self.torch.abs(v)).item()) if v.numel() else np.float64(0.0)

    def all_finite(self, v):
        return bool(self.torch.isfinite(v).all().item())

    @staticmethod
    def where(c, a, b):
        return a if c else b

    @staticmethod
    def lnot(c):
        return not c

    @staticmethod
    def land(a, b):
        return bool(a) and bool(b)

    @staticmethod
    def lor(a, b):
        return bool(a) or bool(b)

    @staticmethod
    def isfinite(s):
        return bool(np.isfinite(s))

    @staticmethod
    def sqrt(s):
        return np.sqrt(np.float64(s))

    @staticmethod
    def abs(s):
        return np.abs(np.float64(s))

    @staticmethod
    def sign(s):
        return np.sign(np.float64(s))

    @staticmethod
    def larger(a, b):
        return a if a > b else b

    @staticmethod
    def smaller(a, b):
        return a if a < b else b

    @staticmethod
    def scalar(value, like=None):
        return np.float64(value)

    @staticmethod
    def integer(value):
        return int(value)

    @staticmethod
    def scalars(n, like=None):
        return np.zeros(n)

    @staticmethod
    def increment(counter, flag):
        return counter + int(bool(flag))

    @staticmethod
    def while_loop(cond, body, state):
        with np.errstate(all="ignore"):
            while cond(*state):
                state = tuple(body(*state))
        return state

    @staticmethod
    def fori_loop(lower, upper, body, carry):
        with np.errstate(all="ignore"):
            for i in range(int(lower), int(upper)):
                carry = tuple(body(i, *carry))
        return carry

    @staticmethod
    def row(matrix, i):
        # The rows as views, made once per matrix (indexing makes a new view each time,
        # ~6 µs: a fifth of a two-loop's host time on a 100-parameter problem).
        rows = matrix.__dict__.get("_optlab_rows")
        if rows is None:
            rows = matrix._optlab_rows = matrix.unbind(0)
        return rows[int(i)]

    @staticmethod
    def set_row(matrix, i, vector):
        matrix[int(i)] = vector
        return matrix

    @staticmethod
    def entry(vector, i):
        return np.float64(vector[int(i)])

    @staticmethod
    def set_entry(vector, i, value):
        vector[int(i)] = float(value)
        return vector


TRACED = _Traced()
HOST_TORCH = _HostTorch()


def for_backend(backend):
    """The namespace a closure optimizer runs with on ``backend``."""
    return HOST_TORCH if backend == "torch" else TRACED
