"""Limited-memory BFGS — Sec. 8.6.3 of Goodfellow et al. (2016); Nocedal & Wright (2006),
Alg. 7.4 (two-loop recursion) and 7.5."""

import keras
import numpy as np
from keras import ops

from keras_optlab import _checks
from keras_optlab.optimizers.base import fill_docstring, scalar_dtype
from keras_optlab.optimizers.closure import LineSearchOptimizer, dot
from keras_optlab.optimizers.line_search import smaller


def two_loop(g, s_history, y_history, count, gamma):
    """H g by the two-loop recursion (N&W Alg. 7.4), H the L-BFGS inverse-Hessian
    approximation from the ``count`` newest pairs (sᵢ, yᵢ) — rows of ``s_history`` and
    ``y_history``, newest last, unused rows first — and H₀ = γI."""
    m = s_history.shape[0]
    valid = [ops.greater_equal(j, m - count) for j in range(m)]
    rho = []
    for j in range(m):
        sy = dot(s_history[j], y_history[j])
        rho.append(ops.where(valid[j], 1.0 / ops.where(valid[j], sy, ops.ones_like(sy)), ops.zeros_like(sy)))
    q, alphas = g, [None] * m
    for j in reversed(range(m)):  # newest first
        alphas[j] = rho[j] * dot(s_history[j], q)
        q = q - alphas[j] * y_history[j]
    r = gamma * q
    for j in range(m):  # oldest first
        beta = rho[j] * dot(y_history[j], r)
        r = r + (alphas[j] - beta) * s_history[j]
    return r


