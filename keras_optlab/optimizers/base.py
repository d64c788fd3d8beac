"""What every keras_optlab optimizer shares: arguments, slots, clipping, skipping, telemetry.

:class:`BookOptimizer` is a ``keras.optimizers.Optimizer`` whose subclasses follow
Keras' template: ``__init__``, ``build`` (their slots), ``update_step`` (read the slots,
call the book's rule from :mod:`keras_optlab.optimizers.rules`, assign) and
``get_config``. On top of Keras' base arguments it adds

* ``adaptive_clipnorm`` — unit-wise adaptive clipping (Brock et al. 2021);
* ``skip_nonfinite`` — a step whose gradients hold NaN/Inf is skipped whole;
* telemetry saved with the optimizer: ``gradient_norm``, ``clipped_steps``,
  ``skipped_steps``;
* ``polyak`` / ``polyak_start`` — Polyak averaging of the iterates (Sec. 8.7.3):
  θ̂ₜ = θ̂ₜ₋₁ + (θₜ − θ̂ₜ₋₁)/t, the arithmetic mean of the weights after each step,
  updated after the whole step (so outside every speed path) and read through
  ``averaged_variables`` / ``finalize_variable_values``
  (:mod:`keras_optlab.averaging` swaps it in for evaluation).

Keras' own ``clipnorm``/``clipvalue``/``global_clipnorm`` keep their meaning; the math of
all clipping lives in :mod:`keras_optlab.clipping`. The private Keras methods this
needs are overridden in :mod:`keras_optlab._keras_hooks` and nowhere else.

Speed paths (TensorFlow's fused kernels, keras_optlab's CPU kernels) are an optional
layer, :mod:`keras_optlab.accel`, which this module does not import: it registers
itself here through :func:`register_accelerator` and is asked, per variable, whether it
has a faster update that computes exactly the rule.
"""

import contextlib
import importlib.metadata
import threading

import keras
import ml_dtypes
import numpy as np
from keras import ops

