"""The Hessian, Gauss-Newton and Fisher of a model's loss as linear operators.

Goodfellow et al. (2016), Sec. 8.2.1 and 8.6: the curvature of the cost J(θ) — a mean
over the training set — is a matrix of n² entries that no one forms; what second-order
methods and curvature diagnostics use is its product with vectors. Here it is an object:

    H = keras_optlab.curvature.operator(model, x, y, batch_size=256)   # n × n
    H @ v, H @ V                           # a flat vector (n,) or a matrix of columns (n, k)
    (H + 1e-3 * H.identity()) @ v, H.damped(1e-3), 2.0 * H - G    # scaling, sums, damping
    H.to_scipy()                           # scipy.sparse.linalg.LinearOperator (float64)
    H.to_dense()                           # the n × n matrix (small models)
    H.per_layer()["dense"] @ u             # a layer's diagonal block (a view: nothing copied)

Every curvature function of keras_optlab (``hvp``, ``gradient_curvature``,
``top_eigenvalues``, ``hessian_trace``, ``hessian_diagonal``,
``hessian_spectral_density``) is built on :class:`CurvatureOperator`.

**Vectors** are float64 NumPy arrays over the flattened trainable variables (in the
order of ``model.trainable_variables``, each row-major); :meth:`LinearOperator.split` and
:meth:`LinearOperator.flatten` convert to and from lists shaped like the variables.
Products run in the model's dtype on the backend and are summed in float64 on the host.
Every operator is symmetric (H, G and F are), so ``v @ H`` is ``H @ v``.

**Data** (:mod:`keras_optlab.curvature.data`): one batch ``(x, y, sample_weight)``, arrays
of any length cut into ``batch_size`` slices, a ``tf.data.Dataset``, a
``keras.utils.PyDataset``, a re-iterable of ``(x, y[, sample_weight])`` batches, or a
callable returning a fresh iterator (a Python generator). The operator is the curvature
of the **mean loss over all samples**, the loss ``model.evaluate`` reports on the same
batches: J = Σ_b (N_b/N) J_b, J_b the compiled loss of batch b (``model.compute_loss``,
regularizers included), N_b its number of samples, N = Σ N_b. Under Keras' default
reduction (``"sum_over_batch_size"``: J_b = (1/N_b) Σᵢ wᵢℓᵢ + Ω, the sample weights wᵢ
multiplying the losses and the count N_b — not Σwᵢ — dividing them) this is
(1/N) Σᵢ wᵢℓᵢ + Ω over the whole data, whatever the batches: the result on one batch of
all samples, up to float64 rounding. (Under a loss reduced otherwise, ``"sum"`` or
``"mean_with_sample_weight"``, J depends on the batching, as ``evaluate``'s does.) Each
product is one pass over the data, in order, holding one batch at a time; a matrix of
columns is one pass too (each batch applied to every column). The same data give the
same products, bit for bit.

**Devices** (:mod:`keras_optlab.curvature.devices`): inside a ``tf.distribute`` strategy's
scope (TensorFlow) or under a ``keras.distribution`` distribution (JAX) each batch is
split over the devices and the shares summed; the products equal one device's.

**Newton's products.** :func:`~keras_optlab.curvature.hvp.closure_product` is the same
product on a zero-argument loss closure, traceable (``tf.function``, ``jax.jit``): what
a Hessian-free solver calls inside its compiled step.

TensorFlow, JAX and PyTorch backends.
"""

import numbers

import keras
import numpy as np
from keras import ops

from keras_optlab import _checks
from keras_optlab.curvature import data as data_module
from keras_optlab.curvature import devices
from keras_optlab.curvature.oracle import (
    check_curvature,
    check_product,
    closure_product,
    model_oracle,
    refuse_nonfinite,
)

# Above this many parameters `to_dense` refuses unless told otherwise: the matrix has n²
# entries (4096² float64 = 128 MiB) and costs n products.
MAX_DENSE_SIZE = 4096