@fill_docstring
@keras.saving.register_keras_serializable(package="keras_optlab")
class LBFGS(LineSearchOptimizer):
    """Limited-memory BFGS with a line search, *Deep Learning* Sec. 8.6.3.

    BFGS keeps an approximation M of the inverse Hessian, refined from the change of the
    gradient along each step; L-BFGS keeps only the last ``history`` pairs
    (sᵢ = θᵢ₊₁ − θᵢ, yᵢ = gᵢ₊₁ − gᵢ) and applies M to g by the two-loop recursion, in
    O(history · n) memory and time:
    ```
    Require: θ₀, history m, line search (strong Wolfe or Armijo)
    while stopping criterion not met do
        g ← ∇θ J(θ)
        d ← −M g            (two-loop recursion over the m newest pairs, M₀ = γI,
                             γ = sᵀy / yᵀy of the newest pair, γ = 1 without pairs)
        α ← line search on J(θ + αd), first trial ε (ε·min(1, 1/‖g‖) without pairs)
        s ← αd;  θ ← θ + s;  y ← ∇θ J(θ) − g
        keep (s, y) if sᵀy > 0 (else skip the pair: M would not stay positive definite)
    end while
    ```
    ε is `learning_rate` (1.0: the quasi-Newton step is tried first, as the theory of
    superlinear convergence asks). A pair is kept when sᵀy > ε_mach · ‖s‖‖y‖ (ε_mach
    of the variables' dtype: a rounding-level sᵀy would give a 1/sᵀy near overflow);
    ``curvature_pair_skips`` counts the others. A step whose direction is not a descent
    direction, or whose line search found no decrease, clears the memory (the next step
    is steepest descent).

    Full-batch by default, as the algorithm assumes: with ``SecondOrder`` give ``fit``
    the whole training set as one batch (``batch_size=len(x)``). With mini-batches
    each pair comes from one batch (s and both gradients on the same batch, so sᵀy
    stays a curvature of that batch's loss), but the line search and the memory see a
    different function each step: it is then a stochastic heuristic, not L-BFGS.

    Needs the loss: train with ``keras_optlab.SecondOrder(model)`` or call
    :meth:`minimize`; the first-order arguments (clipping, weight decay, EMA, Polyak
    averaging, accumulation, loss scaling) are refused; ``skip_nonfinite`` skips a step
    whose loss or gradient at the start is not finite (weights and memory unchanged).
    TensorFlow, JAX and PyTorch backends; every step is one traceable function (the
    line search is a ``keras.ops.while_loop``). The memory (``s_history``,
    ``y_history``, ``pairs``) is saved with the optimizer, so a ``.keras`` file resumes
    the run exactly. All variables must share one float dtype.

    Args:
        learning_rate: Float > 0 or a schedule: ε, the line search's first trial step.
            Defaults to 1.0.
        history: Int ≥ 1, the pairs kept. Defaults to 10.
        line_search: "strong_wolfe" (default; zoom, Nocedal & Wright Alg. 3.5/3.6) or
            "armijo" (backtracking).
        max_evaluations: Int ≥ 1, evaluations of (J, ∇J) per line search. Defaults to 20.
        c1, c2: The Wolfe constants, 0 < c1 < c2 < 1. Defaults 1e-4 and 0.9 (N&W's
            choice for quasi-Newton methods).
        skip_nonfinite, name: as for every keras_optlab optimizer.

    Telemetry: ``line_search_evaluations``, ``function_evaluations``,
    ``line_search_failures`` (see ``LineSearchOptimizer``), ``curvature_pair_skips``,
    ``pairs`` (pairs in memory), ``gradient_norm``, ``skipped_steps``.

    References: Goodfellow, Bengio & Courville, *Deep Learning*, 2016, Sec. 8.6.3;
    Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, Alg. 7.4, 7.5, Eq. 7.20;
    Liu & Nocedal (1989), "On the limited memory BFGS method for large scale
    optimization", Math. Programming 45.
    """

    BASE_NAME = "lbfgs"

    def __init__(self, learning_rate=1.0, history=10, line_search="strong_wolfe", max_evaluations=20, c1=1e-4,
                 c2=0.9, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, line_search=line_search, max_evaluations=max_evaluations,
                         c1=c1, c2=c2, name=name, **kwargs)
        self.history = _checks.integer("history", history, low=1)
        self._require_backend()

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        dtype = var_list[0].dtype
        shape = (self.history, self.num_parameters)
        self._s_history = self.add_variable(shape, dtype=dtype, name="s_history")
        self._y_history = self.add_variable(shape, dtype=dtype, name="y_history")
        self._pairs = self.add_variable((), dtype="int32", name="pairs")
        self._curvature_pair_skips = self.add_variable((), dtype="int", name="curvature_pair_skips")

    @property
    def pairs(self):
        """Curvature pairs (s, y) in memory, 0 … history."""
        return self._pairs

    @property
    def curvature_pair_skips(self):
        """Pairs left out because sᵀy ≤ ε_mach‖s‖‖y‖."""
        return self._curvature_pair_skips

    def _counters(self):
        return super()._counters() + (self._pairs, self._curvature_pair_skips)

    def load_own_variables(self, store):
        """As every keras_optlab optimizer (state checked), and ``pairs`` ≤ ``history``."""
        if self.built and len(store.keys()) == len(self.variables):
            index = {id(v): i for i, v in enumerate(self.variables)}
            pairs = int(store[str(index[id(self._pairs)])][()])
            if pairs > self.history:
                raise ValueError(
                    f"Refusing to load optimizer '{self.name}': saved state of variable '{self._pairs.path}' "
                    f"must be <= history={self.history}. Received: pairs={pairs}"
                )
        super().load_own_variables(store)

    def _direction(self, g):
        s_history, y_history = ops.convert_to_tensor(self._s_history), ops.convert_to_tensor(self._y_history)
        count = ops.convert_to_tensor(self._pairs)
        s, y = s_history[-1], y_history[-1]
        yy = dot(y, y)
        gamma = ops.where(count > 0, dot(s, y) / ops.where(count > 0, yy, ops.ones_like(yy)), ops.ones_like(yy))
        return -two_loop(g, s_history, y_history, count, gamma), None

    def _initial_step(self, g, d, slope):
        first = self.unit_first_step(g)
        return ops.where(ops.convert_to_tensor(self._pairs) > 0, ops.ones_like(first), first)

    def _remember(self, g, d, step, g_new, keep, reset, memo):
        y = g_new - g
        sy, ss = dot(step, y), dot(step, step)
        curved = sy > float(np.finfo(scalar_dtype(step.dtype)).eps) * ops.sqrt(ss * dot(y, y))
        count = ops.convert_to_tensor(self._pairs)
        count = ops.where(keep & reset, ops.zeros_like(count), count)  # memory cleared
        add = keep & curved
        for history, new in ((self._s_history, step), (self._y_history, y)):
            old = ops.convert_to_tensor(history)
            shifted = ops.concatenate([old[1:], ops.expand_dims(new, 0)], axis=0)
            history.assign(ops.where(add, shifted, old))
        grown = smaller(count + 1, ops.full_like(count, self.history))
        self._pairs.assign(ops.cast(ops.where(add, grown, count), "int32"))
        # A step that moved but whose pair fails sᵀy > 0 (a step of length 0 has no pair).
        skipped = keep & ops.logical_not(curved) & (ss > 0.0)
        self._curvature_pair_skips.assign(
            self._curvature_pair_skips + ops.cast(skipped, self._curvature_pair_skips.dtype)
        )

    def get_config(self):
        config = super().get_config()
        config["history"] = self.history
        return config
