"""A compiled model's loss, and the traced functions of its curvature: the machinery
under :mod:`keras_optlab.curvature.hvp` and :mod:`keras_optlab.curvature.operators`.

What each function computes — which loss, which curvature, the non-finite checks — is
described in :mod:`keras_optlab.curvature.hvp`, which re-exports every public name here.

* argument checks: :func:`check_callable`, :func:`check_variables`,
  :func:`check_vectors`, :func:`check_batch`, :func:`check_curvature`;
* :func:`closure_product` — the curvature product of one loss closure, traceable;
* :func:`loss_closure` — a model's compiled loss on a batch as a closure;
* :func:`per_example_loss_fn`, :func:`per_example_losses`, :func:`output_link`;
* :class:`NonFiniteError`, :func:`refuse_nonfinite`, :func:`check_product`;
* :func:`model_oracle` — the per-model cache of traced functions (loss and gradient,
  H v, G v, F v, the fused gᵀg and gᵀHg), one per batch signature and per
  ``tf.distribute`` strategy (:mod:`keras_optlab.curvature.devices`);
* :func:`model_loss_and_gradient`.
"""

import sys
import weakref

import keras
import numpy as np
from keras import ops

from keras_optlab import _checks, _keras_hooks
from keras_optlab.curvature import devices
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
        _checks.float64_available(f"{name}: variable {getattr(v, 'path', v.name)!r}.dtype",
                                  keras.backend.standardize_dtype(v.dtype), keras.backend.backend())
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


def _per_replica(value):
    """``value`` / R inside a ``tf.distribute`` strategy of R replicas, as Keras scales a
    replica's loss (``scale_loss_for_distribution``), so that the replicas' products add
    up to the batch's (:mod:`keras_optlab.curvature.devices`); ``value`` elsewhere."""
    tf = sys.modules.get("tensorflow") if keras.backend.backend() == "tensorflow" else None
    if tf is not None:
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            return value / replicas
    return value


def closure_product(loss_fn=None, variables=None, curvature="hessian", outputs_fn=None, output_loss_fn=None,
                    losses_fn=None, autodiff=None):
    """``vectors ↦ C vectors``: the curvature product of one loss closure, traceable.

    The product every model-level function and :class:`~keras_optlab.curvature.operators.
    CurvatureOperator` computes per batch, here for a zero-argument closure, to be called
    eagerly or inside a ``tf.function`` / ``jax.jit`` trace (a Hessian-free solver's
    compiled step): ``vectors`` and the result are lists of backend tensors shaped like
    ``variables``. No NaN check, no host transfer.

    * ``curvature="hessian"``: H v of ``loss_fn()`` (double backprop or
      forward-over-reverse, :func:`hvp_from_loss`);
    * ``"gauss_newton"``: G v = Jᵀ H_L J v of the loss split at ``outputs_fn()`` → z and
      ``output_loss_fn(z)`` (:func:`gauss_newton_product`); ``loss_fn`` is not used;
    * ``"fisher"``: F v = (1/N) Jᵀ(J v), J the N × n Jacobian of ``losses_fn()`` → the N
      per-example (weighted) losses — the Gauss-Newton product of that vector under
      ½‖z‖²/N, one forward-mode and one backward pass whatever N.

    ``autodiff``: the backend's adapter (:func:`~keras_optlab.curvature.autodiff.
    for_backend`, looked up when ``None``). Arguments are checked when the function is
    made (``TypeError`` / ``ValueError`` naming them).
    """
    curvature = check_curvature(curvature)
    autodiff = autodiff if autodiff is not None else for_backend("keras_optlab.curvature.closure_product")
    variables = check_variables(variables)
    needed = {"hessian": ("loss_fn",), "gauss_newton": ("outputs_fn", "output_loss_fn"), "fisher": ("losses_fn",)}
    given = {"loss_fn": loss_fn, "outputs_fn": outputs_fn, "output_loss_fn": output_loss_fn, "losses_fn": losses_fn}
    for name in needed[curvature]:
        if given[name] is None:
            raise ValueError(f"curvature={curvature!r} needs `{name}`. Received: {name}=None")
        check_callable(name, given[name])

    if curvature == "hessian":
        return lambda vectors: autodiff.hvp(loss_fn, variables, lambda grads: vectors)[2]
    if curvature == "fisher":
        outputs_fn = losses_fn

        def output_loss_fn(z):  # ½‖z‖²/N (N dynamic inside a relaxed TF trace)
            return _per_replica(0.5 * ops.sum(z * z) / ops.cast(ops.shape(z)[0], z.dtype))

    if keras.backend.backend() != "jax":
        return lambda vectors: autodiff.gauss_newton_product(outputs_fn, output_loss_fn, variables, vectors)

    def product(vectors):
        # JAX evaluates the loss of z in a StatelessScope of its own, where Keras reads a
        # regularized variable's value from the scope only (Layer.losses): outside a
        # stateless scope (an eager call) every variable must be in it — its value here.
        values = [_keras_hooks.current_value(v) for v in variables]
        with _keras_hooks.substituted(variables, values):
            return autodiff.gauss_newton_product(outputs_fn, output_loss_fn, variables, vectors)

    return product


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
    check_variables(model.trainable_variables, "model.trainable_variables")


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
    return _compiled_loss(model, x, y, sample_weight)