def layer_blocks(model):
    """``[(name, indices)]``: the trainable variables of ``model`` grouped by layer.

    ``indices`` index ``model.trainable_variables``; one entry per layer of
    ``model.layers`` that owns trainable variables (a nested model is one layer), in
    order, keyed by ``layer.name``. A variable shared by several layers belongs to the
    first; one that no layer of ``model.layers`` holds (a subclassed model's own weight)
    is a block of its own, keyed by its ``path``.
    """
    index = {id(v): i for i, v in enumerate(model.trainable_variables)}
    blocks, taken = [], set()
    for layer in model.layers:
        mine = [index[id(v)] for v in layer.trainable_variables if id(v) in index and index[id(v)] not in taken]
        if mine:
            taken.update(mine)
            blocks.append((layer.name, mine))
    for i, v in enumerate(model.trainable_variables):
        if i not in taken:
            blocks.append((getattr(v, "path", None) or v.name, [i]))
    return blocks


def blocks_of(op, per_layer):
    """``[(name, operator)]``: each layer's diagonal block of ``op`` given ``per_layer``
    (checked: a bool), else the whole operator under the name ``None``."""
    if not _checks.boolean("per_layer", per_layer):
        return [(None, op)]
    return list(op.per_layer().items())


def _is_scalar(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) or (
        isinstance(value, np.ndarray) and value.ndim == 0 and np.issubdtype(value.dtype, np.number)
    )


