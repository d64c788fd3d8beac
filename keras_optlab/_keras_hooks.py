"""The ONLY place where keras_optlab touches private Keras or TensorFlow internals.

A Keras optimizer exposes ``update_step`` and ``apply`` publicly, but three things
keras_optlab needs happen in private methods of ``keras.optimizers.Optimizer``:

=============================== ========================================================
hook (read in Keras 3.8–3.15.1)  why, and the public API that is missing
=============================== ========================================================
``_backend_apply_gradients``     the one call that sees both the gradients and the
                                 variables of a step, after loss-scale unscaling and
                                 before accumulation/clipping: adaptive clipping needs
                                 the weights. Missing: a public "transform gradients
                                 with access to the variables" hook.
``_clip_gradients``              where Keras clips, once per *applied* step (after
                                 gradient accumulation averaged the gradients, before
                                 weight decay). Replaced to add adaptive clipping and
                                 the telemetry (``gradient_norm``, ``clipped_steps``).
                                 Missing: a public clipping hook (optax's
                                 ``chain``/``GradientTransformation``).
``_all_reduce_sum_gradients``    TensorFlow backend only: Keras sums the replicas'
                                 gradients here, *after* clipping, so under tf.distribute
                                 each replica clips (and decides ``skip_nonfinite`` on)
                                 its own part of the batch. keras_optlab sums first
                                 (:func:`replica_sum`, public tf.distribute API) and
                                 this override then leaves the sum alone. Missing: a
                                 public "gradients are already reduced" switch.
``_distributed_tf_update_step``  TensorFlow backend only: the per-variable update inside
                                 ``distribution.extended.update``, where a variable is
                                 one device's copy; the speed paths
                                 (keras_optlab.accel) are chosen here. Missing: a
                                 per-variable dispatch hook that tf.distribute respects.
``_backend_update_step``         PyTorch backend only (elsewhere Keras' own): the loop
                                 that calls ``update_step`` per variable; it calls
                                 ``update_variable`` instead, so that the torch speed
                                 path (keras_optlab.accel_torch) is chosen per
                                 variable. Missing: as for ``_distributed_tf_update_step``.
``_trainable_variables``         the variables the optimizer was built on (to snapshot
                                 them for ``skip_nonfinite``); ``_get_variable_index``:
                                 a variable's slot index. Keras' own optimizers use
                                 both; no public accessor.
``model.train_function``         dropping a traced training step so that ``fit``
                                 traces a new one after a setting read at trace time
                                 changed. Missing: a public "invalidate the compiled
                                 step" (``model.compile`` again would reset metrics).
TF's ``control_flow_util``       whether the graph being traced is compiled by XLA
                                 (``jit_compile=True``): our CPU kernels have no XLA
                                 lowering. TF has no public query.
``StatelessScope.state_mapping``  :func:`substituted` and :func:`current_value`: a scope
                                 that maps some variables to given values *and keeps
                                 every mapping of the scope it is opened in* (the
                                 curvature functions differentiate a model's loss as a
                                 pure function of its weights inside JAX's stateless
                                 train step). Keras' ``StatelessScope`` is public; the
                                 enclosing scope and its mapping are not: Keras has no
                                 "nested" stateless scope.
a layer's ``call``               :func:`tapped`: the layers' ``call`` replaced on the
                                 instances, for one forward pass, by one that adds a
                                 given tensor to the output (the gradient of the loss
                                 with respect to a layer's output, on every backend).
                                 Missing: a public "tap a layer's output" hook.
``_compute_moments``             TensorFlow backend only (its ``nn`` module):
                                 :func:`differentiable_moments`. Keras' TF ``moments``
                                 (BatchNormalization, LayerNormalization,
                                 GroupNormalization, ``ops.moments``) takes the variance
                                 from ``tf.nn.moments``, i.e. mean((x − stop_gradient(μ))²):
                                 exact first derivatives, wrong second ones (the −1/N
                                 coupling through μ is dropped). While keras_optlab
                                 differentiates twice on TF (curvature.autodiff.tf_tapes)
                                 this helper computes the variance without the
                                 stop_gradient. Missing: a public "differentiable
                                 moments" switch (JAX and torch need none).
the call stack of ``fit``        :func:`calling_callback_list`: the ``CallbackList``
                                 calling a callback's ``set_model`` (CurvatureMonitor
                                 and GradientStats move ahead of TensorBoard/CSVLogger
                                 there). Missing: a public callback ordering.
``Layer._flatten_layers``        :func:`all_layers`: every layer inside a model, nested
                                 ones included (``update_batch_norm`` finds the
                                 BatchNormalization layers). ``Model.layers`` lists the
                                 direct children only.
=============================== ========================================================

:func:`check_hooks` verifies at import that every hooked Keras method still exists
(and every hooked function, that it exists and is still looked up by name where it is
called) and raises ``ImportError`` if one disappeared: a renamed hook must fail loudly,
never let adaptive clipping, the telemetry or a Hessian through batch normalization go
wrong silently. tests/optimizers/test_keras_hooks.py
also checks that the hooks are *called* (telemetry moves when clipping is on).
"""

