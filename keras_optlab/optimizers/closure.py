"""Optimizers that need the loss itself, not only its gradient: Newton (Alg. 8.8),
nonlinear conjugate gradients (Alg. 8.9) and L-BFGS (Sec. 8.6.3).

A Keras optimizer receives gradients and never the loss. These receive a zero-argument
``loss_fn`` (``keras_optlab.SecondOrder`` hands one over in its ``train_step``; or call
:meth:`ClosureOptimizer.minimize`), which they evaluate several times per step.

* :class:`ClosureOptimizer` — the wing's own small base, on the base both wings share
  (:class:`~keras_optlab.optimizers.shared.OptlabOptimizer`): the first-order arguments
  refused, ``apply`` refused with the way out, one optimizer per set of variables, the
  counters, and :meth:`~ClosureOptimizer.minimize`.
* :class:`LineSearchOptimizer` — the template of a line-search method, in optax's and
  optimistix's manner: one step is a pure function of an explicit state
  (position x, loss f, gradient g, the method's memory, counters)::

      d, memo ← direction(state, g)          (the subclass: L-BFGS, nonlinear CG)
      α ← line search on J(x + αd)           (keras_optlab.optimizers.line_search)
      memory ← remember(state, g, d, αd, g(x + αd), reset, memo)
      x ← x + αd

  written once against the namespace of :mod:`keras_optlab.optimizers.arrays` (traced
  ``keras.ops`` on TensorFlow and JAX, eager torch with host scalars on PyTorch).
  The loss is evaluated at trial points without assigning the variables
  (``value_and_grad`` of the backend's autodiff adapter substitutes them), so the
  variables are read once and written once per ``minimize`` or per ``fit`` step.

:meth:`LineSearchOptimizer.minimize` compiles the whole loop — one ``while_loop``
carrying the state, the stopping tests inside — once per (``loss_fn``, variables), and
returns a :class:`MinimizeResult`.
"""

import dataclasses
import time

import keras
import numpy as np
from keras import ops

from keras_optlab import _checks
from keras_optlab.curvature.autodiff import for_backend
from keras_optlab.curvature.autodiff.common import flat, size, unflat
from keras_optlab.curvature.oracle import check_callable, check_variables
from keras_optlab.optimizers import arrays
from keras_optlab.optimizers import line_search as searches
from keras_optlab.optimizers.shared import OptlabOptimizer

# Keras' base arguments that act on a gradient handed over by Keras: no meaning for a
# step computed from the loss. Refused with a message that says so.
FIRST_ORDER_ONLY = ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "use_ema", "loss_scale_factor",
                    "gradient_accumulation_steps", "adaptive_clipnorm", "polyak", "polyak_start",
                    "track_gradient_norm")
LINE_SEARCHES = ("strong_wolfe", "armijo")

# Why a solve stopped (MinimizeResult.status / .message).
RUNNING, CONVERGED, STEP_BUDGET, EVALUATION_BUDGET, SEARCH_FAILED, NONFINITE, NO_PROGRESS = range(7)
MESSAGES = {
    RUNNING: "running",
    CONVERGED: "gradient tolerance reached",
    STEP_BUDGET: "step budget reached",
    EVALUATION_BUDGET: "evaluation budget reached",
    SEARCH_FAILED: "line search failed: no decrease along the steepest-descent direction",
    NONFINITE: "non-finite loss or gradient",
    NO_PROGRESS: "no progress: the relative decrease of the loss fell below loss_tolerance",
}
# Steps per compiled chunk of `minimize` (the host reads the status once per chunk).
CHUNK = 256
INT_MAX = 2**31 - 1