class LinearOperator:
    """A symmetric n × n linear operator on float64 vectors over a model's flattened
    trainable variables.

    ``shape`` is ``(n, n)``, ``dtype`` float64. ``A @ v`` takes a flat vector ``(n,)``
    or a matrix of columns ``(n, k)`` (anything NumPy converts to float64 of that shape)
    and returns float64 NumPy of the same shape; ``c * A``, ``A / c``, ``-A``, ``A + B``,
    ``A - B`` (same shape) and :meth:`damped` build new operators (nothing is computed
    until a product); :meth:`block` / :meth:`per_layer` restrict to diagonal blocks,
    :meth:`to_scipy` hands the operator to SciPy and :meth:`to_dense` forms it.

    Attributes:
        shapes: The variables' shapes (the vector's pieces, in order).
        layers: ``[(name, variable indices)]`` of :meth:`per_layer`, or ``None``.
    """

    dtype = np.dtype(np.float64)
    ndim = 2
    __array_ufunc__ = None  # NumPy defers to the operator: `np.float64(2) * A`, `v @ A`

    def __init__(self, shapes, layers=None):
        self.shapes = [tuple(int(d) for d in s) for s in shapes]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.n = int(sum(self.sizes))
        self.layers = layers

    @property
    def shape(self):
        return (self.n, self.n)

    def __repr__(self):
        return f"<{type(self).__name__} {self.n}×{self.n}>"

    # -------------------------------------------------------------- products
    def _matmat(self, matrix):
        """The product with a float64 matrix of shape (n, k): what subclasses define."""
        raise NotImplementedError

    def _operand(self, value, name="v"):
        if isinstance(value, LinearOperator):
            raise TypeError(
                f"`{name}` must be a vector or a matrix of columns; a product of two operators is not formed "
                f"(apply them one after the other). Received: {name}={value!r}"
            )
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"`{name}` must be a numeric vector of shape ({self.n},) or matrix of shape ({self.n}, k). "
                f"Received: {name}={_checks.shown(value)}"
            ) from error
        if array.ndim not in (1, 2) or array.shape[0] != self.n or (array.ndim == 2 and array.shape[1] == 0):
            raise ValueError(
                f"`{name}` must be a vector of shape ({self.n},) or a matrix of shape ({self.n}, k), k >= 1, for an "
                f"operator of shape {self.shape}. Received: {name} of shape {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(
                f"`{name}` must be finite. Received: {name} with {int(np.count_nonzero(~np.isfinite(array)))} "
                "non-finite entries"
            )
        return array

    def matvec(self, v):
        """A v for a flat vector ``v`` of shape (n,): float64 of shape (n,)."""
        v = self._operand(v)
        if v.ndim != 1:
            raise ValueError(f"`v` must be a vector of shape ({self.n},). Received: v of shape {v.shape}")
        return self._matmat(v[:, None])[:, 0]

    def matmat(self, matrix):
        """A M for a matrix ``matrix`` of shape (n, k): float64 of shape (n, k)."""
        matrix = self._operand(matrix, "matrix")
        if matrix.ndim != 2:
            raise ValueError(f"`matrix` must have shape ({self.n}, k). Received: matrix of shape {matrix.shape}")
        return self._matmat(matrix)

    def __matmul__(self, other):
        other = self._operand(other)
        return self._matmat(other[:, None])[:, 0] if other.ndim == 1 else self._matmat(other)

    def __rmatmul__(self, other):
        # vᵀA = (A v)ᵀ: every operator here is symmetric. A matrix of rows (k, n).
        other = np.asarray(other, dtype=np.float64)
        if other.ndim == 2:
            return self.__matmul__(other.T).T
        return self.__matmul__(other)

    __call__ = matvec

    # -------------------------------------------------------------- algebra
    def _scalar(self, value, name="scalar"):
        if not _is_scalar(value):
            raise TypeError(f"`{name}` must be a real number. Received: {name}={_checks.shown(value)}")
        return _checks.number(name, value)

    def _same_shape(self, other):
        if not isinstance(other, LinearOperator):
            raise TypeError(
                "An operator is added to another keras_optlab operator of the same shape (for H + λI: "
                f"`H.damped(λ)` or `H + λ * H.identity()`). Received: {_checks.shown(other)}"
            )
        if other.shapes != self.shapes:
            raise ValueError(
                f"Operators over different variables cannot be added: shapes {self.shape} with variables "
                f"{self.shapes} and {other.shape} with {other.shapes}."
            )
        return other

    def __mul__(self, scalar):
        return _Scaled(self, self._scalar(scalar))

    __rmul__ = __mul__

    def __truediv__(self, scalar):
        scalar = self._scalar(scalar)
        if scalar == 0.0:
            raise ValueError("An operator cannot be divided by 0. Received: scalar=0")
        return _Scaled(self, 1.0 / scalar)

    def __neg__(self):
        return _Scaled(self, -1.0)

    def __pos__(self):
        return self

    def __add__(self, other):
        if isinstance(other, numbers.Number) and not isinstance(other, bool) and other == 0:
            return self  # sum([A, B]) starts from 0
        return _Sum([self, self._same_shape(other)], [1.0, 1.0])

    def __radd__(self, other):
        return self.__add__(other)

    def __sub__(self, other):
        return _Sum([self, self._same_shape(other)], [1.0, -1.0])

    def identity(self):
        """I over the same variables (same ``shapes`` and ``layers``)."""
        return Identity(self.shapes, self.layers)

    def damped(self, damping):
        """A + λI, λ = ``damping`` >= 0 (Levenberg–Marquardt damping, Sec. 8.6.1)."""
        damping = _checks.number("damping", damping, low=0.0)
        return self + damping * self.identity()

    # -------------------------------------------------------------- blocks
    def block(self, variable_indices):
        """The diagonal block on the variables ``variable_indices`` (indices into
        ``shapes``, distinct, in any order): u ↦ (A ū)_b, ū = u on the block's
        parameters and zero elsewhere. A new operator; this one is not changed."""
        if isinstance(variable_indices, (numbers.Integral, np.integer)) and not isinstance(variable_indices, bool):
            variable_indices = [variable_indices]
        if isinstance(variable_indices, (str, bytes)) or not hasattr(variable_indices, "__iter__"):
            raise TypeError(
                "`variable_indices` must be a list of variable indices. Received: "
                f"variable_indices={_checks.shown(variable_indices)}"
            )
        indices = [_checks.integer("variable_indices", i, low=0, high=len(self.shapes) - 1) for i in variable_indices]
        if not indices or len(set(indices)) != len(indices):
            raise ValueError(
                "`variable_indices` must be a non-empty list of distinct variable indices. Received: "
                f"variable_indices={_checks.shown(list(variable_indices))}"
            )
        return _Block(self, indices)

    def per_layer(self):
        """``{layer name: block}``: each layer's diagonal block (:func:`layer_blocks`)."""
        if self.layers is None:
            raise ValueError(f"{self!r} has no layers (it was not built from a model). Use `block(variable_indices)`.")
        return {name: self.block(indices) for name, indices in self.layers}

    # -------------------------------------------------------------- conversions
    def split(self, flat):
        """A flat vector as a list of float64 arrays shaped like ``shapes``."""
        flat = np.asarray(flat, dtype=np.float64)
        parts = np.split(flat, np.cumsum(self.sizes)[:-1])
        return [p.reshape(s) for p, s in zip(parts, self.shapes)]

    @staticmethod
    def flatten(tensors):
        """A list of arrays or tensors as one flat float64 vector."""
        return np.concatenate([np.asarray(ops.convert_to_numpy(t), dtype=np.float64).ravel() for t in tensors])

    def to_scipy(self):
        """This operator as a ``scipy.sparse.linalg.LinearOperator`` (float64, symmetric:
        ``rmatvec`` is ``matvec``), for ``eigsh``, ``cg``, ``minres`` and SciPy's operator
        algebra. SciPy is not a dependency of keras_optlab: an ``ImportError`` says so."""
        try:
            from scipy.sparse.linalg import LinearOperator as ScipyLinearOperator
        except ImportError as error:
            raise ImportError(
                "LinearOperator.to_scipy needs SciPy, which keras_optlab does not depend on: `pip install scipy`."
            ) from error

        def matvec(v):
            return self.matvec(np.ravel(v))

        def matmat(m):
            return self.matmat(np.asarray(m).reshape(self.n, -1))

        return ScipyLinearOperator(self.shape, matvec=matvec, rmatvec=matvec, matmat=matmat, rmatmat=matmat,
                                   dtype=np.float64)

    def to_dense(self, max_size=MAX_DENSE_SIZE):
        """The n × n float64 matrix, by n products (columns of I; on a data set one pass).
        Refused (``ValueError``) above ``max_size`` parameters (default
        :data:`MAX_DENSE_SIZE`): n² entries, n products."""
        max_size = _checks.integer("max_size", max_size, low=1)
        if self.n > max_size:
            raise ValueError(
                f"to_dense forms {self.n}² entries by {self.n} products; refused above max_size={max_size} "
                f"parameters. Raise `max_size` if that is meant. Received: an operator of shape {self.shape}"
            )
        return self._matmat(np.eye(self.n))