import contextlib
import functools
import importlib
import inspect
import threading

import keras

# (owner, attribute, backends it exists on: None = all)
HOOKED_METHODS = (
    (keras.optimizers.Optimizer, "_backend_apply_gradients", None),
    (keras.optimizers.Optimizer, "_clip_gradients", None),
    (keras.optimizers.Optimizer, "_get_variable_index", None),
    (keras.optimizers.Optimizer, "_distributed_tf_update_step", ("tensorflow",)),
    (keras.optimizers.Optimizer, "_all_reduce_sum_gradients", ("tensorflow",)),
    (keras.optimizers.Optimizer, "_backend_update_step", ("torch",)),
    (keras.layers.Layer, "_flatten_layers", None),
)


# (module, function replaced there, the function of that module that must call it by
# its global name, backends: None = all). Imported only on those backends.
HOOKED_FUNCTIONS = (
    ("keras.src.backend.tensorflow.nn", "_compute_moments", "moments", ("tensorflow",)),
    ("keras.src.backend.tensorflow.nn", "_compute_moments", "_compute_moments_sync", ("tensorflow",)),
)


def _missing_function_hooks(backend):
    missing = []
    for module_name, name, caller, backends in HOOKED_FUNCTIONS:
        if backends is not None and backend not in backends:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(f"{module_name}.{name}")
            continue
        calling = getattr(module, caller, None)
        names = getattr(getattr(calling, "__code__", None), "co_names", ())
        if not callable(getattr(module, name, None)):
            missing.append(f"{module_name}.{name}")
        elif name not in names:
            missing.append(f"{module_name}.{name} (no longer called by {caller})")
    return missing


def check_hooks():
    """Raise ``ImportError`` naming every hooked Keras method or function this Keras lacks."""
    backend = keras.backend.backend()
    missing = [
        f"{owner.__name__}.{name}"
        for owner, name, backends in HOOKED_METHODS
        if (backends is None or backend in backends) and not callable(getattr(owner, name, None))
    ]
    missing += _missing_function_hooks(backend)
    if missing:
        raise ImportError(
            f"keras_optlab hooks private Keras methods that Keras {keras.__version__} no longer has: "
            f"{', '.join(missing)}. Clipping, skipping and telemetry would not work; "
            "keras_optlab._keras_hooks must be updated for this Keras version."
        )


check_hooks()


