"""Hessian-vector products (Goodfellow et al. 2016, Sec. 8.2.1, 8.6; Pearlmutter 1994).

H v is the derivative of the gradient along v: ∇_θ((∇_θ J)ᵀv) with v held constant
(double backprop, TensorFlow and PyTorch) or the forward-mode derivative of the gradient
(``jax.jvp(jax.grad(J))``, JAX). It costs a few gradients and never forms H. The
per-backend pieces are :mod:`keras_optlab.curvature.autodiff`; everything here is
written once, in ``keras.ops``, for TensorFlow, JAX and PyTorch.

Two levels:

* on a zero-argument loss callable: :func:`loss_and_gradient`, :func:`hvp_from_loss`,
  :func:`gradient_hvp` (the textbook surfaces, custom training loops, Newton);
* on a compiled Keras model: :func:`loss_closure` (the one place where a model's loss is
  built), :func:`model_loss_and_gradient`, :func:`hvp` and the internal
  :func:`model_oracle`, whose functions are traced once per model and reused
  (``tf.function`` on TensorFlow, ``jax.jit`` on JAX; eager on PyTorch).

**Which loss.** The model's compiled loss, as Keras 3 exposes it publicly:
``model.compute_loss(x=x, y=y, y_pred=model(x, training=False), sample_weight=...,
training=False)``. That is the loss ``fit`` minimizes, including the losses Keras adds
to it (``model.losses``: weight and activity regularizers, ``add_loss``) and a subclass'
own ``compute_loss``, without loss scaling. The forward pass runs in inference mode
(``training=False``): dropout is off and batch normalization uses its moving statistics,
so that H is the Hessian of a deterministic function of the weights. (For a model with
several outputs, Keras' ``compute_loss`` also updates the per-output loss trackers that
``fit`` shows; nothing else is changed.)

Backends: TensorFlow, JAX and PyTorch. On any other (``numpy``, ``openvino``) every
public function here raises a ``RuntimeError`` at the call, naming
``keras.backend.backend()``. On JAX, a model being trained by ``fit`` keeps its weights
in the trainer's state: callbacks call ``model.jax_state_sync()`` before measuring.

**Checked at the call** (``TypeError`` for a wrong type, ``ValueError`` for a wrong
value, the argument named and its value echoed): the model (built, compiled, with
trainable variables), the batch (:func:`check_batch`: ``x``, ``y`` and
``sample_weight`` convert to tensors, each has a batch axis, and all hold the same
number of samples), ``vectors`` (a list shaped like the variables), the loss callables
and variables of the low-level functions; and the loss itself, which must be a scalar
(a vector "loss" would otherwise be summed silently by ``tf.GradientTape``).
``tf.Variable`` objects are accepted as variables on TensorFlow only.

**Which curvature** (``curvature=`` of every model-level function, :data:`CURVATURES`):

* ``"hessian"`` — H = ∇²_θ J, the loss above;
* ``"gauss_newton"`` — G = Jᵀ H_L J (Schraudolph 2002; Martens 2010, Sec. 4.2), the loss
  split at the model's outputs z = ``model(x, training=False)``: J the Jacobian ∂z/∂θ,
  H_L the Hessian of ``model.compute_loss(..., y_pred=z)`` in z. Terms of the loss that
  do not go through z (``model.losses``: weight regularizers) add no curvature to G;
* ``"fisher"`` — the empirical Fisher F = (1/N) Σᵢ gᵢgᵢᵀ (Martens 2014, "New insights
  and perspectives on the natural gradient method", Sec. 11), gᵢ = ∇_θ(wᵢ ℓᵢ) the
  gradient of example i's weighted loss (:func:`per_example_losses`; ``model.losses``
  excluded). With Keras' default reduction (``"sum_over_batch_size"``, the batch loss is
  (1/N) Σᵢ wᵢℓᵢ) the mean of the gᵢ is the gradient of the data term.
"""

import weakref

import keras
import numpy as np
from keras import ops

from keras_optlab import _checks
from keras_optlab.curvature.autodiff import for_backend


