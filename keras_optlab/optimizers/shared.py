"""What both wings of keras_optlab's optimizers share — the first-order ones
(:class:`~keras_optlab.optimizers.base.BookOptimizer`, Alg. 8.1–8.7) and the closure
ones (:class:`~keras_optlab.optimizers.closure.ClosureOptimizer`: Newton, L-BFGS,
nonlinear CG):

* Keras' auto-naming with the class's ``BASE_NAME`` (``adam``, ``adam_1``, …) and a
  checked ``name``;
* a checked ``learning_rate`` (a float, a schedule or a function of the step);
* ``skip_nonfinite`` (each wing decides what a step with NaN/Inf skips);
* floating-point variables only, float64 on JAX only in its 64-bit mode (at ``build``);
* the telemetry variables ``gradient_norm`` (NaN until measured) and ``skipped_steps``
  (:meth:`OptlabOptimizer.add_telemetry`);
* state loaded from disk checked before it is used (:meth:`load_own_variables`): every
  float finite, the counters and non-negative slots ≥ 0, each wing's own rules after.
"""

import re

import keras
import numpy as np

from keras_optlab import _checks


def auto_name(base):
    """Keras' auto-naming (``adam``, ``adam_1``, …), on the counter Keras' own
    optimizers and layers use (``keras.backend.get_uid``), with our base name."""
    uid = keras.backend.get_uid(base)
    return base if uid == 1 else f"{base}_{uid - 1}"


def snake_case(name):
    """``MyAdam`` → ``my_adam`` (Keras' rule, for a user's subclass without ``BASE_NAME``)."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def shown_array(value):
    """A loaded array as a message shows it: the offending entries first."""
    flat = np.ravel(value)
    bad = flat[~np.isfinite(flat) | (flat < 0)] if flat.dtype.kind == "f" else flat[flat < 0]
    return np.array2string(bad[:5] if bad.size else flat[:5], precision=6)


def variable_label(variable):
    return f"variable '{getattr(variable, 'path', getattr(variable, 'name', variable))}'"


class OptlabOptimizer(keras.optimizers.Optimizer):
    """The common base (not registered, not for direct use); see the module docstring.

    Subclasses call :meth:`add_telemetry` in ``build`` and extend :meth:`counters`,
    :meth:`nonnegative_variables` and :meth:`check_loaded_state` for their own state.
    """

    BASE_NAME = None  # the auto-name's base ("adam" → adam, adam_1, …)

    def __init__(self, learning_rate, skip_nonfinite=False, name=None, **kwargs):
        learning_rate = _checks.learning_rate(learning_rate)
        if name is None:
            name = auto_name(self.BASE_NAME or snake_case(type(self).__name__))
        elif not isinstance(name, str):
            raise TypeError(f"`name` must be a string or None. Received: name={name!r}")
        skip_nonfinite = _checks.boolean("skip_nonfinite", skip_nonfinite)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.skip_nonfinite = skip_nonfinite
        self._gradient_norm = self._skipped_steps = None

    def check_variable_dtypes(self, var_list):
        """Floating-point variables only (no learning rate survives the cast to an
        integer); float64 on JAX only in JAX's 64-bit mode."""
        for variable in var_list:
            dtype = keras.backend.standardize_dtype(variable.dtype)
            label = variable_label(variable)
            if not keras.backend.is_float_dtype(dtype):
                raise TypeError(
                    f"{type(self).__name__} updates floating-point variables only: the learning rate "
                    f"cast to {dtype} would be 0 and the step would do nothing. Received: {label} of dtype={dtype}"
                )
            _checks.float64_available(f"{label}.dtype", dtype, keras.backend.backend())

    def add_telemetry(self, clipped_steps=False):
        """``gradient_norm`` (NaN until measured), [``clipped_steps``], ``skipped_steps``,
        in that order (the order of a saved optimizer's variables)."""
        # "only_first_replica": assignable from a tf.distribute replica context,
        # like Keras' own `iterations`.
        self._gradient_norm = self.add_variable(
            (), initializer=keras.initializers.Constant(float("nan")), dtype="float32",
            name="gradient_norm", aggregation="only_first_replica",
        )
        clipped = self.add_variable((), dtype="int", name="clipped_steps", aggregation="only_first_replica") \
            if clipped_steps else None
        self._skipped_steps = self.add_variable(
            (), dtype="int", name="skipped_steps", aggregation="only_first_replica"
        )
        return clipped

    @property
    def gradient_norm(self):
        """The gradient norm of the last step (NaN until measured)."""
        return self._gradient_norm

    @property
    def skipped_steps(self):
        """Steps skipped because the loss or a gradient was NaN/Inf (``skip_nonfinite``)."""
        return self._skipped_steps

    # ------------------------------------------------------------------ loaded state
    def counters(self):
        """Integer counters, checked to be whole numbers ``>= 0`` when state is loaded."""
        return tuple(v for v in (self.iterations, self._skipped_steps) if v is not None)

    def nonnegative_variables(self):
        """Other variables the algorithm needs ``>= 0`` (second moments)."""
        return ()

    def unchecked_variables(self):
        """Variables allowed to hold NaN (``gradient_norm`` is NaN until measured)."""
        return tuple(v for v in (self._gradient_norm,) if v is not None)

    def check_loaded_state(self, store, index):
        """A subclass's own rules on the loaded values (``store[str(index[id(v)])]`` is
        the saved value of ``v``); raise ``ValueError`` naming the variable."""

    def refuse_loaded(self, variable, rule, received):
        raise ValueError(
            f"Refusing to load optimizer '{self.name}': saved state of variable '{variable.path}' {rule}. "
            f"Received: {variable.path}={received}"
        )

    def load_own_variables(self, store):
        """Keras' loading (``.keras`` files, ``load_weights``), with the state checked
        before any of it is used: every value finite (``unchecked_variables`` excepted),
        the ``counters`` whole and non-negative, ``nonnegative_variables`` non-negative,
        then the subclass's :meth:`check_loaded_state`. A bad value raises ``ValueError``
        naming the variable, and nothing is assigned."""
        if len(store.keys()) == len(self.variables):
            index = {id(v): i for i, v in enumerate(self.variables)}
            counters = {id(v) for v in self.counters()}
            nonnegative = {id(v) for v in self.nonnegative_variables()}
            unchecked = {id(v) for v in self.unchecked_variables()}
            for variable in self.variables:
                if id(variable) not in unchecked:
                    value = np.asarray(store[str(index[id(variable)])])
                    self._check_loaded(variable, value, id(variable) in nonnegative, id(variable) in counters)
            self.check_loaded_state(store, index)
        super().load_own_variables(store)

    def _check_loaded(self, variable, value, nonnegative, counter):
        if value.dtype.kind == "f" or value.dtype.name == "bfloat16":
            wide = value.astype("float64")
            if not np.isfinite(wide).all():
                self.refuse_loaded(variable, "holds NaN/Inf, which the first step would spread to the weights",
                                   shown_array(wide))
            if counter and not (wide == np.round(wide)).all():
                self.refuse_loaded(variable, "must be an integer count", shown_array(wide))
        else:
            wide = value
        if (nonnegative or counter) and (wide < 0).any():
            self.refuse_loaded(variable, "must be >= 0", shown_array(wide))

    def get_config(self):
        config = super().get_config()
        config["skip_nonfinite"] = self.skip_nonfinite
        return config
