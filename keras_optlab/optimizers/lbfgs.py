"""Limited-memory BFGS — Sec. 8.6.3 of Goodfellow et al. (2016); Nocedal & Wright (2006),
Alg. 7.4 (two-loop recursion) and 7.5."""

import keras
import numpy as np

from keras_optlab import _checks
from keras_optlab.optimizers.base import fill_docstring, scalar_dtype
from keras_optlab.optimizers.closure import LineSearchOptimizer


def two_loop(xp, g, s, y, rho, head, count, gamma):
    """H g by the two-loop recursion (N&W Alg. 7.4), H the L-BFGS inverse-Hessian
    approximation from the ``count`` newest pairs (sᵢ, yᵢ, ρᵢ = 1/sᵢᵀyᵢ) of the
    circular buffers ``s``, ``y``, ``rho`` (m rows; the newest at row ``head − 1``
    mod m) and H₀ = γI. A loop over the buffer: no row is copied."""
    m = s.shape[0]

    def newest_first(i, q, alphas):
        j = (head - 1 - i + m) % m
        alpha = xp.entry(rho, j) * xp.dot(xp.row(s, j), q)
        return xp.axpy(q, -alpha, xp.row(y, j)), xp.set_entry(alphas, j, alpha)

    q, alphas = xp.fori_loop(0, count, newest_first, (g, xp.scalars(m, g)))

    def oldest_first(i, r):
        j = (head - count + i + m) % m
        beta = xp.entry(rho, j) * xp.dot(xp.row(y, j), r)
        return (xp.axpy(r, xp.entry(alphas, j) - beta, xp.row(s, j)),)

    return xp.fori_loop(0, count, oldest_first, (gamma * q,))[0]


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
    SCALAR_VECTORS = ("rho",)

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
        self._rho = self.add_variable((self.history,), dtype=dtype, name="rho")
        self._head = self.add_variable((), dtype="int32", name="head")
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
        return super()._counters() + (self._head, self._pairs, self._curvature_pair_skips)

    def check_loaded_state(self, store, index):
        """As every keras_optlab optimizer (state checked), and ``pairs``, ``head`` ≤ ``history``."""
        super().check_loaded_state(store, index)
        for variable, high in ((self._pairs, self.history), (self._head, self.history - 1)):
            value = int(np.asarray(store[str(index[id(variable)])]))
            if value > high:
                self.refuse_loaded(variable, f"must be <= {high} (history={self.history})", value)

    def _memory_variables(self):
        return {"s": self._s_history, "y": self._y_history, "rho": self._rho, "head": self._head,
                "pairs": self._pairs, "skips": self._curvature_pair_skips}

    def _direction(self, xp, state, g):
        s, y, head, count = state["s"], state["y"], state["head"], state["pairs"]
        newest = (head - 1 + self.history) % self.history
        s_new, y_new = xp.row(s, newest), xp.row(y, newest)
        yy = xp.dot(y_new, y_new)
        one = xp.scalar(1.0, yy)
        gamma = xp.where(count > 0, xp.dot(s_new, y_new) / xp.where(count > 0, yy, one), one)
        return -two_loop(xp, g, s, y, state["rho"], head, count, gamma), None

    def _initial_step(self, xp, state, g, d, slope):
        first = self.unit_first_step(xp, g)
        return xp.where(state["pairs"] > 0, xp.scalar(1.0, first), first)

    def _remember(self, xp, state, g, d, step, g_new, reset, memo):
        y = g_new - g
        sy, ss = xp.dot(step, y), xp.dot(step, step)
        eps = float(np.finfo(scalar_dtype(g.dtype)).eps)
        curved = sy > eps * xp.sqrt(ss * xp.dot(y, y))
        head, m = state["head"], self.history
        count = xp.where(reset, xp.integer(0), state["pairs"])  # memory cleared
        # The pair goes into row `head` (the oldest once the buffer is full); a pair
        # that is not kept leaves the row as it was.
        s = xp.set_row(state["s"], head, xp.where(curved, step, xp.row(state["s"], head)))
        y_rows = xp.set_row(state["y"], head, xp.where(curved, y, xp.row(state["y"], head)))
        inverse = xp.scalar(1.0, sy) / xp.where(curved, sy, xp.scalar(1.0, sy))
        rho = xp.set_entry(state["rho"], head, xp.where(curved, inverse, xp.entry(state["rho"], head)))
        # A step that moved but whose pair fails sᵀy > 0 (a step of length 0 has no pair).
        skipped = xp.land(xp.lnot(curved), ss > 0.0)
        return {
            "s": s, "y": y_rows, "rho": rho,
            "head": xp.where(curved, (head + 1) % m, head),
            "pairs": xp.where(curved, xp.smaller(count + 1, xp.integer(m)), count),
            "skips": xp.increment(state["skips"], skipped),
        }

    def get_config(self):
        config = super().get_config()
        config["history"] = self.history
        return config