def check_callable(name, value):
    """``value`` if it is a callable that is not a class, else a ``TypeError``."""
    if not callable(value) or isinstance(value, type):
        raise TypeError(f"`{name}` must be a zero-argument callable (a function). Received: {name}={_checks.shown(value)}")
    return value


def _variable_types():
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return (keras.Variable, tf.Variable), "keras.Variable or tf.Variable"
    return (keras.Variable,), "keras.Variable"


def is_float_dtype(dtype):
    return keras.backend.standardize_dtype(dtype) in ("float16", "bfloat16", "float32", "float64")


def check_variables(variables, name="variables"):
    """``variables`` as a list of float ``keras.Variable``s (or ``tf.Variable``s on
    TensorFlow), non-empty."""
    types, text = _variable_types()
    if isinstance(variables, types):
        variables = [variables]
    if isinstance(variables, (str, bytes)) or not hasattr(variables, "__iter__"):
        raise TypeError(f"`{name}` must be a list of variables. Received: {name}={_checks.shown(variables)}")
    variables = list(variables)
    if not variables:
        raise ValueError(f"`{name}` must hold at least one variable. Received: {name}=[]")
    for v in variables:
        if not isinstance(v, types):
            raise TypeError(
                f"`{name}` must hold {text} objects (a tensor cannot be "
                f"differentiated or updated in place). Received: an entry {_checks.shown(v)}"
            )
        if not is_float_dtype(v.dtype):
            raise ValueError(
                f"`{name}` must hold floating-point variables. Received: variable "
                f"{getattr(v, 'path', v.name)!r} of dtype {keras.backend.standardize_dtype(v.dtype)}"
            )
    return variables


def check_vectors(vectors, variables, name="vectors"):
    """``vectors`` as tensors, one per variable, each shaped (and cast) like it."""
    if isinstance(vectors, (str, bytes)) or not isinstance(vectors, (list, tuple)):
        raise TypeError(
            f"`{name}` must be a list shaped like the variables ({len(variables)} tensors). "
            f"Received: {name}={_checks.shown(vectors)}"
        )
    if len(vectors) != len(variables):
        raise ValueError(
            f"`{name}` must be a list shaped like the variables ({len(variables)} tensors). "
            f"Received: a list of {len(vectors)}"
        )
    out = []
    for v, w in zip(vectors, variables):
        try:
            v = ops.cast(ops.convert_to_tensor(v), w.dtype)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"`{name}` entries must be numeric arrays. Received: {_checks.shown(v)}") from error
        if tuple(v.shape) != tuple(w.shape):
            where = getattr(w, "path", None) or w.name
            raise ValueError(
                f"`{name}` entry for variable {where!r} must have shape {tuple(w.shape)}. "
                f"Received: shape={tuple(v.shape)}"
            )
        out.append(v)
    return out


def loss_and_gradient(loss_fn, variables):
    """(J, ∇J) for a zero-argument ``loss_fn`` differentiated w.r.t. ``variables``
    (``keras.Variable``s; ``tf.Variable``s too on TensorFlow). Missing gradients become
    zeros. ``loss_fn()`` must return a scalar."""
    autodiff = for_backend("keras_optlab.curvature.loss_and_gradient")
    check_callable("loss_fn", loss_fn)
    return autodiff.loss_and_gradient(loss_fn, check_variables(variables))


def hvp_from_loss(loss_fn, variables, vectors):
    """(J, ∇J, H v) of a zero-argument ``loss_fn`` at the current ``variables``.

    ``vectors`` is a list shaped like ``variables``; so are the gradient and the
    product.
    """
    autodiff = for_backend("keras_optlab.curvature.hvp_from_loss")
    check_callable("loss_fn", loss_fn)
    variables = check_variables(variables)
    vectors = check_vectors(vectors, variables)
    return autodiff.hvp(loss_fn, variables, lambda grads: vectors)