def _compiled_loss(model, x, y, sample_weight):
    """:func:`loss_closure` without its checks and backend lookup: what the traced
    functions call (a lookup imports a module, which has no place inside a trace —
    AutoGraph cannot convert ``importlib``'s machinery and says so on stderr)."""

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


class NonFiniteError(ValueError):
    """A curvature figure was asked of a non-finite loss, gradient or product.

    A ``ValueError`` (the value of the weights or of the batch is what is wrong);
    :class:`~keras_optlab.callbacks.CurvatureMonitor` catches it and logs NaN. The
    message says which of the loss, the gradient or the product is non-finite, and
    ``loss`` holds the loss (a float, possibly NaN or ±inf)."""

    def __init__(self, message, loss):
        super().__init__(message)
        self.loss = loss


PRODUCT_NAMES = {
    "hessian": "Hessian-vector product H v",
    "gauss_newton": "Gauss-Newton product G v",
    "fisher": "Fisher product F v",
}


def refuse_nonfinite(what, model, loss, gradient_finite=True, product_finite=True, product="Hessian-vector product H v"):
    """Raise :class:`NonFiniteError` unless the loss, the gradient and the product are
    all finite (host values: ``loss`` a float, the others bools); names the first that
    is not."""
    loss = float(loss)
    if not np.isfinite(loss):
        raise NonFiniteError(
            f"{what}: the compiled loss of model {model.name!r} on (x, y) is non-finite (loss={loss}); no "
            "curvature figure is computed from a non-finite loss. The weights have diverged (a learning rate "
            "too large for the curvature, Sec. 8.2.1) or x, y or sample_weight hold NaN or inf.",
            loss,
        )
    if not gradient_finite:
        raise NonFiniteError(
            f"{what}: the compiled loss of model {model.name!r} is finite (loss={loss!r}) but its gradient "
            "is not: non-finite entries (the loss is not differentiable at these weights, or the gradient "
            "overflowed in the model's dtype); no curvature figure is computed.",
            loss,
        )
    if not product_finite:
        raise NonFiniteError(
            f"{what}: the compiled loss of model {model.name!r} (loss={loss!r}) and its gradient are "
            f"finite but the {product} is not: non-finite entries (it overflowed in the model's dtype, or "
            "the loss is not twice differentiable at these weights); no curvature figure is computed.",
            loss,
        )


def _all_finite(tensors):
    return ops.all(ops.stack([ops.all(ops.isfinite(t)) for t in tensors]))