class Identity(LinearOperator):
    """I: ``identity()`` of another operator (its ``shapes`` and ``layers``)."""

    def _matmat(self, matrix):
        return np.array(matrix, dtype=np.float64, copy=True)


class DenseOperator(LinearOperator):
    """A symmetric matrix held in memory as an operator (a reference, a test, a small
    model's ``to_dense()``). ``shapes`` default to one flat variable."""

    def __init__(self, matrix, shapes=None, layers=None):
        try:
            matrix = np.asarray(matrix, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(f"`matrix` must be a numeric square matrix. Received: matrix={_checks.shown(matrix)}") from error
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
            raise ValueError(f"`matrix` must be a non-empty square matrix. Received: matrix of shape {matrix.shape}")
        super().__init__(shapes if shapes is not None else [(matrix.shape[0],)], layers)
        if self.n != matrix.shape[0]:
            raise ValueError(f"`shapes` must hold {matrix.shape[0]} entries in all. Received: shapes={self.shapes}")
        self.matrix = matrix

    def _matmat(self, matrix):
        return self.matrix @ matrix


class _Scaled(LinearOperator):
    def __init__(self, inner, scale):
        super().__init__(inner.shapes, inner.layers)
        self.inner, self.scale = inner, scale

    def _matmat(self, matrix):
        return self.scale * self.inner._matmat(matrix)

    def __repr__(self):
        return f"{self.scale:g} * {self.inner!r}"


class _Sum(LinearOperator):
    def __init__(self, terms, scales):
        flat_terms, flat_scales = [], []
        for term, scale in zip(terms, scales):  # (A + B) + C: one sum of three
            if isinstance(term, _Sum):
                flat_terms.extend(term.terms)
                flat_scales.extend(scale * s for s in term.scales)
            else:
                flat_terms.append(term)
                flat_scales.append(scale)
        super().__init__(terms[0].shapes, next((t.layers for t in terms if t.layers is not None), None))
        self.terms, self.scales = flat_terms, flat_scales

    def _matmat(self, matrix):
        out = np.zeros_like(matrix)
        for term, scale in zip(self.terms, self.scales):
            out += scale * term._matmat(matrix)
        return out

    def __repr__(self):
        return " + ".join(f"{s:g} * {t!r}" for t, s in zip(self.terms, self.scales))


class _Block(LinearOperator):
    """The diagonal block of ``parent`` on some of its variables: a view, the parent
    untouched."""

    def __init__(self, parent, variable_indices):
        offsets = np.concatenate([[0], np.cumsum(parent.sizes)]).astype(int)
        super().__init__([parent.shapes[i] for i in variable_indices])
        self.parent = parent
        self.variable_indices = list(variable_indices)
        self.keep = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in variable_indices])

    def _matmat(self, matrix):
        full = np.zeros((self.parent.n, matrix.shape[1]))
        full[self.keep] = matrix
        return self.parent._matmat(full)[self.keep]

    def __repr__(self):
        return f"<block {self.variable_indices} of {self.parent!r}>"