def gradient_hvp(loss_fn, variables):
    """(J, g, H g) with g = ∇J: the curvature along the gradient itself.

    What the book's second-order expansion of a gradient step needs (Goodfellow et al.
    2016, Sec. 8.2.1, Eq. 8.10: J(θ − εg) ≈ J(θ) − εgᵀg + ½ε²gᵀHg), for the cost of
    one Hessian-vector product: the gradient is reused as v.
    """
    autodiff = for_backend("keras_optlab.curvature.gradient_hvp")
    check_callable("loss_fn", loss_fn)
    return autodiff.hvp(loss_fn, check_variables(variables), lambda grads: grads)


def gauss_newton_product(outputs_fn, output_loss_fn, variables, vectors):
    """G v with G = Jᵀ H_L J, the (generalized) Gauss-Newton matrix (Schraudolph 2002;
    Martens 2010, Sec. 4.2), for ``outputs_fn()`` → model outputs z(θ) and
    ``output_loss_fn(z)`` → the loss as a function of those outputs.

    G is positive semi-definite wherever the loss is convex in z (squared error,
    cross-entropy on logits), unlike H; it drops the term of H that comes from the
    network's own curvature. Computed without forming anything: J v by forward-mode
    differentiation, H_L (J v) through the loss alone, Jᵀ(·) by one backward pass.
    Curvature of terms that do not go through z (weight regularizers) is not included.
    ``output_loss_fn(z)`` must return a scalar.
    """
    autodiff = for_backend("keras_optlab.curvature.gauss_newton_product")
    check_callable("outputs_fn", outputs_fn)
    check_callable("output_loss_fn", output_loss_fn)
    variables = check_variables(variables)
    vectors = check_vectors(vectors, variables)
    return autodiff.gauss_newton_product(outputs_fn, output_loss_fn, variables, vectors)


# --------------------------------------------------------------------------- models


def _check_model(model, what="keras_optlab.curvature"):
    for_backend(what)
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={_checks.shown(model)}")
    if not model.built:
        raise ValueError(
            f"Model {model.name!r} is not built: call it on data (or build it) first, so that "
            "its trainable variables exist."
        )
    if not getattr(model, "compiled", False) or model.loss is None:
        raise ValueError(
            f"Model {model.name!r} has no compiled loss: call `model.compile(loss=...)` first. "
            "Curvature is measured on the loss `fit` minimizes."
        )
    if not model.trainable_variables:
        raise ValueError(f"Model {model.name!r} has no trainable variables.")


def loss_closure(model, x, y, sample_weight=None):
    """Zero-argument callable J() = the compiled loss of ``model`` on ``(x, y)``.

    ``model.compute_loss(x=x, y=y, y_pred=model(x, training=False),
    sample_weight=sample_weight, training=False)``: the compiled loss plus
    ``model.losses`` (regularizers), forward pass in inference mode. Every model-level
    curvature function of keras_optlab differentiates this closure.
    """
    for_backend("keras_optlab.curvature.loss_closure")
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={_checks.shown(model)}")

    def loss_fn():
        y_pred = model(x, training=False)
        return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)

    return loss_fn


def to_tensors(structure):
    """Convert a (nested) batch to tensors once, before it enters a traced function."""
    if structure is None:
        return None
    return keras.tree.map_structure(ops.convert_to_tensor, structure)


def _leaves(name, structure):
    """[(label, tensor)] of a converted (nested) batch, labels like ``x['image']``."""
    return [
        (name + "".join(f"[{p!r}]" for p in path), leaf) for path, leaf in keras.tree.flatten_with_path(structure)
    ]