def read(variable):
    """A keras.Variable's value; a tf.Variable (accepted on TensorFlow) reads as itself."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def dot(a, b):
    return ops.sum(a * b)


@dataclasses.dataclass(frozen=True)
class MinimizeResult:
    """What :meth:`LineSearchOptimizer.minimize` (and ``Newton.minimize``) returns.

    Attributes:
        converged: True when ‖∇J‖∞ ≤ ``gradient_tolerance`` at ``x``.
        status, message: Why the loop stopped (``MESSAGES``).
        iterations: Steps taken by this call.
        function_evaluations: Evaluations of (J, ∇J) by this call, exactly.
        loss, gradient_norm: J and ‖∇J‖∞ at the final point (the variables hold it).
        losses: NumPy array, the loss before each step.
        seconds: Wall time of the call (tracing included on its first call).
    """

    converged: bool
    status: int
    message: str
    iterations: int
    function_evaluations: int
    loss: float
    gradient_norm: float
    losses: np.ndarray
    seconds: float

    def __repr__(self):
        return (f"MinimizeResult(converged={self.converged}, message={self.message!r}, "
                f"iterations={self.iterations}, function_evaluations={self.function_evaluations}, "
                f"loss={self.loss!r}, gradient_norm={self.gradient_norm!r})")


class ClosureOptimizer(OptlabOptimizer):
    """Base of the optimizers that evaluate the loss themselves (not for direct use).

    Subclasses implement ``_closure_step(loss_fn, variables, outputs_fn,
    output_loss_fn, batch=None, gradient_tolerance=None)`` → (J, ‖∇J‖∞) at the point the
    step starts from, and call :meth:`_require_backend` at the end of ``__init__``.
    """

    def __init__(self, learning_rate, skip_nonfinite=False, name=None, **kwargs):
        for arg in FIRST_ORDER_ONLY:
            if kwargs.get(arg) not in (None, False, 0) or (arg == "polyak_start" and kwargs.get(arg)):
                raise ValueError(
                    f"`{arg}` does not apply to {type(self).__name__} steps and is not supported by "
                    f"{type(self).__name__}. Received: {arg}={kwargs[arg]!r}"
                )
        kwargs = {k: v for k, v in kwargs.items() if k not in FIRST_ORDER_ONLY}
        super().__init__(learning_rate=learning_rate, skip_nonfinite=skip_nonfinite, name=name, **kwargs)
        self._shapes = None
        self.num_parameters = None

    def _require_backend(self):
        # Called last: a bad argument is a ValueError on any backend, then the backend.
        self._autodiff = for_backend(f"keras_optlab.optimizers.{type(self).__name__}")
        self._xp = arrays.for_backend(keras.backend.backend())

    def build(self, var_list):
        if self.built:
            return
        self.check_variable_dtypes(var_list)
        super().build(var_list)
        self.add_telemetry()
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

    # ------------------------------------------------------------------ steps
    def closure_step(self, loss_fn, variables, outputs_fn=None, output_loss_fn=None):
        """One step on the zero-argument ``loss_fn`` (returning a scalar) over
        ``variables``; returns J(θ) before the step. Works eagerly, inside
        ``tf.function``, under ``jax.jit`` in a ``keras.StatelessScope`` (how
        ``SecondOrder`` trains on JAX) and on torch. ``outputs_fn()`` → z and
        ``output_loss_fn(z)`` → J split the loss at the model's outputs (for
        Gauss-Newton curvature; ``SecondOrder`` passes them)."""
        variables = self._checked(loss_fn, variables, outputs_fn, output_loss_fn)
        return self._closure_step(loss_fn, variables, outputs_fn, output_loss_fn)[0]

    def fit_step(self, loss_fn, variables, outputs_fn=None, output_loss_fn=None, batch=None,
                 gradient_tolerance=None):
        """:meth:`closure_step` as ``SecondOrder.fit`` calls it: returns (J, ‖∇J‖∞) at the
        point the step starts from. ``batch`` (four floats that identify the data: its
        size and sums) lets a line-search method reuse the last step's final loss and
        gradient when the variables still hold that point and the batch is the same
        (full-batch training: no evaluation at all). With ``gradient_tolerance`` a point
        where ‖∇J‖∞ is at most it is left as it is (at most one evaluation)."""
        variables = self._checked(loss_fn, variables, outputs_fn, output_loss_fn)
        return self._closure_step(loss_fn, variables, outputs_fn, output_loss_fn, batch, gradient_tolerance)

    def _checked(self, loss_fn, variables, outputs_fn=None, output_loss_fn=None):
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

    @staticmethod
    def _checked_budgets(steps, gradient_tolerance, loss_tolerance, max_function_evaluations, callback, report_every,
                         verbose):
        steps = _checks.integer("steps", steps, low=1)
        gradient_tolerance = _checks.positive("gradient_tolerance", gradient_tolerance, allow_none=True)
        loss_tolerance = _checks.number("loss_tolerance", loss_tolerance, low=0.0, allow_none=True)
        max_function_evaluations = _checks.integer("max_function_evaluations", max_function_evaluations, low=1,
                                                   allow_none=True)
        if callback is not None:
            check_callable("callback", callback)
        report_every = _checks.integer("report_every", report_every, low=1, allow_none=True)
        verbose = _checks.boolean("verbose", verbose)
        if report_every is None and callback is not None:
            report_every = 1
        return steps, gradient_tolerance, loss_tolerance, max_function_evaluations, report_every, verbose

    def minimize(self, loss_fn, variables, steps=1, gradient_tolerance=None, loss_tolerance=None,
                 max_function_evaluations=None, callback=None, report_every=None, verbose=False):
        """Minimize a zero-argument ``loss_fn`` over ``variables``; returns a
        :class:`MinimizeResult`. The arguments and stopping tests are those of
        :meth:`LineSearchOptimizer.minimize`; here (Newton) each step is compiled once
        and the tests run on the host after it — a Hessian or a CG solve costs far more
        than that host read. An evaluation is one of (J, ∇J) (one per step, two with
        ``adaptive_damping``; Hessian-vector products are not counted), plus one at the
        end for the result's loss and gradient."""
        steps, gradient_tolerance, loss_tolerance, budget, report_every, verbose = self._checked_budgets(
            steps, gradient_tolerance, loss_tolerance, max_function_evaluations, callback, report_every, verbose)
        started = time.perf_counter()
        variables = self._checked(loss_fn, variables)
        key = (loss_fn, tuple(id(v) for v in variables), gradient_tolerance)
        compiled = self.__dict__.setdefault("_compiled_steps", {})
        if key not in compiled:
            compiled[key] = (
                self._autodiff.compiled(lambda: self._iterate(loss_fn, variables, None, None, gradient_tolerance),
                                        list(variables) + self.variables, assigns=True),
                self._autodiff.compiled(lambda: self._autodiff.loss_and_gradient(loss_fn, variables), variables),
            )
        step, final = compiled[key]
        per_step = 2 if getattr(self, "adaptive_damping", False) else 1
        losses, status, evaluations = [], RUNNING, 0
        while status == RUNNING:
            loss, g_inf = (float(ops.convert_to_numpy(t)) for t in step())
            evaluations += per_step
            if not (np.isfinite(loss) and np.isfinite(g_inf)):
                status = NONFINITE
            elif gradient_tolerance is not None and g_inf <= gradient_tolerance:
                status = CONVERGED  # the step left the point as it was
            else:
                losses.append(loss)
                if loss_tolerance is not None and len(losses) > 1 and \
                        losses[-2] - loss <= loss_tolerance * max(abs(losses[-2]), abs(loss), 1.0):
                    status = NO_PROGRESS
                elif budget is not None and evaluations >= budget:
                    status = EVALUATION_BUDGET
                elif len(losses) >= steps:
                    status = STEP_BUDGET
                if callback is not None and (len(losses) % report_every == 0 or status != RUNNING):
                    callback(len(losses) - 1, loss)
                if verbose and report_every is not None and len(losses) % report_every == 0:
                    print(f"{self.name}: step {len(losses)}: loss {loss:.6g}", flush=True)
        loss, grads = final()
        g = flat(grads, variables[0].dtype)
        gnorm = float(ops.convert_to_numpy(ops.max(ops.abs(g))))
        result = MinimizeResult(
            converged=status == CONVERGED or (gradient_tolerance is not None and gnorm <= gradient_tolerance),
            status=status, message=MESSAGES[status], iterations=len(losses),
            function_evaluations=evaluations + 1, loss=float(ops.convert_to_numpy(loss)), gradient_norm=gnorm,
            losses=np.asarray(losses, dtype=np.float64), seconds=time.perf_counter() - started,
        )
        if verbose:
            print(f"{self.name}: {result.message} after {result.iterations} steps: loss {result.loss:.6g}",
                  flush=True)
        return result

    def reset(self):
        """Forget the memory, the last point and every counter (``iterations`` too), as a
        newly built optimizer; the compiled loops of ``minimize`` are kept, so the next
        solve of the same ``loss_fn`` starts at once (a benchmark's repeats)."""
        if not self.built:
            return
        for variable in self.variables:
            if variable is not self._learning_rate:  # the learning rate stays what it was set to
                variable.assign(ops.zeros(variable.shape, variable.dtype))
        for variable, value in self._initial_values():
            variable.assign(ops.full(variable.shape, value, variable.dtype))

    def _initial_values(self):
        """(variable, value) of the variables that do not start at zero."""
        return ((self._gradient_norm, float("nan")),)

    def _counters(self):
        """The optimizer's own integer counters (checked ``>= 0`` when state is loaded)."""
        return ()

    def counters(self):
        return super().counters() + tuple(self._counters())