class CurvatureOperator(LinearOperator):
    """H, G or F of ``model``'s compiled loss, the mean over the samples of a data
    source (see the module's docstring), at the model's current weights.

    Build it with :func:`operator`. Each product reads the weights as they are then
    (the operator holds the model, not a copy of its weights). Products are checked:
    a non-finite loss, gradient or product on any batch raises
    :class:`~keras_optlab.curvature.NonFiniteError`.

    Attributes:
        model: The model.
        curvature: ``"hessian"``, ``"gauss_newton"`` or ``"fisher"``.
        data: The :class:`~keras_optlab.curvature.data.Batches` of the data.
        num_samples: N, the samples of a pass (``None`` for a data set before its first
            pass).
    """

    def __init__(self, model, x, y=None, curvature="hessian", batch_size=None, sample_weight=None,
                 what="keras_optlab.curvature.operator"):
        self.oracle = model_oracle(model, what)
        self.curvature = check_curvature(curvature)
        self.data = data_module.batches(x, y, sample_weight, batch_size)
        self.model, self.what = model, what
        self.variables = list(model.trainable_variables)
        super().__init__([tuple(v.shape) for v in self.variables], layer_blocks(model))
        self._product = self.oracle.operator(self.curvature)

    def __repr__(self):
        return f"<CurvatureOperator {self.curvature} of {self.model.name!r}, {self.n}×{self.n}>"

    @property
    def num_samples(self):
        return self.data.num_samples

    @property
    def single_batch(self):
        """One batch in memory on one device: the fused, unsplit traced functions apply."""
        return self.data.single and devices.tf_strategy(self.model) is None

    def _tensors(self, flat):
        parts = np.split(np.asarray(flat), np.cumsum(self.sizes)[:-1])
        return [ops.convert_to_tensor(p.reshape(v.shape), dtype=v.dtype) for p, v in zip(parts, self.variables)]

    def _batch_product(self, batch, vectors):
        product, finite, loss = self._product(*batch, vectors)
        # No figure from a non-finite loss, gradient or product (the flags come from the
        # same trace as the product): NonFiniteError.
        check_product(self.what, self.model, self.curvature, finite, loss)
        return product

    def _matmat(self, matrix):
        columns = [self._tensors(matrix[:, j]) for j in range(matrix.shape[1])]
        if self.data.single:
            out = np.empty_like(matrix)
            for j, vectors in enumerate(columns):
                out[:, j] = self.flatten(self._batch_product(self.data.batch, vectors))
            return out
        total, count = np.zeros_like(matrix), 0
        for batch in self.data:
            n = _batch_size(batch)
            for j, vectors in enumerate(columns):
                total[:, j] += n * self.flatten(self._batch_product(batch, vectors))
            count += n
        return total / count

    def apply(self, vectors):
        """C v for ``vectors`` shaped like the trainable variables (checked by the caller):
        a list of backend tensors in the variables' dtypes. On one batch the product
        stays on the device; otherwise it is the float64 mean, cast back."""
        if self.data.single:
            return list(self._batch_product(self.data.batch, vectors))
        flat = self._matmat(self.flatten(vectors)[:, None])[:, 0]
        return self._tensors(flat)

    def loss_and_gradient(self):
        """(J, g): the mean loss (a float) and its gradient (flat float64) over the data,
        one pass; a :class:`~keras_optlab.curvature.NonFiniteError` for a non-finite loss
        or gradient on any batch."""
        total_loss, total_grad, count = 0.0, np.zeros(self.n), 0
        single = self.data.single
        for batch in self.data:
            loss, grads = self.oracle.value_and_gradient(*batch)
            loss, grad = float(ops.convert_to_numpy(loss)), self.flatten(grads)
            refuse_nonfinite(self.what, self.model, loss, bool(np.all(np.isfinite(grad))))
            if single:
                return loss, grad
            n = _batch_size(batch)
            total_loss += n * loss
            total_grad += n * grad
            count += n
        return total_loss / count, total_grad / count


