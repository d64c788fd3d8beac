"""Optimizers that need the loss itself, not only its gradient: Newton (Alg. 8.8),
nonlinear conjugate gradients (Alg. 8.9) and L-BFGS (Sec. 8.6.3).

A Keras optimizer receives gradients and never the loss. These receive a zero-argument
``loss_fn`` (``keras_optlab.SecondOrder`` hands one over in its ``train_step``; or call
:meth:`ClosureOptimizer.minimize`), which they may evaluate several times per step.

* :class:`ClosureOptimizer` — the shared plumbing: first-order-only arguments refused,
  ``apply`` refused with the way out, the step's arguments checked, one optimizer per
  set of variables, ``minimize``;
* :class:`LineSearchOptimizer` — the template of a line-search method: direction d from
  the gradient (the subclass's algorithm), a step α along it
  (:mod:`keras_optlab.optimizers.line_search`), θ ← θ + αd, then the subclass updates
  its memory. Telemetry: ``line_search_evaluations`` (last step),
  ``function_evaluations`` (total evaluations of J and ∇J), ``line_search_failures``
  (steps whose search ended without its condition met).
"""

import keras
import numpy as np
from keras import ops

from keras_optlab import _checks
from keras_optlab.curvature.autodiff import for_backend
from keras_optlab.curvature.autodiff.common import flat, size, unflat
from keras_optlab.curvature.hvp import check_callable, check_variables
from keras_optlab.optimizers import line_search as searches
from keras_optlab.optimizers.line_search import smaller
from keras_optlab.optimizers.base import BookOptimizer

# Arguments of the first-order optimizers that have no meaning for a step computed
# from the loss (they act on a gradient handed over by Keras).
FIRST_ORDER_ONLY = ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "use_ema", "loss_scale_factor",
                    "gradient_accumulation_steps", "adaptive_clipnorm", "polyak", "polyak_start")
LINE_SEARCHES = ("strong_wolfe", "armijo")