class LineSearchOptimizer(ClosureOptimizer):
    """Template of a line-search method (not for direct use): see the module docstring.

    Subclasses define ``_memory_variables()`` (name → optimizer variable of their
    memory) and, over a state dict and the namespace ``xp``:
    ``_direction(xp, state, g)`` → ``(d, memo)``; ``_initial_step(xp, state, g, d,
    slope)`` → the first trial α (before ``learning_rate``); ``_remember(xp, state, g,
    d, step, g_new, reset, memo)`` → the memory entries of the new state (``reset``
    True when the direction was not a descent direction or the line search found no
    decrease: the memory is cleared).
    """

    def __init__(self, learning_rate, line_search, max_evaluations, c1, c2, skip_nonfinite=False, name=None,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, skip_nonfinite=skip_nonfinite, name=name, **kwargs)
        if not callable(learning_rate) and _checks.number("learning_rate", learning_rate) <= 0.0:
            raise ValueError(
                f"`learning_rate` (the first trial step ε) must be > 0: {type(self).__name__} never moves "
                f"with 0. Received: learning_rate={learning_rate!r}"
            )
        self.line_search = _checks.one_of("line_search", line_search, LINE_SEARCHES)
        self.max_evaluations = _checks.integer("max_evaluations", max_evaluations, low=1)
        self.c1 = _checks.number("c1", c1, low=0.0, high=1.0, low_open=True, high_open=True)
        self.c2 = _checks.number("c2", c2, low=0.0, high=1.0, low_open=True, high_open=True)
        if self.c2 <= self.c1:
            raise ValueError(f"`c2` must be > `c1` (0 < c1 < c2 < 1). Received: c1={self.c1!r}, c2={self.c2!r}")
        self._compiled = {}

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        dtype = var_list[0].dtype
        n = (self.num_parameters,)
        self._line_search_evaluations = self.add_variable((), dtype="int32", name="line_search_evaluations")
        self._function_evaluations = self.add_variable((), dtype="int", name="function_evaluations")
        self._line_search_failures = self.add_variable((), dtype="int", name="line_search_failures")
        # The last point's loss and gradient, and where they were computed: the next
        # step starts from them instead of evaluating again (minimize, SecondOrder.fit).
        self._last_position = self.add_variable(n, dtype=dtype, name="last_position")
        self._last_loss = self.add_variable((), dtype=dtype, name="last_loss")
        self._last_gradient = self.add_variable(n, dtype=dtype, name="last_gradient")
        self._last_batch = self.add_variable((4,), dtype="float64" if dtype == "float64" else "float32",
                                             name="last_batch")
        self._last_valid = self.add_variable((), dtype="int32", name="last_valid")
        # 1 when the memory was cleared before the next step (it is then steepest descent).
        self._fresh = self.add_variable((), initializer="ones", dtype="int32", name="fresh")

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
        return (self._line_search_evaluations, self._function_evaluations, self._line_search_failures,
                self._last_valid, self._fresh)

    def _initial_values(self):
        return super()._initial_values() + ((self._fresh, 1),)

    def unchecked_variables(self):
        # The last point's loss and gradient: checked below, only when marked valid.
        return super().unchecked_variables() + (self._last_position, self._last_loss, self._last_gradient)

    def check_loaded_state(self, store, index):
        for flag in (self._last_valid, self._fresh):
            value = np.asarray(store[str(index[id(flag)])])
            if (value > 1).any():
                self.refuse_loaded(flag, "must be 0 or 1", value.tolist())
        if int(np.asarray(store[str(index[id(self._last_valid)])])) == 1:
            for variable in (self._last_position, self._last_loss, self._last_gradient):
                self._check_loaded(variable, np.asarray(store[str(index[id(variable)])]), False, False)

    @staticmethod
    def unit_first_step(xp, g):
        """min(1, 1/‖g‖): the first trial step when nothing better is known (a first
        step of length at most 1 along d = −g)."""
        norm = xp.sqrt(xp.dot(g, g))
        one = xp.scalar(1.0, norm)
        return xp.smaller(one, one / xp.where(norm > 0.0, norm, one))

    # ------------------------------------------------------------------ the state
    def _memory_variables(self):
        return {}

    def _state_variables(self):
        return {"fresh": self._fresh, **self._memory_variables()}

    # Memory entries that are vectors of scalars (NumPy arrays on the host path).
    SCALAR_VECTORS = ()

    def _read_state(self, xp):
        """The memory as the step takes it: tensors (traced), or host values (torch)."""
        state = {}
        for name, variable in self._state_variables().items():
            value = ops.convert_to_tensor(variable)
            if xp.host:
                if name in self.SCALAR_VECTORS:
                    value = ops.convert_to_numpy(value).astype(np.float64)
                else:
                    value = value.detach().clone() if value.ndim else value.item()
                if isinstance(value, float):
                    value = np.float64(value)
            elif keras.backend.backend() == "jax":
                value = ops.copy(value)  # a fresh buffer: the compiled loop donates its state
            state[name] = value
        return state

    @staticmethod
    def _kept(value, dtype):
        """``value`` as a tensor of ``dtype`` to assign into a variable: a host scalar
        converted in that dtype (not through floatx: float64 stays float64), and on JAX
        a copy, since the compiled loop donates (invalidates) the buffers of the state it
        is handed next."""
        value = ops.cast(ops.convert_to_tensor(value, dtype=keras.backend.standardize_dtype(dtype)), dtype)
        return ops.copy(value) if keras.backend.backend() == "jax" else value

    def _write_state(self, state):
        for name, variable in self._state_variables().items():
            variable.assign(self._kept(state[name], variable.dtype))

    # ------------------------------------------------------------------ one step, pure
    def _step(self, xp, state, evaluate, lr):
        """One line-search step from ``state`` (``x``, ``f``, ``g`` and the memory):
        the new state, the search's evaluations, whether it met its condition, and
        whether it moved."""
        x, f, g = state["x"], state["f"], state["g"]
        d, memo = self._direction(xp, state, g)
        slope = xp.dot(g, d)
        # Not a descent direction (rounding; another batch's memory): steepest descent.
        descent = slope < 0.0
        d = xp.where(descent, d, -g)
        slope = xp.where(descent, slope, -xp.dot(g, g))
        alpha0 = lr * self._initial_step(xp, state, g, d, slope)

        def phi(alpha):
            f_at, g_at = evaluate(xp.axpy(x, alpha, d))
            return f_at, xp.dot(g_at, d), g_at

        if self.line_search == "strong_wolfe":
            found = searches.strong_wolfe(xp, phi, f, slope, g, alpha0, self.c1, self.c2, self.max_evaluations)
        else:
            found = searches.armijo(xp, phi, f, slope, g, alpha0, self.c1, self.max_evaluations)
        alpha, f_new, g_new, used, satisfied = found
        step = alpha * d
        moved = alpha > 0.0
        reset = xp.lor(xp.lnot(descent), xp.lnot(moved))
        new = dict(state)
        new.update(self._remember(xp, state, g, d, step, g_new, reset, memo))
        new.update(x=xp.axpy(x, alpha, d), f=f_new, g=g_new, fresh=xp.where(reset, xp.integer(1), xp.integer(0)))
        return new, used, satisfied, moved

    def _gradient_oracle(self, loss_fn, variables):
        """x ↦ (J, ∇J) at x (flat), pure: the variables are substituted, not assigned."""
        dtype = variables[0].dtype
        value_and_grad = self._autodiff.value_and_grad(loss_fn, variables)
        xp = self._xp
        g_dtype = ops.convert_to_tensor(variables[0]).dtype if xp.host else dtype

        def evaluate(x):
            loss, grads = value_and_grad(xp.unflat(x, variables))
            if xp.host:
                return np.float64(loss.item()), xp.flat(grads, g_dtype)
            return ops.cast(loss, dtype), flat(grads, dtype)

        return evaluate

    # ------------------------------------------------------------------ SecondOrder's step
    def _closure_step(self, loss_fn, variables, outputs_fn=None, output_loss_fn=None, batch=None,
                      gradient_tolerance=None):
        """One step, the variables read once and written once; see :meth:`fit_step`."""
        xp, dtype = self._xp, variables[0].dtype
        evaluate = self._gradient_oracle(loss_fn, variables)
        x = flat([read(v) for v in variables], dtype)
        state = self._read_state(xp)
        reuse = self._reusable(xp, x, batch)
        if xp.host:
            last = np.float64(ops.convert_to_numpy(self._last_loss)), ops.convert_to_tensor(self._last_gradient)
            f, g = last if reuse else evaluate(x)
        else:
            f, g = ops.cond(reuse, lambda: (ops.convert_to_tensor(self._last_loss),
                                            ops.convert_to_tensor(self._last_gradient)), lambda: evaluate(x))
        evaluations = xp.where(reuse, xp.integer(0), xp.integer(1))
        skip = xp.land(xp.lnot(xp.land(xp.isfinite(f), xp.all_finite(g))), self.skip_nonfinite)
        g_inf = xp.norm_inf(g)
        # A converged point is left as it is (no search), and so is a skipped one.
        still = skip if gradient_tolerance is None else xp.lor(skip, g_inf <= gradient_tolerance)
        state.update(x=x, f=f, g=g)
        lr = self._learning_rate_fn(self._current_lr(f))(self.iterations)
        if xp.host and still:  # the host path branches: no step is computed
            new, used, satisfied, moved = state, 0, True, False
        else:
            new, used, satisfied, moved = self._step(xp, state, evaluate, lr)
        if not xp.host:  # selects: the state as it was on a skipped or converged step
            new = {k: ops.where(still, state[k], v) for k, v in new.items()}
            used = xp.where(still, xp.integer(0), used)
            satisfied = xp.lor(satisfied, still)
        self._write_state(new)
        for v, value in zip(variables, unflat(new["x"], variables)):
            v.assign(value)
        self._remember_point(new, batch, xp.lnot(skip))
        self._count(xp, used, evaluations, satisfied, moved, g, skip, still)
        return f, g_inf

    def _reusable(self, xp, x, batch):
        """Whether the stored last point is ``x`` on the same ``batch``."""
        if batch is None:
            return xp.lnot(True)
        last = ops.convert_to_tensor(self._last_batch)
        batch = ops.cast(batch, last.dtype)
        # Sums in another order (a shuffled full batch) agree to rounding; another
        # batch's sums differ far more.
        tolerance = 1e3 * float(np.finfo(keras.backend.standardize_dtype(last.dtype)).eps)
        same_batch = ops.all(ops.abs(batch - last) <= tolerance * (1.0 + ops.abs(last)))
        same_point = ops.all(ops.equal(x, ops.convert_to_tensor(self._last_position)))
        reuse = ops.logical_and(ops.logical_and(same_batch, same_point), ops.equal(self._last_valid, 1))
        return bool(ops.convert_to_numpy(reuse)) if xp.host else reuse

    def _remember_point(self, state, batch, valid):
        """Keep the point's loss and gradient for the next step (only when they are
        finite and the step was not skipped: otherwise the old ones stay, marked not
        valid)."""
        f = self._kept(state["f"], self._last_loss.dtype)
        g = self._kept(state["g"], self._last_gradient.dtype)
        valid = ops.logical_and(ops.convert_to_tensor(valid), ops.logical_and(ops.isfinite(f),
                                                                              ops.all(ops.isfinite(g))))
        for variable, value in ((self._last_position, self._kept(state["x"], self._last_position.dtype)),
                                (self._last_loss, f), (self._last_gradient, g)):
            variable.assign(ops.where(valid, value, ops.convert_to_tensor(variable)))
        if batch is not None:
            self._last_batch.assign(ops.cast(batch, self._last_batch.dtype))
        self._last_valid.assign(ops.cast(valid, "int32"))

    def _count(self, xp, used, evaluations, satisfied, moved, g, skip, still):
        """The telemetry of one step (``still``: no step was taken)."""
        def to(value, variable):
            return ops.cast(ops.convert_to_tensor(value), variable.dtype)

        applied = xp.lnot(still)
        self._line_search_evaluations.assign(to(used, self._line_search_evaluations))
        self._function_evaluations.assign(self._function_evaluations + to(used + evaluations,
                                                                           self._function_evaluations))
        failed = xp.land(xp.lnot(satisfied), applied)
        self._line_search_failures.assign(self._line_search_failures + to(failed, self._line_search_failures))
        self._gradient_norm.assign(to(xp.sqrt(xp.dot(g, g)), self._gradient_norm))
        self.iterations.assign(self.iterations + to(applied, self.iterations))
        self._skipped_steps.assign(self._skipped_steps + to(skip, self._skipped_steps))

    # ------------------------------------------------------------------ minimize
    def minimize(self, loss_fn, variables, steps=1, gradient_tolerance=None, loss_tolerance=None,
                 max_function_evaluations=None, callback=None, report_every=None, verbose=False):
        """Minimize a zero-argument ``loss_fn`` (returning a scalar) over ``variables``;
        returns a :class:`MinimizeResult` (the variables hold its final point).

        The whole loop runs compiled — one ``while_loop`` carrying the state, the
        stopping tests inside (``tf.function`` on TensorFlow; ``jax.jit`` with donated
        buffers on JAX; on PyTorch eagerly, with the control scalars on the host as
        ``torch.optim.LBFGS``) — traced once per (``loss_fn``, variables) and reused by
        later calls. It stops, before taking a step, when

        * ‖∇J‖∞ ≤ ``gradient_tolerance`` (scipy's ``gtol``): ``converged``;
        * ``steps`` steps were taken;
        * ``max_function_evaluations`` evaluations of (J, ∇J) were spent (a line
          search started below the budget may end above it, as scipy's);
        * the line search found no decrease along the steepest-descent direction (when
          it fails along a direction built from the memory, the memory is cleared and
          the next step tries −∇J);
        * J or ∇J at the point is not finite;
        * ``loss_tolerance`` is set and a step decreased J by at most ``loss_tolerance``
          · max(|J|, |J_new|, 1) (scipy's ``ftol``).

        A later call on the same ``loss_fn`` continues the run: the memory and the last
        loss and gradient (when the variables still hold that point) carry over.

        ``callback(step, loss)`` (or ``None``) is called every ``report_every`` steps
        (default 1 with a callback) with the 0-based index of the last step and the
        loss before it, when the variables hold the new point; ``verbose=True`` prints
        a progress line there too (every ``report_every`` steps, default every 256).
        Steps between two reports never wait for the host.
        """
        steps, gradient_tolerance, loss_tolerance, budget, report_every, verbose = self._checked_budgets(
            steps, gradient_tolerance, loss_tolerance, max_function_evaluations, callback, report_every, verbose)
        if verbose and report_every is None:
            report_every = CHUNK
        started = time.perf_counter()
        variables = self._checked(loss_fn, variables)
        xp = self._xp
        key = (loss_fn, tuple(id(v) for v in variables))
        if key not in self._compiled:
            self._compiled[key] = self._runner(loss_fn, variables)
        evaluate, run = self._compiled[key]
        x = flat([read(v) for v in variables], variables[0].dtype)
        state = self._read_state(xp)
        # The last loss and gradient when the variables still hold their point (a later
        # call on the same loss), else one evaluation.
        if getattr(self, "_last_loss_fn", None) is loss_fn and self._reusable(xp, x, ops.zeros((4,))):
            f, g = self._kept(self._last_loss, self._last_loss.dtype), self._kept(self._last_gradient,
                                                                                  self._last_gradient.dtype)
            f, evaluations = (np.float64(ops.convert_to_numpy(f)) if xp.host else f), 0
        else:
            (f, g), evaluations = evaluate(x), 1
        self._last_loss_fn = loss_fn
        state.update(x=x, f=f, g=g)
        limits = {
            "steps": steps, "gtol": -1.0 if gradient_tolerance is None else gradient_tolerance,
            "ftol": -1.0 if loss_tolerance is None else loss_tolerance, "budget": INT_MAX if budget is None else budget,
        }
        control = {"k": 0, "evaluations": evaluations, "failures": 0, "used": 0, "status": RUNNING}
        gnorm = float(ops.convert_to_numpy(xp.norm_inf(g)))
        if not (np.isfinite(float(ops.convert_to_numpy(f))) and np.isfinite(gnorm)):
            control["status"] = NONFINITE
        elif gnorm <= limits["gtol"]:
            control["status"] = CONVERGED
        losses, written = [], dict(control, evaluations=0)
        base = int(ops.convert_to_numpy(self.iterations))  # a schedule's step index at k = 0
        while control["status"] == RUNNING:
            n = CHUNK if report_every is None else min(CHUNK, report_every - control["k"] % report_every)
            state, control, recorded = run(state, control, limits, n, base)
            losses.extend(recorded)
            if report_every is not None and (control["k"] % report_every == 0 or control["status"] != RUNNING):
                written = self._finish(variables, state, control, written)
                if callback is not None:
                    callback(control["k"] - 1, losses[-1])
                if verbose:
                    print(f"{self.name}: step {control['k']}: loss {losses[-1]:.6g}, "
                          f"evaluations {control['evaluations']}", flush=True)
        self._finish(variables, state, control, written)
        loss = float(ops.convert_to_numpy(state["f"]))
        gnorm = float(ops.convert_to_numpy(xp.norm_inf(state["g"])))
        result = MinimizeResult(
            converged=control["status"] == CONVERGED, status=control["status"], message=MESSAGES[control["status"]],
            iterations=control["k"], function_evaluations=control["evaluations"], loss=loss, gradient_norm=gnorm,
            losses=np.asarray(losses, dtype=np.float64), seconds=time.perf_counter() - started,
        )
        if verbose:
            print(f"{self.name}: {result.message} after {result.iterations} steps, {result.function_evaluations} "
                  f"evaluations: loss {loss:.6g}, |g|inf {gnorm:.3g}", flush=True)
        return result

    def _finish(self, variables, state, control, written):
        """Write the solve's point, memory and telemetry into the variables (at the end
        and at each report); returns the control as written."""
        self._write_state(state)
        for v, value in zip(variables, unflat(ops.convert_to_tensor(state["x"]), variables)):
            v.assign(value)
        self._remember_point(state, ops.zeros((4,)), True)
        for variable, key in ((self.iterations, "k"), (self._function_evaluations, "evaluations"),
                              (self._line_search_failures, "failures")):
            variable.assign(variable + ops.cast(control[key] - written[key], variable.dtype))
        self._line_search_evaluations.assign(ops.cast(control["used"], "int32"))
        g = ops.convert_to_tensor(state["g"])
        self._gradient_norm.assign(ops.cast(ops.sqrt(dot(g, g)), "float32"))
        return dict(control)

    def _runner(self, loss_fn, variables):
        """(evaluate, run): the oracle and ``run(state, control, limits, n)`` → up to ``n``
        more steps (the new state and control, and the losses before each step)."""
        evaluate = self._gradient_oracle(loss_fn, variables)
        if self._xp.host:
            return evaluate, self._host_run(evaluate)
        return self._autodiff.jit(evaluate), self._traced_run(evaluate)

    def _learning_rate_fn(self, lr):
        """ε at a step: the schedule's value, or ``lr`` (read once per call: a compiled
        loop must not bake in a variable's value)."""
        schedule = self._learning_rate
        if isinstance(schedule, keras.Variable) or not callable(schedule):
            return lambda iteration: lr
        return lambda iteration: ops.cast(schedule(iteration), lr.dtype) if hasattr(lr, "dtype") else \
            np.float64(ops.convert_to_numpy(schedule(iteration)))

    def _current_lr(self, like):
        value = self._learning_rate
        value = value if isinstance(value, keras.Variable) or not callable(value) else 0.0
        return ops.cast(value, like.dtype) if hasattr(like, "dtype") else np.float64(ops.convert_to_numpy(value))

    def _chunk_body(self, xp, evaluate, state, control, limits, lr):
        """One step of ``minimize`` with its stopping tests: the new state and control."""
        f_old, fresh = state["f"], state["fresh"]
        new, used, satisfied, moved = self._step(xp, state, evaluate, lr)
        k = control["k"] + 1
        evaluations = control["evaluations"] + used
        decrease = f_old - new["f"]
        scale = xp.larger(xp.larger(xp.abs(f_old), xp.abs(new["f"])), xp.scalar(1.0, decrease))
        stalled = xp.land(limits["ftol"] >= 0.0, decrease <= limits["ftol"] * scale)
        failed = xp.land(xp.lnot(moved), fresh == 1)
        status = xp.where(xp.norm_inf(new["g"]) <= limits["gtol"], xp.integer(CONVERGED),
                 xp.where(failed, xp.integer(SEARCH_FAILED),
                 xp.where(xp.land(moved, stalled), xp.integer(NO_PROGRESS),
                 xp.where(evaluations >= limits["budget"], xp.integer(EVALUATION_BUDGET),
                 xp.where(k >= limits["steps"], xp.integer(STEP_BUDGET), xp.integer(RUNNING))))))
        failures = control["failures"] + xp.where(satisfied, xp.integer(0), xp.integer(1))
        return new, dict(control, k=k, evaluations=evaluations, status=status, failures=failures, used=used)

    def _host_run(self, evaluate):
        xp = self._xp

        def run(state, control, limits, n, base):
            lr_at = self._learning_rate_fn(self._current_lr(np.float64(0.0)))
            recorded = []
            with np.errstate(all="ignore"):
                for _ in range(n):
                    recorded.append(float(state["f"]))
                    state, control = self._chunk_body(xp, evaluate, state, control, limits, lr_at(base + control["k"]))
                    if control["status"] != RUNNING:
                        break
            return state, control, recorded

        return run

    def _traced_run(self, evaluate):
        xp = arrays.TRACED

        def chunk(state, control, limits, n, lr, base):
            lr_at = self._learning_rate_fn(lr)
            losses = ops.zeros((CHUNK,), state["f"].dtype)

            def cond(state, control, losses):
                return ops.logical_and(ops.equal(control["status"], RUNNING), control["chunk"] < n)

            def body(state, control, losses):
                losses = xp.set_entry(losses, control["chunk"], state["f"])
                state, control = self._chunk_body(xp, evaluate, state, control, limits, lr_at(base + control["k"]))
                return state, dict(control, chunk=control["chunk"] + 1), losses

            return ops.while_loop(cond, body, (state, control, losses))

        compiled = self._autodiff.jit(chunk, donate_first=True)

        def run(state, control, limits, n, base):
            dtype = state["f"].dtype
            control = {k: ops.convert_to_tensor(v, "int32") for k, v in dict(control, chunk=0).items()}
            limits = {"steps": ops.convert_to_tensor(limits["steps"], "int32"),
                      "budget": ops.convert_to_tensor(limits["budget"], "int32"),
                      "gtol": ops.convert_to_tensor(limits["gtol"], dtype),
                      "ftol": ops.convert_to_tensor(limits["ftol"], dtype)}
            state, control, losses = compiled(state, control, limits, ops.convert_to_tensor(n, "int32"),
                                              self._current_lr(state["f"]), ops.convert_to_tensor(base, "int32"))
            host = dict(zip(control, ops.convert_to_numpy(ops.stack(list(control.values()))).tolist()))
            recorded = ops.convert_to_numpy(losses)[: host.pop("chunk")].astype(np.float64).tolist()
            return state, host, recorded

        return run

    def get_config(self):
        config = super().get_config()
        config.update({"line_search": self.line_search, "max_evaluations": self.max_evaluations,
                       "c1": self.c1, "c2": self.c2})
        return config