class KerasHooks(keras.optimizers.Optimizer):
    """Overrides of Keras' private optimizer methods, forwarding to public ones.

    A subclass implements:

    * ``transform_gradients(grads, variables)`` — clipping and telemetry, called
      where Keras clips (``variables`` is ``None`` when Keras clips outside a step,
      e.g. its own tests calling ``_clip_gradients`` on an unbuilt optimizer);
    * ``update_variable(gradient, variable, learning_rate)`` — one variable's update
      (``update_step`` or a speed path), called per device under tf.distribute and
      per variable on PyTorch.
    """

    def _backend_apply_gradients(self, grads, trainable_variables):
        # object.__setattr__ keeps Keras' tracker from adopting the model's
        # variables as optimizer variables.
        object.__setattr__(self, "_variables_being_updated", list(trainable_variables))
        try:
            super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            object.__setattr__(self, "_variables_being_updated", None)

    def _clip_gradients(self, grads):
        return self.transform_gradients(grads, getattr(self, "_variables_being_updated", None))

    def _all_reduce_sum_gradients(self, grads_and_vars):
        # The subclass summed them already in apply() (replica_sum): not twice.
        if getattr(self, "_gradients_reduced", False):
            return list(grads_and_vars)
        return super()._all_reduce_sum_gradients(grads_and_vars)

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        # Keras' structure, with our per-variable dispatch in place of update_step.
        def update(var, grad, learning_rate):
            return self.update_variable(grad, var, learning_rate)

        for grad, var in grads_and_vars:
            distribution.extended.update(var, update, args=(grad, learning_rate), group=False)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # On torch, Keras' loop (BaseOptimizer) with our per-variable dispatch in place of
        # update_step. TF keeps Keras' (tf.distribute, then _distributed_tf_update_step);
        # JAX has no speed path.
        if keras.backend.backend() != "torch":
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        for grad, var in zip(grads, trainable_variables):
            self.update_variable(grad, var, learning_rate)


def replica_sum(grads):
    """``(grads, reduced)``: inside a tf.distribute replica context with more than one
    replica, each gradient summed over the replicas (what Keras' TF optimizer would do
    after clipping) and ``reduced=True``; anywhere else the gradients unchanged and
    ``False``. ``None`` entries stay ``None``."""
    if keras.backend.backend() != "tensorflow":
        return grads, False
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return grads, False
    present = [g for g in grads if g is not None]
    summed = iter(context.all_reduce(tf.distribute.ReduceOp.SUM, present) if present else ())
    return [None if g is None else next(summed) for g in grads], True


def tracked_variables(optimizer):
    """The model variables ``optimizer`` was built on, in build order."""
    return list(optimizer._trainable_variables)


def variable_index(optimizer, variable):
    """The index of ``variable`` in the lists of slots (Keras' own optimizers use it)."""
    return optimizer._get_variable_index(variable)


def reset_train_function(model):
    """Drop ``model``'s traced training step: the next ``fit`` traces a new one."""
    model.train_function = None


def in_xla_context():
    """Whether the TF graph being traced is compiled by XLA (``jit_compile=True``).

    Should TF's helper ever move, the answer is "yes": the safe side, since TF's
    fused kernels and the keras.ops rule work under XLA and our CPU kernels do not.
    """
    import tensorflow as tf

    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - TF internals moved
        return True
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def calling_callback_list(max_depth=8):
    """The ``keras.callbacks.CallbackList`` whose method is on the call stack within
    ``max_depth`` frames (``fit``'s, while its ``set_model`` loops over the public
    ``callbacks`` list), or ``None``. Reads frames, never changes them."""
    frame = inspect.currentframe()
    try:
        for _ in range(max_depth):
            frame = frame.f_back
            if frame is None:
                return None
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, keras.callbacks.CallbackList):
                return candidate
        return None
    finally:
        del frame


def _enclosing_scope():
    from keras.src.backend.common import stateless_scope

    return stateless_scope.get_stateless_scope()


def current_value(variable):
    """The value ``variable`` has here: its mapping in the enclosing ``StatelessScope``
    (JAX's stateless train step), else ``variable.value``."""
    scope = _enclosing_scope()
    if scope is not None:
        value = scope.get_current_value(variable)
        if value is not None:
            return value
    return variable.value


def substituted(variables, values):
    """A ``keras.StatelessScope`` in which ``variables`` read ``values`` and every other
    variable reads what it reads in the enclosing stateless scope (if any): Keras'
    scope alone would fall back to the variables' stored values."""
    scope = keras.StatelessScope(state_mapping=list(zip(variables, values)), initialize_variables=False)
    outer = _enclosing_scope()
    if outer is not None:
        merged = dict(outer.state_mapping)
        merged.update(scope.state_mapping)
        scope.state_mapping = merged
    return scope


@contextlib.contextmanager
def tapped(layers, offsets):
    """Inside, each of ``layers`` returns its output plus the matching entry of
    ``offsets`` (a tensor shaped like that output): the loss as a function of the
    offsets, at zero, has the gradients with respect to the layers' outputs."""
    originals = [layer.__dict__.get("call") for layer in layers]
    try:
        for layer, offset in zip(layers, offsets):
            bound = layer.call

            @functools.wraps(bound)
            def call(*args, _bound=bound, _offset=offset, **kwargs):
                return _bound(*args, **kwargs) + _offset

            layer.call = call
        yield
    finally:
        for layer, original in zip(layers, originals):
            if original is None:
                layer.__dict__.pop("call", None)
            else:
                layer.call = original