def check_batch(x, y, sample_weight=None):
    """``(x, y, sample_weight)`` as tensors, checked before anything is traced.

    Each converts to tensors (a nested structure of arrays is fine: a model with
    several inputs or outputs), every array has a batch (first) axis, and all of them
    hold the same, non-zero number of samples. ``y`` and ``sample_weight`` may be
    ``None``.
    """
    given = {"x": x, "y": y, "sample_weight": sample_weight}
    converted = {}
    for name, value in given.items():
        if value is None:
            if name == "x":
                raise TypeError("`x` must be an array, a tensor or a nested structure of them. Received: x=None")
            converted[name] = None
            continue
        if isinstance(value, (str, bytes)):
            raise TypeError(f"`{name}` must be an array, a tensor or a nested structure of them. Received: {name}={_checks.shown(value)}")
        try:
            converted[name] = to_tensors(value)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"`{name}` must be an array, a tensor or a nested structure of them. "
                f"Received: {name}={_checks.shown(value)}"
            ) from error
    samples = None
    for name in ("x", "y", "sample_weight"):
        if converted[name] is None:
            continue
        leaves = _leaves(name, converted[name])
        if not leaves:
            raise ValueError(f"`{name}` holds no arrays. Received: {name}={_checks.shown(given[name])}")
        for label, leaf in leaves:
            if len(leaf.shape) == 0:
                raise ValueError(
                    f"`{name}` must have a batch (first) axis. Received: {label} of shape () "
                    f"(value {_checks.shown(ops.convert_to_numpy(leaf))})"
                )
            count = leaf.shape[0]
            if count == 0:
                raise ValueError(f"`{name}` must hold at least one sample. Received: {label}.shape={tuple(leaf.shape)}")
            if samples is None:
                samples = (label, leaf, count)
            elif count != samples[2]:
                first_label, first, _ = samples
                raise ValueError(
                    f"`x`, `y` and `sample_weight` must hold the same number of samples (first axis). "
                    f"Received: {first_label}.shape={tuple(first.shape)} but {label}.shape={tuple(leaf.shape)}"
                )
    return converted["x"], converted["y"], converted["sample_weight"]


CURVATURES = ("hessian", "gauss_newton", "fisher")


def check_curvature(curvature):
    """``curvature`` if it is one of :data:`CURVATURES`."""
    return _checks.one_of("curvature", curvature, CURVATURES)


class _Unreduced(keras.losses.Loss):
    """A loss function as a ``keras.losses.Loss`` without reduction (per-sample values)."""

    def __init__(self, fn, dtype=None):
        super().__init__(reduction=None, name=getattr(fn, "__name__", "loss"), dtype=dtype)
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


def per_example_loss_fn(model):
    """The compiled loss of ``model`` as ``f(y_true, y_pred, sample_weight)`` → one
    weighted loss per sample (shape ``(N,)``), not reduced over the batch.

    What ``model.compile(loss=...)`` received, resolved as Keras resolves it
    (``keras.losses.get`` for a name), with reduction ``None``: the per-sample values of
    a ``keras.losses.Loss`` (its ``call``, in its dtype) or of a function go through
    ``keras.losses.Loss.__call__`` with ``reduction=None``, which applies the sample
    weights and a Keras mask and keeps every value. Axes after the batch axis (a sequence's time steps) are averaged, as the default
    ``"sum_over_batch_size"`` reduction averages them. Only one output with one loss is
    supported: a list/dict of losses for several outputs or a loss that
    ``keras.losses.get`` cannot resolve raise ``ValueError``. Not seen: a subclass' own
    ``compute_loss`` and ``compile(loss_weights=...)`` (the per-example loss is the
    compiled loss function's, unscaled).
    """
    loss = model.loss
    if isinstance(loss, dict) and len(loss) == 1:
        loss = next(iter(loss.values()))
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    outputs = getattr(model, "outputs", None)
    if isinstance(loss, (list, tuple, dict)) or (outputs is not None and len(outputs) != 1):
        raise ValueError(
            "curvature='fisher' needs per-example losses, which keras_optlab builds for a model with one "
            f"output and one compiled loss. Received: model {model.name!r} with loss={_checks.shown(model.loss)}"
        )
    resolved = keras.losses.get(loss) if isinstance(loss, str) else loss
    if isinstance(resolved, keras.losses.Loss):
        # Its own `call` (the per-sample values) under Loss.__call__ with reduction None;
        # a copy of the object would go through Keras serialization (custom classes).
        unreduced = _Unreduced(resolved.call, dtype=resolved.dtype)
    elif callable(resolved):
        unreduced = _Unreduced(resolved)
    else:
        raise ValueError(
            f"curvature='fisher' cannot resolve the compiled loss of model {model.name!r} into a "
            f"per-example loss. Received: loss={_checks.shown(model.loss)}"
        )

    def per_example(y_true, y_pred, sample_weight=None):
        values = unreduced(y_true, y_pred, sample_weight=sample_weight)
        if len(values.shape) == 1:
            return values
        k = int(np.prod(values.shape[1:]))
        # The mean over the other axes as a sum times 1/k: Keras 3.15's ops.mean on JAX
        # computes a float64 input in float32.
        return ops.sum(ops.reshape(values, (-1, k)), axis=1) * (1.0 / k)

    return per_example