def sum_dtype():
    """The dtype of the traced functions' dot products and Lanczos vectors: float64,
    except on JAX outside its 64-bit mode, which has no float64 (it would truncate to
    float32 with a warning at every call): float32 there."""
    if keras.backend.backend() == "jax":
        jax = sys.modules.get("jax")
        if jax is not None and not jax.config.jax_enable_x64:
            return "float32"
    return "float64"


def lanczos_steps(product, variables, v0, steps, dtype):
    """``steps`` steps of :func:`keras_optlab.curvature.spectrum.lanczos` from ``v0``,
    traced (unrolled): the same recurrence, full reorthogonalization twice, vectors in
    ``dtype``; ``product(vectors)`` → H ``vectors`` (lists shaped like ``variables``).

    Returns ``(alphas, betas, basis, finite)``: the ``steps`` diagonal and off-diagonal
    entries of T (β of the last step included), the ``steps`` × n basis Q (rows qⱼ) and
    whether each product H qⱼ was finite. No early stop inside the trace: the caller
    reads the Ritz pairs step by step and stops where :func:`lanczos` would. After an
    invariant subspace (β below the dtype's smallest normal number) the next rows
    are 0, so every later entry is 0 and finite."""
    tiny = float(np.finfo(dtype).tiny)
    q = v0 / ops.sqrt(ops.sum(v0 * v0))
    basis, alphas, betas, finite = [q], [], [], []
    for j in range(steps):
        w = _flat(product(_unflat(q, variables)), dtype)
        finite.append(ops.all(ops.isfinite(w)))
        alpha = ops.sum(w * q)
        w = w - alpha * q
        if j > 0:
            w = w - betas[-1] * basis[-2]
        rows = ops.stack(basis)
        for _ in range(2):  # twice is enough (Kahan–Parlett)
            w = w - ops.matmul(ops.matmul(rows, w[:, None])[:, 0][None, :], rows)[0]
        beta = ops.sqrt(ops.sum(w * w))
        alphas.append(alpha)
        betas.append(beta)
        if j + 1 < steps:
            q = ops.where(beta > tiny, w / ops.maximum(beta, tiny), ops.zeros_like(w))
            basis.append(q)
    return ops.stack(alphas), ops.stack(betas), ops.stack(basis), ops.stack(finite)


def _flat(tensors, dtype):
    return ops.concatenate([ops.reshape(ops.cast(t, dtype), (-1,)) for t in tensors], axis=0)


def _unflat(vector, variables):
    out, start = [], 0
    for v in variables:
        size = int(np.prod(v.shape))
        out.append(ops.cast(ops.reshape(vector[start : start + size], tuple(v.shape)), v.dtype))
        start += size
    return out


def _signature(x, y, sample_weight):
    """The structure, rank and dtype of every array of a (converted) batch."""
    key = []
    for name, value in (("x", x), ("y", y), ("sample_weight", sample_weight)):
        if value is None:
            key.append((name, None))
            continue
        key.extend(
            (label, len(leaf.shape), keras.backend.standardize_dtype(leaf.dtype)) for label, leaf in _leaves(name, value)
        )
    return tuple(key)