from keras_optlab import _checks, clipping
from keras_optlab import _keras_hooks
from keras_optlab.optimizers.shared import OptlabOptimizer

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
        polyak: `None` (default) or `"arithmetic"`. Polyak averaging (*Deep
            Learning* Sec. 8.7.3; Polyak & Juditsky 1992): the optimizer keeps, per
            trainable variable, the arithmetic mean θ̂ = (1/t) Σᵢ θ⁽ⁱ⁾ of the
            weights after each averaged step, updated as
            θ̂ₜ = θ̂ₜ₋₁ + (θₜ − θ̂ₜ₋₁)/t (t = 1 at the first averaged step, so θ̂ = θ
            after it). The training trajectory is unchanged; the average is read
            by `averaged_variables`, written into the model at the end of `fit`
            (`finalize_variable_values`, as Keras does for `use_ema`) and swapped
            in for evaluation by `keras_optlab.averaging.SwapAveragedWeights`.
            Skipped steps (`skip_nonfinite`) and the accumulation-only steps of
            `gradient_accumulation_steps` are not averaged. Not with `use_ema`
            (one average at a time).
        polyak_start: Integer ≥ 0, defaults to 0. The first `polyak_start`
            applied steps are a burn-in: after each of them the average is a copy
            of the weights, and the mean runs over the weights after steps
            `polyak_start + 1, polyak_start + 2, …`.
        clipnorm: Float > 0. Each gradient tensor whose norm exceeds it is rescaled
            to that norm.
        clipvalue: Float > 0. Each gradient entry is clipped into
            [-clipvalue, clipvalue].
        global_clipnorm: Float > 0. All gradients are rescaled together when their
            global norm exceeds it (the book's Eq. 10.48). At most one of
            `clipnorm`, `clipvalue`, `global_clipnorm`.
        weight_decay, use_ema, ema_momentum, ema_overwrite_frequency,
        loss_scale_factor, gradient_accumulation_steps: Keras' base optimizer
            arguments, with Keras' meaning (see `keras.optimizers.Optimizer`).
            Weight decay is decoupled: `θ ← θ − ε·λ·θ` before the update.
        name: String or `None` (default): Keras' auto-naming, the first optimizer
            of a class gets its base name (`"adam"`), the next `"adam_1"`, ….

    Variables must have a floating-point dtype (float16, bfloat16, float32,
    float64); an integer variable is refused at build, since no learning rate
    survives the cast to it. In float16/bfloat16 the scalars of a step that are
    not element-wise (Adam's bias corrections) are computed in float32, and a δ
    (`epsilon`) below the dtype's smallest normal number (float16: 6.1e-5) is
    raised to it: float16 would round Adam's default 1e-8 to 0.

    Optimizer state loaded from disk (`load_own_variables`, hence `.keras`
    files) is checked before it is used: NaN/Inf in any slot, a negative
    second-moment accumulator or a negative step count raises `ValueError`
    naming the variable.
"""


def fill_docstring(cls):
    """Insert the shared argument documentation into ``cls.__doc__``."""
    if cls.__doc__ is not None:
        cls.__doc__ = cls.__doc__.replace("{{base_optimizer_keyword_args}}", BASE_ARGS_DOC)
    return cls



_HALF = ("float16", "bfloat16")

# The averages `polyak` accepts: Sec. 8.7.3's arithmetic mean of the iterates (Keras'
# `use_ema` is the exponential one).
POLYAK_KINDS = ("arithmetic",)


def smallest_normal(dtype):
    """The smallest positive normal number of the float ``dtype``."""
    dtype = keras.backend.standardize_dtype(dtype)
    if dtype == "bfloat16":
        return float(ml_dtypes.finfo(ml_dtypes.bfloat16).smallest_normal)
    return float(np.finfo(dtype).smallest_normal)


def scalar_dtype(dtype):
    """Where a step's scalars (bias corrections) are computed: float32 for
    float16/bfloat16 variables (ρ₂ = 0.999 is 1.0 in bfloat16), else the dtype."""
    dtype = keras.backend.standardize_dtype(dtype)
    return "float32" if dtype in _HALF else dtype


def _check_keras_base_args(kwargs):
    """Keras' base arguments, checked at construction (Keras checks some only at use)."""
    for name in ("clipnorm", "clipvalue", "global_clipnorm"):
        kwargs[name] = _checks.positive(name, kwargs.get(name), allow_none=True)
    kwargs["weight_decay"] = _checks.number("weight_decay", kwargs.get("weight_decay"), low=0.0, allow_none=True)
    kwargs["loss_scale_factor"] = _checks.positive("loss_scale_factor", kwargs.get("loss_scale_factor"), allow_none=True)
    kwargs["ema_momentum"] = _checks.number("ema_momentum", kwargs.get("ema_momentum", 0.99), low=0.0, high=1.0)
    if "use_ema" in kwargs:
        kwargs["use_ema"] = _checks.boolean("use_ema", kwargs["use_ema"])
    kwargs["ema_overwrite_frequency"] = _checks.integer(
        "ema_overwrite_frequency", kwargs.get("ema_overwrite_frequency"), low=1, allow_none=True
    )
    # Keras refuses 1 and silently treats 0 as "off": both are refused here, by the same rule.
    kwargs["gradient_accumulation_steps"] = _checks.integer(
        "gradient_accumulation_steps", kwargs.get("gradient_accumulation_steps"), low=2, allow_none=True
    )
    return {k: v for k, v in kwargs.items() if v is not None}


def _static_shape(g):
    """A gradient's static shape, or ``None`` when it has none to compare (``None``
    gradients; an ``IndexedSlices`` whose dense_shape is a Python tuple has no ``.shape``)."""
    if g is None:
        return None
    if clipping.is_sparse(g) and not hasattr(g, "todense"):  # IndexedSlices
        dense_shape = g.dense_shape
        if isinstance(dense_shape, (list, tuple)):
            return tuple(dense_shape)
    try:
        return tuple(g.shape)
    except (AttributeError, TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- speed paths

# Speed-path providers are plugins: an installed package lists its module under this
# entry-point group (keras_optlab lists keras_optlab.accel in pyproject.toml), and the
# module registers itself through register_accelerator when it is imported. The
# optimizers never import it: the group is read once, at the first build or
# update_path, so `from keras_optlab.optimizers import Adam` gets the speed paths as
# `keras_optlab.Adam` does, and `import keras_optlab` alone imports no TensorFlow.
ACCELERATOR_ENTRY_POINTS = "keras_optlab.accelerators"

_accelerators = []
_plugins_loaded = False


def accelerators():
    """The registered speed-path providers, after loading the installed plugins once.

    A plugin whose import fails for a missing dependency (no TensorFlow) is left out:
    every optimizer then runs its keras.ops rule.
    """
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        for entry in importlib.metadata.entry_points(group=ACCELERATOR_ENTRY_POINTS):
            try:
                entry.load()
            except ImportError:
                continue
    return tuple(_accelerators)


def register_accelerator(accelerator):
    """Register a speed-path provider (keras_optlab.accel does, on import).

    ``accelerator.prepare(optimizer)`` is called eagerly when an optimizer is built
    (to build or load kernels outside any trace); ``accelerator.choose(optimizer,
    variable)`` returns ``(path name, update function)`` or ``None`` when the variable
    gets the keras.ops rule. The update function is called as
    ``update(optimizer, gradient, variable, learning_rate)`` and must compute exactly
    what ``update_step`` computes.
    """
    if accelerator not in _accelerators:
        _accelerators.append(accelerator)


def speed_path_rule(optimizer):
    """The optimizer's rule name (``RULE``) for a speed path, or ``None`` if a subclass
    changed ``update_step`` or ``rule_inputs``: a user's subclass that overrides them
    computes something else, and only its own ``update_step`` is then right."""
    for cls in type(optimizer).__mro__:
        if "RULE" in cls.__dict__:
            declared = cls
            break
    else:  # pragma: no cover - BookOptimizer declares RULE = None
        return None
    kind = type(optimizer)
    if kind.update_step is not declared.update_step or kind.rule_inputs is not declared.rule_inputs:
        return None
    return declared.RULE


class PathSwitch:
    """A speed-path plugin's public switch over its ``paths`` (the last one ``"ops"``,
    always allowed): :meth:`allowed` is what the optimizers may choose from now, in this
    thread; :meth:`restrict` is the context manager that narrows it (nested blocks: the
    innermost is in force). Both plugins (``keras_optlab.accel``,
    ``keras_optlab.accel_torch``) expose them as ``allowed_paths`` and ``paths``."""

    def __init__(self, paths):
        self.paths = tuple(paths)
        self._setting = threading.local()

    def allowed(self):
        return getattr(self._setting, "allowed", self.paths)

    @contextlib.contextmanager
    def restrict(self, *names):
        paths = self.paths
        if not names:
            raise ValueError(f"`paths` needs at least one of {paths}. Received: paths()")
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"Each path must be a string, one of {paths}. Received: {name!r}")
            if name not in paths:
                raise ValueError(f"Each path must be one of {paths}. Received: {name!r}")
        previous = self.allowed()
        self._setting.allowed = tuple(p for p in paths if p in names or p == "ops")
        try:
            yield
        finally:
            self._setting.allowed = previous


def _choose(optimizer, variable):
    for accelerator in accelerators():
        choice = accelerator.choose(optimizer, variable)
        if choice is not None:
            return choice
    return None


# --------------------------------------------------------------------------- optimizer


class BookOptimizer(_keras_hooks.KerasHooks, OptlabOptimizer):
    """Base class of keras_optlab's optimizers (not registered, not for direct use).

    Subclasses define ``build`` (calling ``super().build`` and then
    :meth:`add_slots`), ``rule_hyperparameters`` and ``update_step`` — which reads its
    inputs with :meth:`rule_inputs`, calls its function of
    :mod:`keras_optlab.optimizers.rules` and writes the result with
    :meth:`apply_rule` — and extend ``get_config``. ``RULE`` names the rule, which is
    how the optional speed paths (:mod:`keras_optlab.accel`) recognise an update
    they can compute faster; :meth:`update_path` says which path a variable gets.
    Everything around the update (clipping, skipping, weight decay, EMA,
    accumulation, tf.distribute) is shared.

    Telemetry (``keras.Variable`` scalars, saved and restored with the optimizer;
    ``None`` until the optimizer is built):

    * ``gradient_norm`` — global norm of the last applied gradient, before any
      clipping (NaN/Inf when that gradient was non-finite). Measured when some
      clipping is configured or ``track_gradient_norm=True``; otherwise it stays
      NaN ("not measured"). With ``gradient_accumulation_steps`` it is the norm of
      the averaged gradient that was applied. Under ``tf.distribute`` it is the norm of
      the gradient summed over the replicas (the global batch's), which is also what
      keras_optlab clips and checks for NaN/Inf — unlike Keras, which clips each
      replica's gradient before the sum (without gradient accumulation; with it the
      accumulators stay per replica, as in Keras).
    * ``clipped_steps`` — number of applied steps on which some clipping changed the
      gradient.
    * ``skipped_steps`` — number of steps skipped by ``skip_nonfinite``.

    With ``polyak="arithmetic"``: ``averaged_variables`` (one ``polyak_average`` slot
    per trainable variable) and ``averaged_steps`` (t, the number of averaged steps),
    saved and restored with the optimizer; ``average_of(variable)`` is one variable's
    average.
    """

    RULE = None  # the name of the rule in keras_optlab.optimizers.rules
    BASE_NAME = None  # the auto-name's base ("adam" → adam, adam_1, …)
    NONNEGATIVE_SLOTS = ()  # slots the algorithm needs ≥ 0 (checked when state is loaded)

    def __init__(
        self,
        learning_rate,
        adaptive_clipnorm=None,
        skip_nonfinite=False,
        track_gradient_norm=False,
        polyak=None,
        polyak_start=0,
        name=None,
        **kwargs,
    ):
        kwargs = _check_keras_base_args(kwargs)
        adaptive_clipnorm = _checks.positive("adaptive_clipnorm", adaptive_clipnorm, allow_none=True)
        track_gradient_norm = _checks.boolean("track_gradient_norm", track_gradient_norm)
        if polyak is not None:
            polyak = _checks.one_of("polyak", polyak, POLYAK_KINDS)
        polyak_start = _checks.integer("polyak_start", polyak_start, low=0)
        if polyak is not None and kwargs.get("use_ema"):
            raise ValueError(
                "`polyak` and `use_ema` are two averages of the weights; choose one. "
                f"Received: polyak={polyak!r}, use_ema=True"
            )
        super().__init__(learning_rate=learning_rate, skip_nonfinite=skip_nonfinite, name=name, **kwargs)
        self.adaptive_clipnorm = adaptive_clipnorm
        # A plain attribute read when the train step is traced: set it before the
        # first step (GradientStats does, in on_train_begin).
        self.track_gradient_norm = track_gradient_norm
        self._clipped_steps = None
        self.polyak = polyak
        self.polyak_start = polyak_start
        self._polyak_average = None
        self._polyak_count = None
        # skip_nonfinite on the select-in-the-rule path: the step's "all finite" flag,
        # set only while apply() runs (see apply and apply_rule).
        object.__setattr__(self, "_step_is_finite", None)
        self._slots = ()
        self._slot_names = ()

    # ------------------------------------------------------------------ state
    def build(self, var_list):
        if self.built:
            return
        self.check_variable_dtypes(var_list)
        super().build(var_list)
        self._clipped_steps = self.add_telemetry(clipped_steps=True)
        if self.polyak is not None:
            self._build_average(var_list)
        for accelerator in accelerators():  # eager: kernels are built outside any trace
            accelerator.prepare(self)

    def add_slots(self, var_list, names, initializer="zeros"):
        """Create one slot per model variable for each of ``names`` (in this order)."""
        slots = self.add_optimizer_variables(var_list, list(names), initializer=initializer)
        self._slots = tuple(slots)
        self._slot_names = tuple(names)

    def _build_average(self, var_list):
        """The Polyak average's state: one slot per variable, a copy of the weights
        until the first averaged step, and t, the number of averaged steps."""
        # A copy taken by the variable's initializer (not an assign after creation): a
        # build traced inside a tf.function then copies once, not at every call.
        self._polyak_average = [
            None if getattr(v, "overwrite_with_gradient", False)  # Keras gives these no slots
            else self.add_variable_from_reference(v, name="polyak_average", initializer=_CopyOf(v))
            for v in var_list
        ]
        self._polyak_count = self.add_variable(
            (), dtype="int", name="polyak_steps", aggregation="only_first_replica"
        )

    def counters(self):
        return super().counters() + tuple(v for v in (self._clipped_steps, self._polyak_count) if v is not None)

    def nonnegative_variables(self):
        """Second-moment accumulators (``NONNEGATIVE_SLOTS``)."""
        return tuple(v for name, slot_list in zip(self._slot_names, self._slots) if name in self.NONNEGATIVE_SLOTS
                     for v in slot_list)

    def check_loaded_state(self, store, index):
        """t (averaged steps) cannot exceed the steps the optimizer took (checked when
        ``iterations`` is a variable: without gradient accumulation)."""
        if self._polyak_count is None or id(self.iterations) not in index:
            return
        count = int(np.asarray(store[str(index[id(self._polyak_count)])]))
        taken = int(np.asarray(store[str(index[id(self.iterations)])]))
        if count > taken:
            self.refuse_loaded(self._polyak_count, f"counts more averaged steps than the optimizer took ({taken})",
                               count)

    def slots(self, variable):
        """The slot variables of ``variable``, in the order of :meth:`add_slots`."""
        index = _keras_hooks.variable_index(self, variable)
        return tuple(slot_list[index] for slot_list in self._slots)

    @property
    def clipped_steps(self):
        """Steps on which clipping changed the gradient."""
        return self._clipped_steps

    @property
    def averaged_variables(self):
        """The Polyak averages θ̂, one ``keras.Variable`` per variable the optimizer was
        built on, in that order (``None`` for a variable Keras gives no slots); ``None``
        without ``polyak`` or before the optimizer is built."""
        return None if self._polyak_average is None else list(self._polyak_average)

    @property
    def averaged_steps(self):
        """t: the number of steps averaged into ``averaged_variables`` (``None`` without
        ``polyak`` or before build)."""
        return self._polyak_count

    def average_of(self, variable):
        """The Polyak average θ̂ of one model ``variable``."""
        if self.polyak is None:
            raise ValueError(
                f"optimizer '{self.name}' keeps no Polyak average: construct it with "
                f"polyak='arithmetic'. Received: polyak={self.polyak!r}"
            )
        if not self.built:
            raise ValueError(
                f"optimizer '{self.name}' is not built yet, so it has no average: train a "
                "step or call `optimizer.build(variables)` first."
            )
        try:
            average = self._polyak_average[_keras_hooks.variable_index(self, variable)]
        except KeyError:
            average = None
        if average is None:
            raise ValueError(
                f"optimizer '{self.name}' keeps no average of this variable (it was not built on "
                f"it). Received: variable={_checks.shown(getattr(variable, 'path', variable))}"
            )
        return average

    def finalize_variable_values(self, var_list):
        """Keras calls it at the end of ``fit`` with the model's trainable variables:
        with ``polyak``, each takes its average θ̂ (Keras' ``use_ema`` does the same with
        its moving average). Training called again continues from θ̂, with the average
        and its count t kept."""
        super().finalize_variable_values(var_list)
        if self.polyak is None or not self.built:
            return
        for variable in var_list:
            # A copy: on JAX the weight would otherwise hold the slot's own buffer, and
            # the next fit's compiled step (which donates its arguments) would refuse it.
            variable.assign(ops.copy(self.average_of(variable).value))

    @property
    def clips(self):
        """Whether any clipping is configured."""
        return any(
            t is not None for t in (self.adaptive_clipnorm, self.clipnorm, self.clipvalue, self.global_clipnorm)
        )

    # ------------------------------------------------------------------ steps
    def apply_gradients(self, grads_and_vars):
        pairs = list(grads_and_vars) if not isinstance(grads_and_vars, (str, bytes, dict)) else None
        if pairs is None or any(not isinstance(p, (list, tuple)) or len(p) != 2 for p in pairs):
            raise TypeError(
                "`grads_and_vars` must be an iterable of (gradient, variable) pairs. "
                f"Received: grads_and_vars={_checks.shown(grads_and_vars)}"
            )
        return super().apply_gradients(pairs)

    def apply(self, grads, trainable_variables=None):
        grads = self._check_apply_arguments(grads, trainable_variables)
        # Under tf.distribute, clipping, the non-finite check and the gradient norm see
        # the gradient of the whole global batch: the replicas' gradients are summed
        # here, before them (Keras sums after its clipping; _keras_hooks then leaves our
        # sum alone). With gradient accumulation the accumulators stay per replica, as
        # in Keras.
        reduced = False
        if (self.clips or self.skip_nonfinite or self.track_gradient_norm) and not self.gradient_accumulation_steps:
            grads, reduced = _keras_hooks.replica_sum(grads)
        object.__setattr__(self, "_gradients_reduced", reduced)
        averaging = self.polyak is not None and len(grads) > 0
        # The step count before the step: the step was applied (not skipped, not an
        # accumulation-only call) iff `iterations` moved.
        steps_before = ops.copy(ops.convert_to_tensor(self.iterations)) if averaging else None
        try:
            self._apply_summed(grads, trainable_variables)
        finally:
            object.__setattr__(self, "_gradients_reduced", False)
        if averaging:
            self._update_average(steps_before)

    def _update_average(self, steps_before):
        """θ̂ ← θ̂ + (θ − θ̂)/t after an applied step counted by the average (t = 1: θ̂ ← θ),
        θ̂ ← θ after a burn-in step (``polyak_start``), θ̂ unchanged otherwise.

        Written with selects, not a conditional (the same code in TF graphs, under
        tf.distribute's replica context, in JAX's stateless step), after the whole step:
        whatever path updated the weights (keras.ops rule, TF fused kernel, torch
        in-place), the average reads the weights it left.
        """
        steps = ops.convert_to_tensor(self.iterations)
        applied = ops.greater(steps, steps_before)
        counted = ops.logical_and(applied, ops.greater(steps, self.polyak_start))
        count = ops.add(self._polyak_count, ops.cast(counted, self._polyak_count.dtype))
        self.assign(self._polyak_count, count)
        # A copy is exact: θ̂ + (θ − θ̂)/1 may differ from θ by a rounding.
        copy = ops.logical_and(applied, ops.logical_or(ops.logical_not(counted), ops.equal(count, 1)))
        for variable, average in zip(_keras_hooks.tracked_variables(self), self._polyak_average):
            if average is None:
                continue
            dtype = scalar_dtype(variable.dtype)  # float32 arithmetic for float16/bfloat16
            theta = ops.cast(variable, dtype)
            old = ops.cast(ops.convert_to_tensor(average), dtype)
            t = ops.cast(ops.maximum(count, 1), dtype)
            mean = ops.add(old, ops.divide(ops.subtract(theta, old), t))
            new = ops.where(copy, theta, ops.where(counted, mean, old))
            self.assign(average, ops.cast(new, variable.dtype))

    def _average_state(self):
        """The Polyak average's variables (empty without ``polyak`` or before build)."""
        if self._polyak_average is None:
            return ()
        return (self._polyak_count, *(a for a in self._polyak_average if a is not None))

    def _apply_summed(self, grads, trainable_variables):
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
        # whose branches assign variables is not allowed, and it never reads the flag
        # back to the host (no per-step device sync on torch or a GPU).
        finite = clipping.all_finite(grads)
        # Not snapshotted: the telemetry, and the Polyak average (updated after the step,
        # by apply, only when the step was applied).
        telemetry = (self._gradient_norm, self._skipped_steps) + self._average_state()
        if self._selects_in_rule():
            # The rule's own writes pick the old or the new value (apply_rule): only the
            # scalars Keras and the telemetry change around the update are snapshotted.
            kept = [v for v in self.variables if len(v.shape) == 0 and not any(v is t for t in telemetry)]
            object.__setattr__(self, "_step_is_finite", finite)
        else:
            if trainable_variables is None:
                model_vars = _keras_hooks.tracked_variables(self)
            else:
                model_vars = list(trainable_variables)
            kept = [v for v in self.variables if not any(v is t for t in telemetry)] + model_vars
        before = [ops.copy(v.value) for v in kept]  # snapshots (convert_to_tensor may alias a tf.Variable)
        try:
            super().apply(grads, trainable_variables)
        finally:
            object.__setattr__(self, "_step_is_finite", None)
        for v, old in zip(kept, before):
            v.assign(ops.where(finite, v.value, old))
        self._skipped_steps.assign_add(ops.cast(ops.logical_not(finite), self._skipped_steps.dtype))

    def _selects_in_rule(self):
        """Whether a skipped step can be undone inside :meth:`apply_rule` instead of by
        snapshots of every weight and slot (two passes over the whole state per step:
        on torch, eager, the whole cost of ``skip_nonfinite``).

        That needs every write of the step to go through ``apply_rule``: no weight
        decay (applied to the weights before the rule), no EMA and no gradient
        accumulation (their own variables). And not on TensorFlow, where a variable may
        take a speed path (keras_optlab.accel, which writes on its own) and, under
        tf.distribute, is updated in a cross-replica context where the replica's
        ``finite`` flag does not exist; there a traced graph's snapshot is cheap next
        to the fused update anyway. A subclass's own ``update_step`` (one not written
        in keras_optlab.optimizers) might assign without ``apply_rule``: it gets the
        snapshots.
        """
        return (
            keras.backend.backend() != "tensorflow"
            and type(self).update_step.__module__.startswith("keras_optlab.optimizers.")
            and self.weight_decay is None
            and not self.use_ema
            and not self.gradient_accumulation_steps
        )

    def _check_apply_arguments(self, grads, trainable_variables):
        """``grads`` as a list, after checking it against the variables: one gradient
        (or None) per variable, of the variable's shape. Keras would zip a short list
        silently, or fail deep inside an assign."""
        grads = clipping.gradient_list(grads)
        if trainable_variables is not None:
            if not isinstance(trainable_variables, (list, tuple)):
                raise TypeError(
                    "`trainable_variables` must be a list or tuple of variables. "
                    f"Received: trainable_variables of type {type(trainable_variables).__name__}"
                )
            variables = list(trainable_variables)
            for i, v in enumerate(variables):
                if not (hasattr(v, "assign") and hasattr(v, "shape") and hasattr(v, "dtype")):
                    raise TypeError(
                        f"`trainable_variables[{i}]` must be a variable (keras.Variable). "
                        f"Received: trainable_variables[{i}]={_checks.shown(v)}"
                    )
        elif self.built:
            variables = _keras_hooks.tracked_variables(self)
        else:
            return grads  # Keras says that it needs the variables
        if len(grads) != len(variables):
            raise ValueError(
                "`grads` must hold one gradient (or None) per variable. "
                f"Received: len(grads)={len(grads)}, len(trainable_variables)={len(variables)}"
            )
        for i, (g, v) in enumerate(zip(grads, variables)):
            g_shape = _static_shape(g)
            if g_shape is None:
                continue
            v_shape = tuple(v.shape)
            if len(g_shape) != len(v_shape) or any(
                a is not None and b is not None and int(a) != int(b) for a, b in zip(g_shape, v_shape)
            ):
                raise ValueError(
                    f"`grads[{i}]` must have the shape of its variable '{getattr(v, 'path', getattr(v, 'name', i))}', "
                    f"{v_shape}. Received: grads[{i}] of shape {g_shape}"
                )
        return grads

    def transform_gradients(self, grads, variables):
        """Clipping and its telemetry, once per applied step (see ``_keras_hooks``).

        Keras calls it after loss-scale unscaling and gradient-accumulation averaging,
        before weight decay and the update. It replaces Keras' clipping with
        keras_optlab.clipping, which has the same semantics and also reports whether
        anything changed. ``variables`` is ``None`` outside a step; then adaptive
        clipping (which needs the weights) is refused, and the telemetry is left alone
        when the optimizer is not built yet.
        """
        if not self.clips and not self.track_gradient_norm:
            return grads  # Keras' own path: nothing to clip, nothing to measure
        norm = clipping.global_norm(grads)
        if self._gradient_norm is not None:
            self._gradient_norm.assign(ops.cast(norm, "float32"))
        if not self.clips:
            return grads
        changed = ops.convert_to_tensor(False)
        if self.adaptive_clipnorm is not None:
            if variables is None:
                raise ValueError(
                    "adaptive_clipnorm scales each gradient by its weight's norm: it needs the "
                    "variables, so it applies inside optimizer.apply(grads, variables) only."
                )
            grads, c = clipping.adaptive_clip(grads, variables, self.adaptive_clipnorm)
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
        if self._clipped_steps is not None:
            self._clipped_steps.assign_add(ops.cast(changed, self._clipped_steps.dtype))
        return grads

    # ------------------------------------------------------------------ the update
    def rule_hyperparameters(self, variable, learning_rate):
        """The keyword arguments of this optimizer's rule for ``variable``.

        ``learning_rate`` is already in the variable's dtype. Subclasses override.
        """
        return {"learning_rate": learning_rate}

    def rule_inputs(self, gradient, variable, learning_rate):
        """(dense gradient, slots, rule hyperparameters) for one variable's step.

        What ``update_step`` hands its rule, and what a speed path computes with.
        """
        g, lr = self.prepare(gradient, variable, learning_rate)
        return g, self.slots(variable), self.rule_hyperparameters(variable, lr)

    def apply_rule(self, variable, delta, slots, new_slots):
        """Write a rule's result: each slot, then θ ← θ + Δθ.

        Inside a ``skip_nonfinite`` step that selects in the rule
        (:meth:`_selects_in_rule`), each write keeps the old value when a gradient
        entry was NaN/Inf: one select per written array, no snapshot."""
        finite = self._step_is_finite
        if finite is None:
            for slot, value in zip(slots, new_slots):
                self.assign(slot, value)
            self.assign_add(variable, delta)
            return
        # Variables are read as tensors first: JAX's where no longer accepts objects that
        # convert through __jax_array__ (a keras.Variable) while it traces.
        for slot, value in zip(slots, new_slots):
            old = ops.convert_to_tensor(slot)
            self.assign(slot, ops.where(finite, value, old))
        old = ops.convert_to_tensor(variable)
        self.assign(variable, ops.where(finite, ops.add(old, delta), old))

    def update_variable(self, gradient, variable, learning_rate):
        """One variable's update: a speed path where one applies, else ``update_step``."""
        choice = _choose(self, variable)
        if choice is not None:
            return choice[1](self, gradient, variable, learning_rate)
        return self.update_step(gradient, variable, learning_rate)

    def update_path(self, variable):
        """``"kernel"``, ``"fused"`` (TensorFlow), ``"inplace"`` (PyTorch,
        keras_optlab.accel_torch) or ``"ops"``: the rule that updates ``variable``.

        Decided when the step is traced, in the context it is traced in (a
        ``jit_compile=True`` function gets ``"fused"`` or ``"ops"``; see
        ``keras_optlab.accel.paths`` to choose).
        """
        choice = _choose(self, variable)
        return "ops" if choice is None else choice[0]

    @staticmethod
    def prepare(gradient, variable, learning_rate):
        """(dense gradient, learning rate) in the variable's dtype.

        The book's algorithms treat g as dense: a sparse gradient (embedding rows) is
        scattered into zeros so that slots decay everywhere, as the algorithm says.
        """
        gradient = ops.cast(clipping.densify(gradient), variable.dtype)
        return gradient, ops.cast(learning_rate, variable.dtype)

    @staticmethod
    def effective_epsilon(epsilon, variable):
        """δ for ``variable``: at least its dtype's smallest normal number, so that a
        small default (1e-8) does not round to 0 in float16 and divide by zero."""
        return max(epsilon, smallest_normal(variable.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "adaptive_clipnorm": self.adaptive_clipnorm,
                "track_gradient_norm": self.track_gradient_norm,
                "polyak": self.polyak,
                "polyak_start": self.polyak_start,
            }
        )
        return config


class _CopyOf:
    """An initializer returning a copy of the current value of ``variable`` (a slot that
    starts as a copy of its weights). A copy, not the value: torch would share the
    weights' storage (and see their in-place updates), JAX the weights' buffer (which
    fit's compiled step donates once per argument)."""

    def __init__(self, variable):
        self.variable = variable

    def __call__(self, shape, dtype=None):
        return ops.copy(ops.cast(ops.convert_to_tensor(self.variable), dtype or self.variable.dtype))