def all_layers(model):
    """Every layer inside ``model``, each once, nested models and layers held by layers
    included (not ``model`` itself)."""
    return list(model._flatten_layers(include_self=False, recursive=True))


# ------------------------------------------------------------ differentiable moments
# While any thread is inside differentiable_moments(), Keras' TF `_compute_moments` is
# `_dispatching_moments`, which answers per thread: the differentiable variance for a
# thread inside the context, Keras' own (tf.nn.moments) for every other. The original
# is put back when the last context closes.
_MOMENTS_LOCK = threading.Lock()
_MOMENTS_STATE = {"open": 0, "original": None}
_MOMENTS_LOCAL = threading.local()


def _differentiable_variance_moments(x, axes, keepdims):
    """``tf.nn.moments(x, axes, keepdims=keepdims)`` (same ops, same values) without its
    ``stop_gradient(mean)``: the variance is mean((x − μ)²) with μ differentiable, so its
    second derivatives are those of the variance. The first derivative differs from
    tf.nn.moments' only by rounding (the dropped term is −2/N · Σ(x − μ) · ∂μ, zero up
    to rounding)."""
    import tensorflow as tf

    with tf.name_scope("moments"):
        y = tf.cast(x, tf.float32) if x.dtype == tf.float16 else x  # as tf.nn.moments
        mean = tf.reduce_mean(y, axes, keepdims=True, name="mean")
        variance = tf.reduce_mean(tf.math.squared_difference(y, mean), axes, keepdims=True, name="variance")
        if not keepdims:
            mean = tf.squeeze(mean, axes)
            variance = tf.squeeze(variance, axes)
        if x.dtype == tf.float16:
            return tf.cast(mean, tf.float16), tf.cast(variance, tf.float16)
        return mean, variance


def _dispatching_moments(x, axes, keepdims):
    if getattr(_MOMENTS_LOCAL, "depth", 0):
        return _differentiable_variance_moments(x, axes, keepdims)
    return _MOMENTS_STATE["original"](x, axes, keepdims)


@contextlib.contextmanager
def differentiable_moments():
    """Inside (on this thread), Keras' TensorFlow ``moments`` — BatchNormalization in
    training mode, LayerNormalization, GroupNormalization, ``keras.ops.moments`` —
    computes the variance as mean((x − μ)²) with μ differentiable, instead of
    ``tf.nn.moments``' mean((x − stop_gradient(μ))²): same values, same gradients up to
    rounding, and correct second derivatives. Takes effect where the forward pass runs
    (also while a ``tf.function`` is traced: the graph keeps the differentiable ops).

    Keras' float16/bfloat16 upcast to float32 and its ``synchronized=True`` path (under
    tf.distribute E[x²] − E[x]², differentiable as it is; outside a replica context the
    same ``_compute_moments``) are untouched. Other threads keep Keras' own
    ``moments``; Keras' function is restored when the last open context closes.
    Nothing changes on JAX and PyTorch, whose moments are differentiable.
    """
    if keras.backend.backend() != "tensorflow":
        yield
        return
    from keras.src.backend.tensorflow import nn as tf_nn

    with _MOMENTS_LOCK:
        if _MOMENTS_STATE["open"] == 0:
            _MOMENTS_STATE["original"] = tf_nn._compute_moments
            tf_nn._compute_moments = _dispatching_moments
        _MOMENTS_STATE["open"] += 1
    depth = getattr(_MOMENTS_LOCAL, "depth", 0)
    _MOMENTS_LOCAL.depth = depth + 1
    try:
        yield
    finally:
        _MOMENTS_LOCAL.depth = depth
        with _MOMENTS_LOCK:
            _MOMENTS_STATE["open"] -= 1
            if _MOMENTS_STATE["open"] == 0:
                tf_nn._compute_moments = _MOMENTS_STATE["original"]
                _MOMENTS_STATE["original"] = None