def per_example_losses(model, x, y, sample_weight=None):
    """The weighted loss of each example, wᵢℓᵢ (shape ``(N,)``), at the current weights,
    forward pass in inference mode (see :func:`per_example_loss_fn`)."""
    _check_model(model, "keras_optlab.curvature.per_example_losses")
    x, y, sample_weight = check_batch(x, y, sample_weight)
    return per_example_loss_fn(model)(y, model(x, training=False), sample_weight)


class _ModelOracle:
    """The traced functions of one model: loss and gradient, H v, G v, F v, and (gᵀg, gᵀHg).

    Each is compiled once by the backend's adapter (``tf.function`` with
    ``reduce_retracing=True``, so a new batch size retraces at most once; ``jax.jit``
    with the model's variables as arguments; eager on torch). Held in a per-model cache
    (:func:`model_oracle`) and rebuilt when the model is recompiled with another loss or
    its trainable variables change.
    """

    def __init__(self, model, autodiff):
        self.key = _oracle_key(model)
        model_ref = weakref.ref(model)  # the cache must not keep the model alive
        state = list(model.variables) + list(model.metrics_variables)

        def closure(x, y, sample_weight):
            model = model_ref()
            return loss_closure(model, x, y, sample_weight), model.trainable_variables

        def value_and_gradient(x, y, sample_weight):
            return autodiff.loss_and_gradient(*closure(x, y, sample_weight))

        def product(x, y, sample_weight, vectors):
            return autodiff.hvp(*closure(x, y, sample_weight), lambda grads: vectors)[2]

        def curvature(x, y, sample_weight):
            # Dot products in float64 whatever the variables' dtype: gᵀg and gᵀHg are
            # sums of up to millions of terms.
            loss, grads, hg = autodiff.hvp(*closure(x, y, sample_weight), lambda grads: grads)
            g64 = [ops.cast(g, "float64") for g in grads]
            g_norm_sq = sum(ops.sum(g * g) for g in g64)
            ghg = sum(ops.sum(g * ops.cast(h, "float64")) for g, h in zip(g64, hg))
            return ops.cast(loss, "float64"), g_norm_sq, ghg

        def split_at_outputs(x, y, sample_weight):
            model = model_ref()

            def outputs_fn():
                return model(x, training=False)

            def output_loss_fn(y_pred):
                return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)

            return outputs_fn, output_loss_fn

        def gauss_newton(x, y, sample_weight, vectors):
            return autodiff.gauss_newton_product(*split_at_outputs(x, y, sample_weight), model_ref().trainable_variables, vectors)

        def fisher(x, y, sample_weight, vectors):
            # F v = (1/N) Jᵀ(J v), J the N×n Jacobian of the per-example losses z(θ) = (wᵢℓᵢ):
            # the Gauss-Newton product of z under the loss ½‖z‖²/N (whose Hessian in z is
            # I/N), i.e. one forward-mode J v and one backward Jᵀu whatever N, instead of N
            # per-example gradients (a loop of N backward passes, or per-example vmaps that
            # only JAX and torch have). The adapters' gauss_newton_product does both.
            model = model_ref()
            per_example = self.per_example

            def losses_fn():
                return per_example(y, model(x, training=False), sample_weight)

            def half_mean_square(z):  # ½‖z‖²/N (N dynamic inside a relaxed TF trace)
                return 0.5 * ops.sum(z * z) / ops.cast(ops.shape(z)[0], z.dtype)

            return autodiff.gauss_newton_product(losses_fn, half_mean_square, model.trainable_variables, vectors)

        self.per_example = None  # per_example_loss_fn(model), built at the first F v
        self.value_and_gradient = autodiff.compiled(value_and_gradient, state)
        self.product = autodiff.compiled(product, state)
        self.curvature = autodiff.compiled(curvature, state)
        self.gauss_newton = autodiff.compiled(gauss_newton, state)
        self._fisher = autodiff.compiled(fisher, state)
        self.model_ref = model_ref

    def fisher(self, x, y, sample_weight, vectors):
        if self.per_example is None:
            self.per_example = per_example_loss_fn(self.model_ref())
        return self._fisher(x, y, sample_weight, vectors)

    def operator(self, curvature):
        """The product v ↦ C v (a function of ``(x, y, sample_weight, vectors)``) of
        ``curvature``: H, G or F (see the module's docstring)."""
        return {"hessian": self.product, "gauss_newton": self.gauss_newton, "fisher": self.fisher}[curvature]


