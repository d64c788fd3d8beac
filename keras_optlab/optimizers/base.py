"""What every keras_optlab optimizer shares: validation, clipping, skipping, telemetry.

:class:`BookOptimizer` is a ``keras.optimizers.Optimizer`` whose subclasses write only
the book's update rule (``update_step``) and their slots (``build``). On top of Keras'
base arguments it adds

* ``adaptive_clipnorm`` — unit-wise adaptive clipping (Brock et al. 2021);
* ``skip_nonfinite`` — a step whose gradients hold NaN/Inf is skipped whole;
* telemetry saved with the optimizer: ``gradient_norm``, ``clipped_steps``,
  ``skipped_steps``.

Keras' own ``clipnorm``/``clipvalue``/``global_clipnorm`` keep their meaning; the math of
all clipping lives in :mod:`keras_optlab.clipping`.
"""

import numbers

import keras
from keras import ops

from keras_optlab import clipping, kernels

# Inserted into each optimizer's docstring in place of {{base_optimizer_keyword_args}}
# (Keras' habit: the shared arguments are documented once).
BASE_ARGS_DOC = """adaptive_clipnorm: Float > 0 or `None`. Unit-wise adaptive gradient
            clipping (Brock et al. 2021): for every unit of every variable (a unit's
            norm is taken over every axis but the last; a 1-D variable's units are
            its entries), `g ← g · min(1, λ · max(‖w‖, 1e-3) / ‖g‖)` with
            λ = `adaptive_clipnorm`. Applied before `clipnorm`/`clipvalue`/
            `global_clipnorm`.
        track_gradient_norm: Bool, defaults to `False`. Record the global gradient
            norm of every step in `gradient_norm`. It costs one extra read of all
            gradients per step (on CPU about +45% on an SGD step; see
            benchmarks/README.md), so it is off unless asked for — or unless
            clipping is on, which computes it anyway. `GradientStats` turns it on.
        skip_nonfinite: Bool, defaults to `False`. When `True`, a step whose
            gradients hold any NaN or Inf is skipped whole: the weights, every slot,
            the EMA and the step count (hence bias correction and learning-rate
            schedules) stay unchanged and `skipped_steps` is incremented. When
            `False`, a non-finite gradient is applied as it is and the weights it
            touches become NaN/Inf.
        clipnorm: Float > 0. Each gradient tensor whose norm exceeds it is rescaled
            to that norm.
        clipvalue: Float > 0. Each gradient entry is clipped into
            [-clipvalue, clipvalue].
        global_clipnorm: Float > 0. All gradients are rescaled together when their
            global norm exceeds it (the book's Eq. 10.48). At most one of
            `clipnorm`, `clipvalue`, `global_clipnorm`.
        weight_decay, use_ema, ema_momentum, ema_overwrite_frequency,
        loss_scale_factor, gradient_accumulation_steps, name: Keras' base
            optimizer arguments, with Keras' meaning (see
            `keras.optimizers.Optimizer`). Weight decay is decoupled:
            `θ ← θ − ε·λ·θ` before the update.
"""


def fill_docstring(cls):
    """Insert the shared argument documentation into ``cls.__doc__``."""
    if cls.__doc__ is not None:
        cls.__doc__ = cls.__doc__.replace("{{base_optimizer_keyword_args}}", BASE_ARGS_DOC)
    return cls


# --------------------------------------------------------------------------- validation