def read(variable):
    """A keras.Variable's value; a tf.Variable (accepted on TensorFlow) reads as itself."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def dot(a, b):
    return ops.sum(a * b)


class ClosureOptimizer(BookOptimizer):
    """Base of the optimizers that evaluate the loss themselves (not for direct use).

    Subclasses implement ``_closure_step(loss_fn, variables, outputs_fn,
    output_loss_fn, start)`` → ``(loss before the step, loss after, flat gradient
    after)`` (the last two ``None`` when unknown) and call :meth:`_require_backend`
    at the end of ``__init__``.
    """

    def __init__(self, learning_rate, name=None, **kwargs):
        for arg in FIRST_ORDER_ONLY:
            if kwargs.get(arg) not in (None, False):
                raise ValueError(
                    f"`{arg}` does not apply to {type(self).__name__} steps and is not supported by "
                    f"{type(self).__name__}. Received: {arg}={kwargs[arg]!r}"
                )
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self._shapes = None

    def _require_backend(self):
        # Called last: a bad argument is a ValueError on any backend, then the backend.
        self._autodiff = for_backend(f"keras_optlab.optimizers.{type(self).__name__}")

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._shapes = [tuple(v.shape) for v in var_list]
        self.num_parameters = sum(size(v.shape) for v in var_list)

    # ------------------------------------------------------------------ the first-order entry point
    def apply(self, grads, trainable_variables=None):
        name = type(self).__name__
        raise TypeError(
            f"keras_optlab.optimizers.{name} needs the loss, which a Keras optimizer never sees: "
            "wrap the model in keras_optlab.SecondOrder(model) before compile() and fit(), "
            f"or call {name}.minimize(loss_fn, variables)."
        )

    def update_step(self, gradient, variable, learning_rate):  # pragma: no cover - apply() refuses first
        self.apply([gradient], [variable])

    # ------------------------------------------------------------------ steps
    def closure_step(self, loss_fn, variables, outputs_fn=None, output_loss_fn=None):
        """One step on the zero-argument ``loss_fn`` (returning a scalar) over
        ``variables``; returns J(θ) before the step. Works eagerly, inside
        ``tf.function``, under ``jax.jit`` in a ``keras.StatelessScope`` (how
        ``SecondOrder`` trains on JAX) and on torch. ``outputs_fn()`` → z and
        ``output_loss_fn(z)`` → J split the loss at the model's outputs (for
        Gauss-Newton curvature; ``SecondOrder`` passes them)."""
        variables = self._checked(loss_fn, variables, outputs_fn, output_loss_fn)
        return self._closure_step(loss_fn, variables, outputs_fn, output_loss_fn, None)[0]

    def _checked(self, loss_fn, variables, outputs_fn, output_loss_fn):
        check_callable("loss_fn", loss_fn)
        variables = check_variables(variables)
        dtypes = sorted({keras.backend.standardize_dtype(v.dtype) for v in variables})
        if len(dtypes) > 1:
            raise ValueError(
                f"`variables` must share one float dtype for a {type(self).__name__} step. Received: dtypes {dtypes}"
            )
        for name, fn in (("outputs_fn", outputs_fn), ("output_loss_fn", output_loss_fn)):
            if fn is not None:
                check_callable(name, fn)
        if not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(variables)
        else:
            given = [tuple(v.shape) for v in variables]
            if given != self._shapes:
                raise ValueError(
                    f"`variables` must be the variables this {type(self).__name__} optimizer was built for "
                    f"(shapes {self._shapes}). Received: shapes {given}. Use one optimizer per set of variables."
                )
        return variables

    def minimize(self, loss_fn, variables, steps=1, gradient_tolerance=None, callback=None):
        """Run up to ``steps`` steps on a zero-argument ``loss_fn`` (returning a scalar);
        returns the list of losses before each step (Python floats).

        ``gradient_tolerance`` (float > 0 or ``None``): stop before a step once the
        largest gradient entry is at most this (``scipy.optimize.minimize``'s ``gtol``).
        Between the steps of one ``minimize`` a line-search method reuses the loss
        and gradient its last search computed at the new point (``loss_fn`` is the
        same function), as scipy and ``torch.optim.LBFGS`` do.

        ``callback(step, loss)`` (or ``None``) is called after each step, with the
        0-based step index and the loss before it, when the variables already hold
        the new point (read them there to record the iterates, as scipy's callback).
        The steps run traced (``tf.function``, ``jax.jit``; eager on torch).
        """
        steps = _checks.integer("steps", steps, low=1)
        if callback is not None:
            check_callable("callback", callback)
        gradient_tolerance = _checks.positive("gradient_tolerance", gradient_tolerance, allow_none=True)
        variables = self._checked(loss_fn, variables, None, None)
        # One traced step reused (tf.function / jax.jit; eager on torch): a line search
        # is a while_loop, which an eager JAX call would trace anew every step.
        step = self._autodiff.compiled(
            lambda begin: self._closure_step(loss_fn, variables, None, None, begin), list(variables) + self.variables,
            assigns=True,
        )
        losses, start = [], None
        for index in range(steps):
            if gradient_tolerance is not None:
                if start is None:
                    loss, grads = self._autodiff.loss_and_gradient(loss_fn, variables)
                    start = (loss, flat(grads, variables[0].dtype))
                if float(ops.max(ops.abs(start[1]))) <= gradient_tolerance:
                    break
            loss, f_new, g_new = step(start)
            losses.append(float(loss))
            if callback is not None:
                callback(index, losses[-1])
            start = None if f_new is None else (f_new, g_new)
        return losses

    def _counters(self):
        """The optimizer's own integer counters, checked ``>= 0`` when state is loaded."""
        return ()

    def load_own_variables(self, store):
        """BookOptimizer's checked loading, plus this optimizer's own counters
        (``_counters``) ``>= 0``; a bad value raises ``ValueError`` naming the
        variable, and nothing is assigned."""
        if self.built and len(store.keys()) == len(self.variables):
            index = {id(v): i for i, v in enumerate(self.variables)}
            for variable in self._counters():
                value = np.asarray(store[str(index[id(variable)])])
                if (value < 0).any():
                    raise ValueError(
                        f"Refusing to load optimizer '{self.name}': saved state of variable "
                        f"'{variable.path}' must be >= 0. Received: {variable.path}={value.tolist()}"
                    )
        super().load_own_variables(store)


class LineSearchOptimizer(ClosureOptimizer):
    """Template of a line-search method (not for direct use): see the module docstring.

    Subclasses implement ``_direction(g)`` → ``(d, memo)`` (d a flat tensor, ``memo``
    whatever the subclass wants back after the step), ``_initial_step(g, d, slope)`` →
    the first trial α (before ``learning_rate``), and ``_remember(g, d, step, g_new,
    keep, reset, memo)`` (their memory after a step: ``keep`` False on a skipped step,
    ``reset`` True when the direction was not a descent direction or the line search
    failed).
    """

    def __init__(self, learning_rate, line_search, max_evaluations, c1, c2, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.line_search = _checks.one_of("line_search", line_search, LINE_SEARCHES)
        self.max_evaluations = _checks.integer("max_evaluations", max_evaluations, low=1)
        self.c1 = _checks.number("c1", c1, low=0.0, high=1.0, low_open=True, high_open=True)
        self.c2 = _checks.number("c2", c2, low=0.0, high=1.0, low_open=True, high_open=True)
        if self.c2 <= self.c1:
            raise ValueError(f"`c2` must be > `c1` (0 < c1 < c2 < 1). Received: c1={self.c1!r}, c2={self.c2!r}")

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._line_search_evaluations = self.add_variable((), dtype="int32", name="line_search_evaluations")
        self._function_evaluations = self.add_variable((), dtype="int", name="function_evaluations")
        self._line_search_failures = self.add_variable((), dtype="int", name="line_search_failures")

    @property
    def line_search_evaluations(self):
        """Evaluations of (J, ∇J) by the last step's line search."""
        return self._line_search_evaluations

    @property
    def function_evaluations(self):
        """Evaluations of (J, ∇J) over all steps (the line searches' and the gradients')."""
        return self._function_evaluations

    @property
    def line_search_failures(self):
        """Steps whose line search ended without its condition met (the best point with
        sufficient decrease was taken, or none)."""
        return self._line_search_failures

    def _counters(self):
        return (self._line_search_evaluations, self._function_evaluations, self._line_search_failures)

    @staticmethod
    def unit_first_step(g):
        """min(1, 1/‖g‖): the first trial step when nothing better is known (a first
        step of length at most 1 along d = −g)."""
        norm = ops.sqrt(dot(g, g))
        return smaller(ops.ones_like(norm), 1.0 / ops.where(norm > 0, norm, ops.ones_like(norm)))

    def _closure_step(self, loss_fn, variables, outputs_fn, output_loss_fn, start):
        dtype = variables[0].dtype
        autodiff = self._autodiff
        if start is None:
            loss, grads = autodiff.loss_and_gradient(loss_fn, variables)
            loss, g, evaluations = ops.cast(loss, dtype), flat(grads, dtype), 1
        else:
            (loss, g), evaluations = start, 0
        x0 = flat([read(v) for v in variables], dtype)
        d, memo = self._direction(g)
        slope = dot(g, d)
        # Not a descent direction (rounding; another batch's memory): steepest descent.
        descent = slope < 0.0
        d = ops.where(descent, d, -g)
        slope = ops.where(descent, slope, -dot(g, g))
        alpha0 = ops.cast(self.learning_rate, dtype) * self._initial_step(g, d, slope)

        def evaluate(alpha):
            f, grads_at = autodiff.loss_and_gradient_at(loss_fn, variables, unflat(x0 + alpha * d, variables))
            g_at = flat(grads_at, dtype)
            return ops.cast(f, dtype), dot(g_at, d), g_at

        if self.line_search == "strong_wolfe":
            found = searches.strong_wolfe(evaluate, loss, slope, g, alpha0, self.c1, self.c2, self.max_evaluations)
        else:
            found = searches.armijo(evaluate, loss, slope, g, alpha0, self.c1, self.max_evaluations)
        alpha, f_new, g_new, used, satisfied = found

        finite = ops.isfinite(loss) & ops.all(ops.isfinite(g))
        if not self.skip_nonfinite:
            finite = ops.convert_to_tensor(True)
        # Selects, not branches: one stateless function under jax.jit, no host sync on torch.
        step = ops.where(finite, alpha * d, ops.zeros_like(d))
        for v, value in zip(variables, unflat(x0 + step, variables)):
            v.assign(value)  # also where a search moved the variables (TF, torch)
        g_new = ops.where(finite, g_new, g)
        moved = alpha > 0.0
        self._remember(g, d, step, g_new, finite, ops.logical_not(descent) | ops.logical_not(moved), memo)
        self._line_search_evaluations.assign(ops.cast(used, "int32"))
        self._function_evaluations.assign(
            self._function_evaluations + ops.cast(used + evaluations, self._function_evaluations.dtype)
        )
        failed = ops.logical_not(satisfied) & finite
        self._line_search_failures.assign(self._line_search_failures + ops.cast(failed, self._line_search_failures.dtype))
        self._gradient_norm.assign(ops.cast(ops.sqrt(dot(g, g)), "float32"))
        self.iterations.assign(self.iterations + ops.cast(finite, self.iterations.dtype))
        self._skipped_steps.assign(self._skipped_steps + ops.cast(ops.logical_not(finite), self._skipped_steps.dtype))
        return loss, ops.where(finite, f_new, loss), g_new

    def get_config(self):
        config = super().get_config()
        config.update({"line_search": self.line_search, "max_evaluations": self.max_evaluations,
                       "c1": self.c1, "c2": self.c2})
        return config