def _oracle_key(model):
    return (id(model.loss), tuple(id(v) for v in model.trainable_variables))


_ORACLES = weakref.WeakKeyDictionary()


def model_oracle(model, what="keras_optlab.curvature"):
    """The cached :class:`_ModelOracle` of ``model`` (built, compiled)."""
    _check_model(model, what)
    oracle = _ORACLES.get(model)
    if oracle is None or oracle.key != _oracle_key(model):
        oracle = _ORACLES[model] = _ModelOracle(model, for_backend(what))
    return oracle


def model_loss_and_gradient(model, x, y, sample_weight=None):
    """(J, ∇J) of the compiled loss of ``model`` on ``(x, y)``; the gradient is a list
    shaped like ``model.trainable_variables``."""
    oracle = model_oracle(model, "keras_optlab.curvature.model_loss_and_gradient")
    return oracle.value_and_gradient(*check_batch(x, y, sample_weight))


def hvp(model, x, y, vectors, sample_weight=None, curvature="hessian"):
    """Hessian-vector product H v of the compiled loss of ``model`` on ``(x, y)``
    (or G v, F v: ``curvature``).

    H is the Hessian of J(θ) = ``model.compute_loss(x, y, model(x, training=False),
    sample_weight)`` (regularization losses included, as in ``fit``) with respect to
    ``model.trainable_variables``, at their current values. Computed by double
    backpropagation or forward-over-reverse (Pearlmutter 1994; Goodfellow et al. 2016,
    Sec. 8.2.1 and 8.6.1), a few gradients' cost, H never formed. Traced once per model
    and reused. TensorFlow, JAX and PyTorch backends.

    Args:
        model: A built, compiled ``keras.Model``.
        x, y: One batch of inputs and targets (the whole batch is one loss evaluation).
        vectors: List of tensors shaped like ``model.trainable_variables``.
        sample_weight: Optional sample weights, as in ``fit``.
        curvature: ``"hessian"`` (H v, default), ``"gauss_newton"`` (G v = Jᵀ H_L J v)
            or ``"fisher"`` (F v = (1/N) Σᵢ gᵢ (gᵢᵀv), the empirical Fisher); see the
            module's docstring for what each includes.

    Returns:
        List of backend tensors shaped like ``model.trainable_variables``.

    Example:

    >>> v = [keras.ops.ones_like(w) for w in model.trainable_variables]
    >>> hv = hvp(model, x, y, v)
    """
    oracle = model_oracle(model, "keras_optlab.curvature.hvp")
    curvature = check_curvature(curvature)
    batch = check_batch(x, y, sample_weight)
    vectors = check_vectors(vectors, model.trainable_variables)
    return oracle.operator(curvature)(*batch, vectors)