class _PerSignature:
    """One compiled function per signature of the batch (:func:`_signature`), and per
    ``tf.distribute`` strategy whose replicas split the batch.

    ``tf.function(reduce_retracing=True)`` generalizes the shapes that differ between
    calls; across ranks (``y`` of shape (N,) after (N, 1)) it generalizes to an unknown
    rank, which Keras' losses cannot trace (``len(shape)`` in
    ``squeeze_or_expand_to_same_rank``). Keyed by ranks and dtypes, every trace sees
    known ranks; within one signature a new batch size still retraces at most once.
    (``jax.jit`` specializes on shapes anyway; torch runs eagerly.)

    Several devices (:mod:`keras_optlab.curvature.devices`): ``kind`` says how the
    replicas' results add up (``"product"``: ``(product, finite, loss)``;
    ``"gradient"``: ``(loss, grads)``); a function without one (the fused gᵀg, gᵀHg)
    is never asked under a strategy. On JAX a batch is laid out on the distribution's
    mesh before the jitted call."""

    def __init__(self, fn, state, autodiff, kind=None, model_ref=None):
        self.fn, self.state, self.autodiff = fn, state, autodiff
        self.kind, self.model_ref = kind, model_ref
        self.functions = {}

    def __call__(self, x, y, sample_weight, *rest):
        key = _signature(x, y, sample_weight)
        model = self.model_ref() if self.model_ref is not None else None
        strategy = devices.tf_strategy(model) if model is not None else None
        if strategy is not None:
            if self.kind is None:
                raise RuntimeError("keras_optlab.curvature: a fused function was called under tf.distribute")
            devices.check_even_split(model, strategy, int(keras.tree.flatten(x)[0].shape[0]))
            key = key + ("replicas", id(strategy))
            held = self.functions.get(key)
            if held is None or held[0] is not strategy:
                held = self.functions[key] = (strategy, devices.tf_replicated(self.fn, self.kind, strategy))
            with strategy.scope():
                return held[1](x, y, sample_weight, *rest)
        distribution = devices.jax_distribution()
        if distribution is not None:
            x, y, sample_weight = devices.jax_laid_out(distribution, x, y, sample_weight)
        function = self.functions.get(key)
        if function is None:
            function = self.functions[key] = self.autodiff.compiled(self.fn, self.state)
        return function(x, y, sample_weight, *rest)

    def tracing_count(self):
        """Traces so far, over every signature (TensorFlow's ``tf.function`` only)."""
        return sum((f[1] if isinstance(f, tuple) else f).experimental_get_tracing_count()
                   for f in self.functions.values())


# The compiled losses whose probabilities-in form (from_logits=False) has a logits form,
# and the activation that maps logits to those probabilities.
_PROBABILITY_LOSSES = {
    "categorical_crossentropy": "softmax",
    "sparse_categorical_crossentropy": "softmax",
    "categorical_focal_crossentropy": "softmax",
    "binary_crossentropy": "sigmoid",
    "binary_focal_crossentropy": "sigmoid",
}


def _probability_loss_of(loss):
    """``(name, link)`` when ``loss`` (one compiled loss) is a cross-entropy on
    probabilities (``from_logits=False``), ``link`` the activation it expects
    ("softmax" or "sigmoid"); ``None`` for any other loss."""
    try:
        resolved = keras.losses.get(loss) if isinstance(loss, str) else loss
    except ValueError:
        return None
    if isinstance(resolved, keras.losses.Loss):
        name = getattr(getattr(resolved, "fn", None), "__name__", None)  # keras.losses.LossFunctionWrapper
        if name not in _PROBABILITY_LOSSES:
            return None
        config = resolved.get_config()
        if config.get("from_logits", False):
            return None
        if config.get("axis", -1) != -1:
            return name + f"(axis={config['axis']})", None  # no logits split over another axis
        return name, _PROBABILITY_LOSSES[name]
    for name, link in _PROBABILITY_LOSSES.items():
        if resolved is getattr(keras.losses, name, None):  # the function: from_logits=False
            return name, link
    return None


def _probability_loss(model):
    """:func:`_probability_loss_of` the compiled loss of ``model``; for several losses
    (several outputs), the first on probabilities with ``link`` ``None`` (not split)."""
    loss = model.loss
    if isinstance(loss, dict):
        loss = list(loss.values())
    if not isinstance(loss, (list, tuple)):
        return _probability_loss_of(loss)
    found = [f for f in map(_probability_loss_of, loss) if f is not None]
    if len(loss) == 1 or not found:
        return found[0] if found else None
    return found[0][0] + " (one of several outputs' losses)", None


