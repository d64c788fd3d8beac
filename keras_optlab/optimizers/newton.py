"""Newton's method, regularized — Algorithm 8.8 and Sec. 8.6.1 of Goodfellow et al. (2016)."""

import keras
import numpy as np
from keras import ops

from keras_optlab import _checks
from keras_optlab.curvature.autodiff.common import flat as _flat
from keras_optlab.curvature.oracle import closure_product
from keras_optlab.curvature.autodiff.common import unflat as _unflat
from keras_optlab.optimizers.base import fill_docstring
from keras_optlab.optimizers.closure import ClosureOptimizer, dot as _dot, read as _read

SOLVERS = ("auto", "exact", "cg")
CURVATURES = ("hessian", "gauss_newton")
# Above this many parameters `solver="exact"` refuses: the Hessian has n² entries
# (4096² float32 = 64 MiB) and its factorization costs O(n³).
MAX_EXACT_PARAMETERS = 4096
# Martens (2010), Sec. 4.5: CG starts from the previous direction, decayed.
WARM_START_DECAY = 0.95

@fill_docstring
@keras.saving.register_keras_serializable(package="keras_optlab")
class Newton(ClosureOptimizer):
    """Newton's method with Levenberg–Marquardt regularization, *Deep Learning*
    Algorithm 8.8 and Sec. 8.6.1.

    ```
    Require: initial parameter θ₀                     (the model's weights)
    Require: training set of m examples               (each batch)
    while stopping criterion not met do
        compute gradient g ← ∇θ J(θ)
        compute Hessian H ← ∇²θ J(θ)
        compute Hessian inverse H⁻¹                    (here: solve, never invert)
        compute update Δθ = −H⁻¹ g
        apply update θ = θ + Δθ
    end while
    ```
    Near a saddle point H has negative eigenvalues and the Newton step moves *toward*
    the saddle; Sec. 8.6.1 regularizes with a constant α on the diagonal:
    θ ← θ − ε (H + αI)⁻¹ g, with ε = `learning_rate` and α = `damping`.

    Solvers:

    * ``"exact"`` forms H (the Jacobian of the gradient: ``tape.jacobian`` on
      TensorFlow, ``jax.hessian`` on JAX, batched rows on PyTorch) and solves
      (H + αI) d = g through its eigendecomposition (an exactly singular H + αI is
      inverted on its range). It refuses models with more than
      ``MAX_EXACT_PARAMETERS`` (4096) parameters.
    * ``"cg"`` is Hessian-free (Martens 2010): conjugate gradient on (H + αI) d = g
      using only Hessian-vector products (double backprop, about two gradients each),
      warm-started from the previous direction × 0.95, at most `max_cg_iterations`
      iterations, until ‖residual‖ ≤ `cg_tolerance`·‖g‖. CG stops early when it meets
      non-positive curvature (pᵀ(H + αI)p ≤ 0, Steihaug's rule) and keeps the iterate
      it has: increase `damping` when the Hessian is indefinite.
    * ``"auto"``: exact up to 4096 parameters, CG above.

    ``adaptive_damping=True`` adjusts α after every step from the reduction ratio
    ρ = (J(θ + Δθ) − J(θ)) / (gᵀΔθ + ½ΔθᵀHΔθ): α ← 3/2·α when ρ < 1/4 (or when the
    quadratic model predicts no decrease, or the loss rose), α ← 2/3·α when ρ > 3/4
    (Martens 2010, Sec. 4.1; one extra forward pass), and a step that raised the
    loss is undone (Levenberg–Marquardt's rejection). The current α is
    the optimizer variable ``damping_value`` and is saved with it.

    ``curvature="gauss_newton"`` (CG only) replaces H by the Gauss-Newton matrix
    G = Jᵀ H_L J, positive semi-definite for convex losses of the outputs — Martens'
    (2010) choice for Hessian-free training; needs ``SecondOrder`` (which splits the
    loss at the model's outputs). Regularizer curvature is left out of G.

    ``saddle_free=True`` (exact solver) replaces H by |H| — the same eigenvectors with
    eigenvalues |λᵢ| — so that negative curvature pushes away from saddles
    (Dauphin et al. 2014): d = Q diag(1/(|λ| + α)) Qᵀ g.

    A Keras optimizer never sees the loss, which Newton needs: train with
    ``keras_optlab.SecondOrder(model)`` (its `train_step` calls :meth:`newton_step`)
    or call :meth:`minimize` with a zero-argument loss, which must return a scalar
    (a non-scalar one is refused with a ``ValueError`` echoing its shape).
    TensorFlow, JAX and PyTorch backends (differentiation by
    :mod:`keras_optlab.curvature.autodiff`, the step in ``keras.ops``); on another the
    constructor raises ``RuntimeError`` (after the arguments' own checks), naming
    ``keras.backend.backend()``. The
    gradient/clipping arguments of first-order optimizers (weight decay, clipping,
    EMA, accumulation, loss scaling) do not apply to a Newton step and are refused;
    ``skip_nonfinite`` is honoured (a step whose gradient or direction is not finite
    is skipped). Telemetry: ``gradient_norm``, ``skipped_steps``, ``cg_iterations``
    (of the last step); ``clipped_steps`` stays 0. All variables must share one float dtype.

    Args:
        learning_rate: Float ≥ 0 or a schedule. ε. Defaults to 1.0 (the full step).
        damping: Float ≥ 0. α. Defaults to 1e-4. Must be > 0 with
            `adaptive_damping` (a multiplicative rule cannot leave 0).
        solver: "auto", "exact" or "cg".
        max_cg_iterations: Int ≥ 1. Defaults to 50.
        cg_tolerance: Float > 0, relative to ‖g‖. Defaults to 1e-5.
        adaptive_damping: Bool. Defaults to False.
        saddle_free: Bool. Defaults to False. Needs the exact solver.
        curvature: "hessian" (default) or "gauss_newton" (CG only).
        skip_nonfinite, name: as for every keras_optlab optimizer.

    References: Goodfellow, Bengio & Courville, *Deep Learning*, 2016, Alg. 8.8,
    Sec. 8.6.1; Martens (2010), "Deep learning via Hessian-free optimization", ICML;
    Dauphin et al. (2014), "Identifying and attacking the saddle point problem in
    high-dimensional non-convex optimization", NeurIPS; Nocedal & Wright (2006),
    *Numerical Optimization*, Alg. 7.2 (Steihaug CG).
    """

    BASE_NAME = "newton"

    def __init__(
        self,
        learning_rate=1.0,
        damping=1e-4,
        solver="auto",
        max_cg_iterations=50,
        cg_tolerance=1e-5,
        adaptive_damping=False,
        saddle_free=False,
        curvature="hessian",
        name=None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.damping = _checks.number("damping", damping, low=0.0)
        self.solver = _checks.one_of("solver", solver, SOLVERS)
        self.max_cg_iterations = _checks.integer("max_cg_iterations", max_cg_iterations, low=1)
        self.cg_tolerance = _checks.positive("cg_tolerance", cg_tolerance)
        adaptive_damping = _checks.boolean("adaptive_damping", adaptive_damping)
        saddle_free = _checks.boolean("saddle_free", saddle_free)
        if adaptive_damping and self.damping == 0.0:
            raise ValueError("`damping` must be > 0 when `adaptive_damping=True`. Received: damping=0.0")
        if saddle_free and solver == "cg":
            raise ValueError("`saddle_free=True` needs the exact solver (it takes |H| from an eigendecomposition). "
                             "Received: solver='cg'")
        curvature = _checks.one_of("curvature", curvature, CURVATURES)
        if curvature == "gauss_newton" and (solver == "exact" or saddle_free):
            raise ValueError(
                "curvature='gauss_newton' is Hessian-free only (solver='cg' or 'auto'; it is positive "
                f"semi-definite, so saddle_free has no use). Received: solver={solver!r}, saddle_free={saddle_free!r}"
            )
        self.adaptive_damping = adaptive_damping
        self.saddle_free = saddle_free
        self.curvature = curvature
        self._require_backend()

    # ------------------------------------------------------------------ state
    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._directions = self.add_optimizer_variables(var_list, "direction")
        self._damping_value = self.add_variable(
            (), initializer=keras.initializers.Constant(self.damping), dtype="float32", name="damping_value"
        )
        self._cg_iterations = self.add_variable((), dtype="int32", name="cg_iterations")
        self.resolved_solver = self._resolve_solver(self.num_parameters)

    @property
    def damping_value(self):
        """The current α (changes with `adaptive_damping`)."""
        return self._damping_value

    @property
    def cg_iterations(self):
        """CG iterations of the last step (each one Hessian-vector product); 0 for exact."""
        return self._cg_iterations

    def _resolve_solver(self, n):
        solver = self.solver
        if solver == "auto":
            solver = "exact" if n <= MAX_EXACT_PARAMETERS and self.curvature == "hessian" else "cg"
        if solver == "exact" and n > MAX_EXACT_PARAMETERS:
            raise ValueError(
                f"solver='exact' forms the {n}×{n} Hessian; it is refused above {MAX_EXACT_PARAMETERS} "
                "parameters. Use solver='cg' (Hessian-free)."
            )
        if self.saddle_free and solver != "exact":
            raise ValueError(
                f"saddle_free=True needs the exact solver, refused above {MAX_EXACT_PARAMETERS} parameters "
                f"(this model has {n})."
            )
        return solver

    # ------------------------------------------------------------------ Newton steps
    def newton_step(self, loss_fn, variables, outputs_fn=None, output_loss_fn=None):
        """One step θ ← θ − ε(H + αI)⁻¹g on a zero-argument ``loss_fn``; returns J(θ)
        before the step (:meth:`closure_step` under Newton's name). Works eagerly, inside
        ``tf.function``, under ``jax.jit`` in a ``keras.StatelessScope`` (how
        ``SecondOrder`` trains on JAX) and on torch.

        ``curvature="gauss_newton"`` also needs the loss split at the model's outputs:
        ``outputs_fn()`` → z and ``output_loss_fn(z)`` → J (``SecondOrder`` passes them).
        """
        return self.closure_step(loss_fn, variables, outputs_fn, output_loss_fn)

    def _closure_step(self, loss_fn, variables, outputs_fn=None, output_loss_fn=None, batch=None,
                      gradient_tolerance=None):
        return self._iterate(loss_fn, variables, outputs_fn, output_loss_fn, gradient_tolerance)

    def _iterate(self, loss_fn, variables, outputs_fn=None, output_loss_fn=None, gradient_tolerance=None):
        """One step; returns (J, ‖∇J‖∞) at the point it starts from. With
        ``gradient_tolerance``, a point where ‖∇J‖∞ is at most it is left as it is."""
        if self.curvature == "gauss_newton" and (outputs_fn is None or output_loss_fn is None):
            raise ValueError(
                "curvature='gauss_newton' needs the model outputs: train with keras_optlab.SecondOrder, "
                "or pass outputs_fn and output_loss_fn to newton_step."
            )
        dtype = variables[0].dtype
        autodiff = self._autodiff
        alpha = ops.cast(self._damping_value, dtype)
        lr = ops.cast(self.learning_rate, dtype)

        if self.resolved_solver == "exact":
            loss, grads, hessian = autodiff.hessian(loss_fn, variables)
            hessian = ops.cast(hessian, dtype)
            hessian = 0.5 * (hessian + ops.transpose(hessian))  # symmetric up to roundoff
            g = _flat(grads, dtype)
            direction = self._exact_direction(hessian, g, alpha)
            curvature = lambda d: _dot(d, _matvec(hessian, d))  # noqa: E731
        else:
            loss, grads = autodiff.loss_and_gradient(loss_fn, variables)
            g = _flat(grads, dtype)

            curvature_product = closure_product(loss_fn, variables, self.curvature, outputs_fn, output_loss_fn,
                                                autodiff=autodiff)

            def product(p):  # H p, or G p
                return _flat(curvature_product(_unflat(p, variables)), dtype)

            x0 = WARM_START_DECAY * _flat(self._directions, dtype)
            direction = self._cg(lambda p: product(p) + alpha * p, g, x0)
            curvature = lambda d: _dot(d, product(d))  # noqa: E731

        self._gradient_norm.assign(ops.cast(ops.sqrt(_dot(g, g)), "float32"))
        g_inf = ops.max(ops.abs(g))
        finite = ops.all(ops.isfinite(direction)) & ops.isfinite(ops.cast(loss, dtype))
        if not self.skip_nonfinite:
            finite = ops.convert_to_tensor(True)
        converged = ops.convert_to_tensor(False) if gradient_tolerance is None else g_inf <= gradient_tolerance
        move = ops.logical_and(finite, ops.logical_not(converged))
        # Every update is a select on `finite`, never a branch: the same code is a
        # stateless function under jax.jit and never syncs with the host on torch.
        step = ops.where(move, -lr * direction, ops.zeros_like(direction))
        kept = direction
        if self.adaptive_damping:
            # The quadratic model's curvature along the step, at θ (before it moves).
            step_curvature = curvature(step)
            old = [ops.copy(_read(v)) for v in variables]
        for v, s_ in zip(variables, _unflat(step, variables)):
            v.assign(_read(v) + s_)
        if self.adaptive_damping:
            accepted = self._adapt_damping(loss_fn, loss, g, step, step_curvature, move)
            # Levenberg–Marquardt: a step that raised the loss is undone (α has grown)
            # and CG's next warm start begins from zero.
            for v, before in zip(variables, old):
                v.assign(ops.where(accepted, _read(v), before))
            kept = ops.where(accepted, direction, ops.zeros_like(direction))
        for d, s_ in zip(self._directions, _unflat(kept, variables)):
            d.assign(ops.where(move, ops.cast(s_, d.dtype), d.value))
        # Variables, not the iterations property: Newton refuses gradient accumulation.
        self.iterations.assign(self.iterations + ops.cast(move, self.iterations.dtype))
        self._skipped_steps.assign(
            self._skipped_steps + ops.cast(ops.logical_not(finite), self._skipped_steps.dtype)
        )
        return loss, g_inf

    def _exact_direction(self, hessian, g, alpha):
        """(H + αI)⁻¹g — or (|H| + αI)⁻¹g when saddle-free — from H = QΛQᵀ.

        One eigendecomposition serves both; an exactly singular H + αI is inverted on
        its range (pseudo-inverse) instead of failing, and a non-finite H gives a NaN
        direction (skipped with `skip_nonfinite`) instead of an exception.
        """
        finite = ops.all(ops.isfinite(hessian))
        eigenvalues, q = ops.eigh(ops.where(finite, hessian, ops.zeros_like(hessian)))
        if self.saddle_free:
            eigenvalues = ops.abs(eigenvalues)
        shifted = eigenvalues + alpha
        singular = ops.equal(shifted, 0.0)
        inverse = ops.where(singular, ops.zeros_like(shifted), 1.0 / ops.where(singular, ops.ones_like(shifted), shifted))
        direction = _matvec(q, inverse * _matvec(ops.transpose(q), g))
        return ops.where(finite, direction, ops.full_like(direction, float("nan")))

    def _cg(self, matvec, b, x0):
        """Truncated conjugate gradient for A x = b (Nocedal & Wright, Alg. 5.2 / 7.2),
        written against the closure wing's namespace ``xp``: one ``while_loop`` of
        selects when traced, a Python loop over host scalars on PyTorch."""
        xp = self._xp
        threshold = self.cg_tolerance * xp.sqrt(xp.dot(b, b))
        r0 = b - matvec(x0)
        rs0 = xp.dot(r0, r0)

        def cond(i, x, r, p, rs, done):
            return xp.land(xp.land(i < self.max_cg_iterations, xp.lnot(done)), xp.sqrt(rs) > threshold)

        def body(i, x, r, p, rs, done):
            ap = matvec(p)
            pap = xp.dot(p, ap)
            negative = pap <= 0.0  # Steihaug: stop at non-positive curvature, keep x …
            a = xp.where(negative, xp.scalar(0.0, rs), rs / xp.where(negative, xp.scalar(1.0, pap), pap))
            # … unless it is the very first direction: then fall back to steepest
            # descent, d = g (Nocedal & Wright, Alg. 7.1).
            x = xp.where(xp.land(negative, i == 0), b, x + a * p)
            r = r - a * ap
            rs_new = xp.dot(r, r)
            p = r + (rs_new / xp.where(rs > 0.0, rs, xp.scalar(1.0, rs))) * p
            return i + 1, x, r, p, rs_new, negative

        start = (xp.integer(0), x0, r0, r0, rs0, xp.lnot(True))
        iterations, x, _, _, _, _ = xp.while_loop(cond, body, start)
        self._cg_iterations.assign(ops.cast(ops.convert_to_tensor(iterations), "int32"))
        return x

    def _adapt_damping(self, loss_fn, loss, g, step, step_curvature, finite):
        """Update α from the reduction ratio; True when the step is to be kept."""
        new_loss = ops.cast(loss_fn(), step.dtype)
        predicted = _dot(g, step) + 0.5 * step_curvature
        loss = ops.cast(loss, step.dtype)
        ratio = (new_loss - loss) / ops.where(predicted == 0.0, ops.ones_like(predicted), predicted)
        accepted = ops.isfinite(new_loss) & (new_loss <= loss)
        # The quadratic model must predict a decrease for ρ to mean anything: a step
        # it does not (indefinite H + αI), or one that raised or broke the loss, is
        # a bad step and α grows.
        bad = ops.logical_not(accepted) | ops.logical_not(predicted < 0.0)
        factor = ops.where(bad | (ratio < 0.25), 1.5, ops.where(ratio > 0.75, 2.0 / 3.0, 1.0))
        factor = ops.where(finite, ops.cast(factor, "float32"), ops.ones((), "float32"))
        self._damping_value.assign(self._damping_value * factor)
        return accepted

    def _counters(self):
        return (self._cg_iterations,)

    def _initial_values(self):
        return super()._initial_values() + ((self._damping_value, self.damping),)

    def check_loaded_state(self, store, index):
        """``damping_value`` >= 0 (> 0 with ``adaptive_damping``, which can never leave 0)."""
        damping = np.asarray(store[str(index[id(self._damping_value)])], dtype=np.float64)
        if np.isfinite(damping).all() and ((damping <= 0).any() if self.adaptive_damping else (damping < 0).any()):
            low_text = "> 0 (adaptive_damping)" if self.adaptive_damping else ">= 0"
            self.refuse_loaded(self._damping_value, f"must be {low_text}", damping.tolist())

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "damping": self.damping,
                "solver": self.solver,
                "max_cg_iterations": self.max_cg_iterations,
                "cg_tolerance": self.cg_tolerance,
                "adaptive_damping": self.adaptive_damping,
                "saddle_free": self.saddle_free,
                "curvature": self.curvature,
            }
        )
        return config


def _matvec(m, x):
    # M x by ops.einsum, not ops.matmul: Keras 3.15's torch matmul computes float64 in
    # float32 (its dtypes.result_type maps 64-bit floats to 32-bit), which made a float64
    # exact Newton step on torch float32-accurate (~1e-7 instead of ~1e-13).
    return ops.einsum("ij,j->i", m, x)