def _batch_size(batch):
    return int(keras.tree.flatten(batch[0])[0].shape[0])


def operator(model, x, y=None, curvature="hessian", batch_size=None, sample_weight=None):
    """The curvature of ``model``'s compiled loss over ``x`` as a :class:`CurvatureOperator`.

    Args:
        model: A built, compiled ``keras.Model``.
        x: Inputs (arrays, with ``y`` and ``sample_weight``) or a data set: a
            ``tf.data.Dataset``, a ``keras.utils.PyDataset``, a re-iterable of
            ``(x, y[, sample_weight])`` batches or a callable returning a fresh iterator
            (how to pass a generator); see :mod:`keras_optlab.curvature.data`.
        y: Targets, with arrays ``x``; ``None`` with a data set.
        curvature: ``"hessian"`` (default), ``"gauss_newton"`` or ``"fisher"`` (see
            :mod:`keras_optlab.curvature.hvp`).
        batch_size: With arrays, the samples per product pass (``None``: all at once);
            the result is the same up to rounding, the memory one batch's.
        sample_weight: Per-sample weights, with arrays, as ``fit`` takes them.

    Returns:
        :class:`CurvatureOperator` (n × n, n the number of trainable parameters).

    Example:

    >>> H = operator(model, x_train, y_train, batch_size=256)
    >>> Hv = H @ np.ones(H.shape[0])
    >>> scipy.sparse.linalg.eigsh(H.to_scipy(), k=1, which="LA")
    """
    return CurvatureOperator(model, x, y, curvature, batch_size, sample_weight)


__all__ = [
    "CurvatureOperator",
    "DenseOperator",
    "Identity",
    "LinearOperator",
    "MAX_DENSE_SIZE",
    "blocks_of",
    "closure_product",
    "layer_blocks",
    "operator",
]