def check_number(name, value, *, low=None, high=None, low_open=False, high_open=False, allow_none=False):
    """Return ``float(value)`` if it is a real number in the stated range.

    Raises ``TypeError`` for a non-number and ``ValueError`` for an out-of-range
    value; both messages name the argument and echo what was received.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number. Received: {name}={value!r}")
    value = float(value)
    if value != value:
        raise ValueError(f"`{name}` must not be NaN. Received: {name}={value!r}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
        raise ValueError(f"`{name}` must be in {lo}, {hi}. Received: {name}={value!r}")
    return value


def check_learning_rate(value):
    """A float ≥ 0, or a schedule/callable (left to Keras)."""
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule) or callable(value):
        return value
    return check_number("learning_rate", value, low=0.0)


def check_unit_interval(name, value):
    """Momentum-like coefficients: in [0, 1)."""
    return check_number(name, value, low=0.0, high=1.0, high_open=True)


def check_positive(name, value, allow_none=False):
    return check_number(name, value, low=0.0, low_open=True, allow_none=allow_none)


def _check_keras_base_args(kwargs):
    for name in ("clipnorm", "clipvalue", "global_clipnorm"):
        if kwargs.get(name) is not None:
            kwargs[name] = check_positive(name, kwargs[name])
    if kwargs.get("weight_decay") is not None:
        kwargs["weight_decay"] = check_number("weight_decay", kwargs["weight_decay"], low=0.0)
    if kwargs.get("loss_scale_factor") is not None:
        kwargs["loss_scale_factor"] = check_positive("loss_scale_factor", kwargs["loss_scale_factor"])
    steps = kwargs.get("gradient_accumulation_steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, numbers.Integral)):
        raise TypeError(
            "`gradient_accumulation_steps` must be an integer >= 2 or None. "
            f"Received: gradient_accumulation_steps={steps!r}"
        )


# --------------------------------------------------------------------------- optimizer


class BookOptimizer(keras.optimizers.Optimizer):
    """Base class of keras_optlab's optimizers (not registered, not for direct use).

    Subclasses implement ``build`` (calling ``super().build`` first) and
    ``update_step`` with ``keras.ops`` and ``self.assign*``, and extend
    ``get_config``. On the TensorFlow backend a subclass may also define
    ``kernel_update`` (keras_optlab's one-pass CPU kernel) and ``fused_update`` (one
    of TF's fused training kernels), each computing the same operations in the same
    order as ``update_step``; ``update_path`` says which one a variable gets.
    Everything around the update (clipping, skipping, weight decay, EMA,
    accumulation, tf.distribute) is shared.

    Telemetry (``keras.Variable`` scalars, saved and restored with the optimizer;
    ``None`` until the optimizer is built):

    * ``gradient_norm`` — global norm of the last applied gradient, before any
      clipping (NaN/Inf when that gradient was non-finite). Measured when some
      clipping is configured or ``track_gradient_norm=True``; otherwise it stays
      NaN ("not measured"). With ``gradient_accumulation_steps`` it is the norm of
      the averaged gradient that was applied. Under ``tf.distribute`` it is the first replica's gradient,
      before the all-reduce, which is also where Keras clips.
    * ``clipped_steps`` — number of applied steps on which some clipping changed the
      gradient.
    * ``skipped_steps`` — number of steps skipped by ``skip_nonfinite``.
    """

    def __init__(
        self, learning_rate, adaptive_clipnorm=None, skip_nonfinite=False, track_gradient_norm=False, **kwargs
    ):
        learning_rate = check_learning_rate(learning_rate)
        _check_keras_base_args(kwargs)
        adaptive_clipnorm = check_positive("adaptive_clipnorm", adaptive_clipnorm, allow_none=True)
        for arg, value in (("skip_nonfinite", skip_nonfinite), ("track_gradient_norm", track_gradient_norm)):
            if not isinstance(value, bool):
                raise TypeError(f"`{arg}` must be a bool. Received: {arg}={value!r}")
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.adaptive_clipnorm = adaptive_clipnorm
        self.skip_nonfinite = skip_nonfinite
        # A plain attribute read when the train step is traced: set it before the
        # first step (GradientStats does, in on_train_begin).
        self.track_gradient_norm = track_gradient_norm
        self._gradient_norm = self._clipped_steps = self._skipped_steps = None

    # ------------------------------------------------------------------ state
    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # "only_first_replica": assignable from a tf.distribute replica context,
        # like Keras' own `iterations`.
        self._gradient_norm = self.add_variable(
            (), initializer=keras.initializers.Constant(float("nan")), dtype="float32",
            name="gradient_norm", aggregation="only_first_replica",
        )
        self._clipped_steps = self.add_variable(
            (), dtype="int", name="clipped_steps", aggregation="only_first_replica"
        )
        self._skipped_steps = self.add_variable(
            (), dtype="int", name="skipped_steps", aggregation="only_first_replica"
        )

    @property
    def gradient_norm(self):
        """Global gradient norm of the last applied step, before clipping."""
        return self._gradient_norm

    @property
    def clipped_steps(self):
        """Steps on which clipping changed the gradient."""
        return self._clipped_steps

    @property
    def skipped_steps(self):
        """Steps skipped because a gradient was NaN/Inf (``skip_nonfinite``)."""
        return self._skipped_steps

    @property
    def _clips(self):
        return any(
            t is not None for t in (self.adaptive_clipnorm, self.clipnorm, self.clipvalue, self.global_clipnorm)
        )

    # ------------------------------------------------------------------ steps
    def apply(self, grads, trainable_variables=None):
        if not self.skip_nonfinite or len(grads) == 0:
            return super().apply(grads, trainable_variables)
        if not self.built:
            if trainable_variables is None:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already be "
                    "built on a list of variables. Call `optimizer.build(trainable_variables)` first."
                )
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))
        # Skip by selection rather than by a conditional: the same code then runs in
        # TF graphs, under XLA and in JAX's stateless training step, where a cond
        # whose branches assign variables is not allowed.
        finite = clipping.all_finite(grads)
        model_vars = self._trainable_variables if trainable_variables is None else list(trainable_variables)
        kept = [v for v in self.variables if v is not self._gradient_norm and v is not self._skipped_steps]
        kept += list(model_vars)
        before = [ops.copy(v.value) for v in kept]  # snapshots (convert_to_tensor may alias a tf.Variable)
        super().apply(grads, trainable_variables)
        for v, old in zip(kept, before):
            v.assign(ops.where(finite, v.value, old))
        self._skipped_steps.assign_add(ops.cast(ops.logical_not(finite), self._skipped_steps.dtype))

    def _backend_apply_gradients(self, grads, trainable_variables):
        # Keras' hook below (`_clip_gradients`) receives gradients only; adaptive
        # clipping also needs the weights. object.__setattr__ keeps Keras' tracker
        # from adopting the model's variables as optimizer variables.
        object.__setattr__(self, "_variables_being_updated", list(trainable_variables))
        try:
            super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            object.__setattr__(self, "_variables_being_updated", None)

    def _clip_gradients(self, grads):
        # Keras calls this once per applied step (after loss-scale unscaling and
        # gradient-accumulation averaging, before weight decay and the update): the
        # one place where clipping and its telemetry belong. It replaces Keras'
        # clipping with keras_optlab.clipping, which has the same semantics and also
        # reports whether anything changed.
        if not self._clips and not self.track_gradient_norm:
            return grads  # Keras' own path: nothing to clip, nothing to measure
        norm = clipping.global_norm(grads)
        self._gradient_norm.assign(ops.cast(norm, "float32"))
        if not self._clips:
            return grads
        changed = ops.convert_to_tensor(False)
        if self.adaptive_clipnorm is not None:
            grads, c = clipping.adaptive_clip(grads, self._variables_being_updated, self.adaptive_clipnorm)
            changed = ops.logical_or(changed, c)
            norm = None  # the global norm has to be recomputed after AGC
        if self.clipnorm is not None:
            grads, c = clipping.clip_by_norm(grads, self.clipnorm)
        elif self.global_clipnorm is not None:
            grads, c = clipping.clip_by_global_norm(grads, self.global_clipnorm, norm=norm)
        elif self.clipvalue is not None:
            grads, c = clipping.clip_by_value(grads, self.clipvalue)
        else:
            c = ops.convert_to_tensor(False)
        changed = ops.logical_or(changed, c)
        self._clipped_steps.assign_add(ops.cast(changed, self._clipped_steps.dtype))
        return grads

    # ------------------------------------------------------------------ fast paths
    # On the TensorFlow backend the per-variable update goes through the fastest of
    # three rules that compute the same operations in the same order:
    #
    # * "kernel" — keras_optlab's own CPU kernel (keras_optlab/kernels): one pass
    #   over θ, g and the slots. A subclass opts in by defining
    #   ``kernel_update(kernels, gradient, variable, learning_rate)``. Used for
    #   float32/float64 variables on the CPU outside XLA, when the kernels built.
    # * "fused" — one of TF's fused training kernels (tf.raw_ops.ResourceApply*),
    #   which computes the rule exactly: ``fused_update(gradient, variable,
    #   learning_rate)``. Used where the kernel is not (GPU, XLA, float16, no
    #   compiler): TF's kernels have GPU and XLA implementations.
    # * "ops" — ``update_step``, the keras.ops rule: every other backend, and
    #   optimizers without a TF kernel.
    #
    # Either fast path replaces one kernel (and one temporary) per keras.ops call,
    # which is what makes an un-XLA'd step memory-bound instead of dispatch- and
    # temporary-bound (benchmarks/README.md).
    kernel_update = None
    fused_update = None
    FUSED_DTYPES = ("float16", "bfloat16", "float32", "float64")
    KERNEL_DTYPES = ("float32", "float64")

    def update_path(self, variable):
        """``"kernel"``, ``"fused"`` or ``"ops"``: the rule that updates ``variable``.

        Decided when the step is traced, in the context it is traced in (a
        ``jit_compile=True`` function gets ``"fused"`` or ``"ops"``).
        """
        if keras.backend.backend() != "tensorflow":
            return "ops"
        dtype = keras.backend.standardize_dtype(variable.dtype)
        if (
            self.kernel_update is not None
            and dtype in self.KERNEL_DTYPES
            and _on_cpu(self.handle(variable))
            and not _in_xla_context()
            and _load_kernels() is not None
        ):
            return "kernel"
        if self.fused_update is not None and dtype in self.FUSED_DTYPES:
            return "fused"
        return "ops"

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        # The TF backend's per-variable hook (keras TFOptimizer): Keras calls
        # ``update_step`` inside ``distribution.extended.update``, with ``var`` the
        # variable of the device being updated (a component of a MirroredVariable
        # under MirroredStrategy). We keep that structure and only choose the rule.
        def update(var, grad, learning_rate):
            path = self.update_path(var)
            if path == "kernel":
                return self.kernel_update(_load_kernels(), grad, var, learning_rate)
            if path == "fused":
                return self.fused_update(grad, var, learning_rate)
            return self.update_step(grad, var, learning_rate)

        for grad, var in grads_and_vars:
            distribution.extended.update(var, update, args=(grad, learning_rate), group=False)

    @staticmethod
    def handle(variable):
        """The resource handle a fused kernel updates in place.

        Inside ``distribution.extended.update`` a slot's MirroredVariable yields the
        handle of the copy on the device being updated, as ``variable`` does.
        """
        if isinstance(variable, keras.Variable):
            variable = variable.value  # the backing tf.Variable
        return variable.handle

    @staticmethod
    def kernels():
        """``tf.raw_ops``, imported only when a fused kernel runs (TF backend)."""
        import tensorflow as tf

        return tf.raw_ops

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def prepare(gradient, variable, learning_rate):
        """(dense gradient, learning rate) in the variable's dtype.

        The book's algorithms treat g as dense: a sparse gradient (embedding rows) is
        scattered into zeros so that slots decay everywhere, as the algorithm says.
        """
        gradient = ops.cast(clipping.densify(gradient), variable.dtype)
        return gradient, ops.cast(learning_rate, variable.dtype)

    def slot(self, slots, variable):
        """The slot of ``variable`` in the list ``slots``."""
        return slots[self._get_variable_index(variable)]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "adaptive_clipnorm": self.adaptive_clipnorm,
                "skip_nonfinite": self.skip_nonfinite,
                "track_gradient_norm": self.track_gradient_norm,
            }
        )
        return config


def _load_kernels():
    """``kernels.load()``, kept out of AutoGraph's conversion when called in a trace."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(kernels.load)()


def _in_xla_context():
    """Whether the TF graph being traced is compiled by XLA (``jit_compile=True``).

    keras_optlab's kernels have no XLA lowering. ``tf.function(jit_compile=True)``
    marks its graph with an XLA control-flow context; TF has no public query for it,
    so this uses TF's own helper and, should it ever move, answers "yes" (the safe
    side: TF's fused kernels or the keras.ops rule work under XLA).
    """
    import tensorflow as tf

    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - TF internals moved
        return True
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _on_cpu(handle):
    """Whether a resource handle lives on a CPU (placement decided, or no GPU at all)."""
    import tensorflow as tf

    device = tf.DeviceSpec.from_string(handle.device or "").device_type
    if device:
        return device.upper() == "CPU"
    return not tf.config.list_logical_devices("GPU")