def _output_activation(model):
    """The activation ("softmax" over the last axis, "sigmoid") that produces the single
    output of a Sequential or functional ``model``, or ``None`` when none of these can
    be established from its public structure."""
    outputs = getattr(model, "outputs", None)
    if not isinstance(outputs, (list, tuple)) or len(outputs) != 1 or not model.layers:
        return None
    last = model.layers[-1]
    try:
        if last.output is not outputs[0]:
            return None
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(last, keras.layers.Softmax):
        return "softmax" if last.axis in (-1, len(outputs[0].shape) - 1) else None
    activation = getattr(last, "activation", None)
    if activation is keras.activations.softmax:
        return "softmax"
    if activation is keras.activations.sigmoid:
        return "sigmoid"
    return None


def output_link(model, network=None):
    """Where ``curvature="gauss_newton"`` splits the loss of ``model``: ``None`` at the
    model's outputs, or ``"softmax"`` / ``"sigmoid"`` at the logits of a probability
    output under a cross-entropy on probabilities (``from_logits=False``). ``network``:
    the model whose last layer makes the outputs, when it is not ``model`` itself (a
    wrapper such as ``keras_optlab.SecondOrder`` compiles the loss; its wrapped model
    has the layers).

    Split at probabilities p, such a loss (−log p_y) has H_L = e_y e_yᵀ/p_y² and G =
    JᵀH_LJ = Σᵢ gᵢgᵢᵀ/N: the empirical Fisher, not the Gauss-Newton matrix of the logits
    (Martens 2014: the matching-loss split, where G is the Fisher). So when the model's
    last layer applies that activation, the split is moved to the logits: z = log p
    (softmax; the loss depends on z only through softmax(z), which does not change when
    a constant is added to every logit, so z = log p gives the same G as the layer's own
    logits) or z = log p − log(1 − p) (sigmoid, its inverse), and the loss of z is the
    compiled loss of softmax(z) or sigmoid(z). Probabilities below the dtype's smallest
    normal number are clamped to it in the logarithm (their terms of G are of that
    size). A cross-entropy on probabilities whose activation cannot be read off the
    model (a subclassed model, another last layer) is refused with a ``ValueError``.
    """
    found = _probability_loss(model)
    if found is None:
        return None
    name, link = found
    activation = _output_activation(model if network is None else network)
    if link is not None and activation == link:
        return link
    link = link or "softmax/sigmoid"
    raise ValueError(
        f"curvature='gauss_newton' on model {model.name!r}: its compiled loss {name} (from_logits=False) takes "
        f"probabilities, and split there G = JᵀH_LJ is the empirical Fisher, not the Gauss-Newton matrix of "
        f"the logits. keras_optlab moves the split to the logits when the model's last layer applies {link} "
        f"(a Sequential or functional model with one output, made by a last layer with activation='{link}'); this model's output "
        f"activation is {activation or 'not one it can read'}. Compile with from_logits=True on a linear last "
        "layer for G of the logits, or ask for curvature='fisher' for the empirical Fisher."
    )


def split_loss(model, x, y, sample_weight, link, training):
    """``(outputs_fn, output_loss_fn)``: the compiled loss of ``model`` on a batch split
    where :func:`output_link` says — at the outputs (``link`` ``None``), or at the
    logits z = log p (softmax) / log p − log(1 − p) (sigmoid) of a probability output,
    the loss of z being the compiled loss of softmax(z) / sigmoid(z)."""

    def outputs_fn():
        outputs = model(x, training=training)
        if link is None:
            return outputs
        tiny = float(np.finfo(keras.backend.standardize_dtype(outputs.dtype)).tiny)
        log_p = ops.log(ops.maximum(outputs, tiny))
        return log_p if link == "softmax" else log_p - ops.log(ops.maximum(1.0 - outputs, tiny))

    def output_loss_fn(z):
        if link is not None:
            z = keras.activations.softmax(z) if link == "softmax" else keras.activations.sigmoid(z)
        return model.compute_loss(x=x, y=y, y_pred=z, sample_weight=sample_weight, training=training)

    return outputs_fn, output_loss_fn


class _ModelOracle:
    """The traced functions of one model: loss and gradient, H v, G v, F v, and (gᵀg, gᵀHg).

    Each is compiled by the backend's adapter (``tf.function`` with
    ``reduce_retracing=True``, so a new batch size retraces at most once; ``jax.jit``
    with the model's variables as arguments; eager on torch), once per signature of the
    batch (:class:`_PerSignature`: the ranks and dtypes of x, y and sample_weight).
    Held in a per-model cache (:func:`model_oracle`) and rebuilt when the model is
    recompiled with another loss or its trainable variables change.

    The products (:meth:`operator`) return ``(product, finite, loss)``: ``finite`` a
    bool tensor ``[loss finite, gradient finite, product finite]`` computed in the same
    trace (the gradient entry is True where no gradient is computed: G v, F v, which
    evaluate the loss once more for it), read by :func:`check_product` — one small
    transfer per product, no second pass.
    """

    def __init__(self, model, autodiff):
        self.key = _oracle_key(model)
        model_ref = weakref.ref(model)  # the cache must not keep the model alive
        state = list(model.variables) + list(model.metrics_variables)

        def closure(x, y, sample_weight):
            model = model_ref()
            return _compiled_loss(model, x, y, sample_weight), model.trainable_variables

        def value_and_gradient(x, y, sample_weight):
            return autodiff.loss_and_gradient(*closure(x, y, sample_weight))

        def product(x, y, sample_weight, vectors):
            loss, grads, hv = autodiff.hvp(*closure(x, y, sample_weight), lambda grads: vectors)
            return hv, ops.stack([ops.all(ops.isfinite(loss)), _all_finite(grads), _all_finite(hv)]), loss

        def with_loss_check(x, y, sample_weight, result):
            loss = _compiled_loss(model_ref(), x, y, sample_weight)()
            finite = ops.stack([ops.all(ops.isfinite(loss)), ops.convert_to_tensor(True), _all_finite(result)])
            return result, finite, loss

        def along_gradient(loss, grads, hg):
            # Dot products in float64 whatever the variables' dtype (sum_dtype: float32 on
            # JAX without 64-bit mode): gᵀg and gᵀHg are sums of up to millions of terms.
            dtype = sum_dtype()
            g64 = [ops.cast(g, dtype) for g in grads]
            g_norm_sq = sum(ops.sum(g * g) for g in g64)
            ghg = sum(ops.sum(g * ops.cast(h, dtype)) for g, h in zip(g64, hg))
            return ops.cast(loss, dtype), g_norm_sq, ghg

        def curvature(x, y, sample_weight):
            return along_gradient(*autodiff.hvp(*closure(x, y, sample_weight), lambda grads: grads))

        def measurement(x, y, sample_weight, start, coefficients, steps):
            # CurvatureMonitor's measurement in one trace: (loss, gᵀg, gᵀHg) as
            # `curvature`, and `steps` Lanczos steps from v0 = coefficientsᵀ start (the
            # previous measurement's Ritz vector, formed here on the device). The gradient
            # is linearized once; each of the steps + 1 products reuses its forward and
            # backward pass. Returns one vector [loss, gᵀg, gᵀHg, α₁…, β₁…, finite₁…]
            # (one transfer to the host) and the basis (kept on the device).
            loss_fn, variables = closure(x, y, sample_weight)
            loss, grads, product = autodiff.linearized_gradient(loss_fn, variables)
            dtype = sum_dtype()
            head = along_gradient(loss, grads, product(grads))
            v0 = ops.matmul(ops.cast(coefficients, dtype)[None, :], ops.cast(start, dtype))[0]
            alphas, betas, basis, finite = lanczos_steps(product, variables, v0, steps, dtype)
            numbers = ops.concatenate([ops.stack(list(head)), alphas, betas, ops.cast(finite, dtype)])
            return numbers, basis

        def split_at_outputs(x, y, sample_weight):
            return split_loss(model_ref(), x, y, sample_weight, self.link, training=False)

        def gauss_newton(x, y, sample_weight, vectors):
            outputs_fn, output_loss_fn = split_at_outputs(x, y, sample_weight)
            gv = closure_product(
                None, model_ref().trainable_variables, "gauss_newton", outputs_fn, output_loss_fn, autodiff=autodiff
            )(vectors)
            return with_loss_check(x, y, sample_weight, gv)

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

            fv = closure_product(None, model.trainable_variables, "fisher", losses_fn=losses_fn, autodiff=autodiff)(vectors)
            return with_loss_check(x, y, sample_weight, fv)

        self.per_example = None  # per_example_loss_fn(model), built at the first F v
        self.link = _UNSET  # output_link(model), found at the first G v
        self.value_and_gradient = _PerSignature(value_and_gradient, state, autodiff, "gradient", model_ref)
        self.product = _PerSignature(product, state, autodiff, "product", model_ref)
        self.curvature = _PerSignature(curvature, state, autodiff)  # fused: one batch, one device only
        self._gauss_newton = _PerSignature(gauss_newton, state, autodiff, "product", model_ref)
        self._fisher = _PerSignature(fisher, state, autodiff, "product", model_ref)
        self._measurement = measurement
        self._measurements = {}  # Lanczos steps → fused: one batch, one device only
        self._state, self._autodiff = state, autodiff
        self.model_ref = model_ref

    def measurement(self, steps):
        """CurvatureMonitor's fused measurement with ``steps`` Lanczos steps, a function
        of ``(x, y, sample_weight, start, coefficients)`` (start: ``steps`` × n,
        coefficients: ``steps``, both in :func:`sum_dtype`) returning ``(numbers, basis)``
        — see :func:`keras_optlab.curvature.spectrum.gradient_curvature_and_lambda_max`.
        Compiled once per batch signature and step count."""
        function = self._measurements.get(steps)
        if function is None:
            measurement = self._measurement

            def fixed_steps(x, y, sample_weight, start, coefficients):
                return measurement(x, y, sample_weight, start, coefficients, steps)

            function = self._measurements[steps] = _PerSignature(fixed_steps, self._state, self._autodiff)
        return function

    def gauss_newton(self, x, y, sample_weight, vectors):
        if self.link is _UNSET:
            self.link = output_link(self.model_ref())  # a ValueError leaves it unset
        return self._gauss_newton(x, y, sample_weight, vectors)

    def fisher(self, x, y, sample_weight, vectors):
        if self.per_example is None:
            self.per_example = per_example_loss_fn(self.model_ref())
        return self._fisher(x, y, sample_weight, vectors)

    def operator(self, curvature):
        """The product v ↦ C v of ``curvature`` (H, G or F, see the module's docstring):
        a function of ``(x, y, sample_weight, vectors)`` returning ``(product, finite,
        loss)`` (see the class docstring; :func:`check_product` reads them)."""
        return {"hessian": self.product, "gauss_newton": self.gauss_newton, "fisher": self.fisher}[curvature]


_UNSET = object()


def check_product(what, model, curvature, finite, loss):
    """Raise :class:`NonFiniteError` unless the flags ``finite`` of a product of
    :meth:`_ModelOracle.operator` are all true (one small transfer to the host)."""
    flags = np.asarray(ops.convert_to_numpy(finite), dtype=bool)
    if flags.all():
        return
    refuse_nonfinite(
        what, model, float(ops.convert_to_numpy(loss)), bool(flags[1]), bool(flags[2]), PRODUCT_NAMES[curvature]
    )


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
