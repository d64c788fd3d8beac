"""Line searches for the closure optimizers (nonlinear CG, L-BFGS) — Goodfellow et al.
(2016), Sec. 8.6.2–8.6.3, after Nocedal & Wright (2006), *Numerical Optimization*, Ch. 3.

Both searches look along a descent direction d from θ₀ for a step α, on
φ(α) = J(θ₀ + αd), φ'(α) = ∇J(θ₀ + αd)ᵀd, with φ(0) = f₀ and φ'(0) = d₀ < 0:

* :func:`strong_wolfe` — bracketing then zoom (N&W Alg. 3.5 and 3.6), accepting α when

  - sufficient decrease (Armijo):  φ(α) ≤ f₀ + c₁ α d₀,
  - strong curvature:              |φ'(α)| ≤ c₂ |d₀|;

  trial steps in the zoom phase by the safeguarded cubic interpolation of N&W Eq. 3.59
  (bisection when it falls outside the middle 80% of the interval or is not finite).
* :func:`armijo` — backtracking (N&W Alg. 3.1) until sufficient decrease, each trial the
  minimizer of the quadratic through φ(0), φ'(0), φ(α) clipped to [0.1α, 0.5α].

Both are one ``keras.ops.while_loop`` over small tensors — no Python branch on a value —
so they run eagerly, inside ``tf.function`` and under ``jax.jit`` (how ``SecondOrder``
trains), and stop after at most ``max_evaluations`` evaluations of (φ, ∇J). A point
where J or ∇J is not finite counts as "too far" (φ = +∞). When no accepted step is
found within the budget, the best point found with sufficient decrease is returned
(``satisfied`` False); when there is none, α = 0 and θ stays where it was.

``evaluate(alpha)`` → ``(f, dphi, g)``: J, φ'(α) and the flat gradient at θ₀ + αd. Each
search returns ``(alpha, f, g, evaluations, satisfied)`` as tensors.
"""

from keras import ops


# Larger/smaller by a select: Keras 3.15's torch maximum, minimum and clip resolve a
# float64 pair to float32 (its dtypes.result_type), which would round every step.
def larger(a, b):
    return ops.where(a > b, a, b)


def smaller(a, b):
    return ops.where(a < b, a, b)


def _evaluated(evaluate, alpha):
    """(f, dphi, g, bad): a point with non-finite J or φ' reads f = +inf, dphi = 0."""
    f, dphi, g = evaluate(alpha)
    bad = ops.logical_not(ops.isfinite(f) & ops.isfinite(dphi))
    f = ops.where(bad, ops.full_like(f, float("inf")), f)
    dphi = ops.where(bad, ops.zeros_like(dphi), dphi)
    return f, dphi, g, bad


def _cubic_step(a_lo, f_lo, d_lo, a_hi, f_hi, d_hi):
    """The minimizer of the cubic through (a_lo, f_lo, d_lo) and (a_hi, f_hi, d_hi)
    (N&W Eq. 3.59), safeguarded: bisection outside the middle 80% of the interval."""
    one = ops.ones_like(a_lo)
    width = a_hi - a_lo
    same = ops.equal(width, 0.0)
    d1 = d_lo + d_hi - 3.0 * (f_lo - f_hi) / ops.where(same, one, a_lo - a_hi)
    radicand = d1 * d1 - d_lo * d_hi
    d2 = ops.sign(width) * ops.sqrt(larger(radicand, ops.zeros_like(radicand)))
    denominator = d_hi - d_lo + 2.0 * d2
    cubic = a_hi - width * (d_hi + d2 - d1) / ops.where(ops.equal(denominator, 0.0), one, denominator)
    low = smaller(a_lo, a_hi) + 0.1 * ops.abs(width)
    high = larger(a_lo, a_hi) - 0.1 * ops.abs(width)
    usable = ops.isfinite(cubic) & (radicand >= 0.0) & ops.not_equal(denominator, 0.0) & (cubic >= low) & (cubic <= high)
    return ops.where(usable & ops.logical_not(same), cubic, 0.5 * (a_lo + a_hi))


def strong_wolfe(evaluate, f0, d0, g0, alpha0, c1=1e-4, c2=0.9, max_evaluations=20, alpha_max=1e10):
    """A step satisfying the strong Wolfe conditions (N&W Alg. 3.5 + 3.6); see the module."""
    f0 = ops.convert_to_tensor(f0)
    zero = ops.zeros_like(f0)
    armijo_slope = c1 * d0
    curvature_bound = c2 * ops.abs(d0)
    false = ops.convert_to_tensor(False)
    # stage 0: bracketing (Alg. 3.5), 1: zoom (Alg. 3.6).
    start = (
        ops.convert_to_tensor(0, "int32"), ops.convert_to_tensor(0, "int32"),
        zero, f0, d0, ops.cast(alpha0, f0.dtype),          # previous point, next bracket trial
        zero, f0, d0, zero, f0, d0,                         # zoom interval: lo, hi
        zero, f0, g0, false, false,                         # kept point; done; satisfied
    )

    def cond(i, stage, *rest):
        return (i < max_evaluations) & ops.logical_not(rest[-2])

    def body(i, stage, a_prev, f_prev, d_prev, a_next, a_lo, f_lo, d_lo, a_hi, f_hi, d_hi, a_out, f_out, g_out, done, ok):
        zooming = ops.equal(stage, 1)
        alpha = ops.where(zooming, _cubic_step(a_lo, f_lo, d_lo, a_hi, f_hi, d_hi), a_next)
        f, dphi, g, bad = _evaluated(evaluate, alpha)
        decrease = f <= f0 + alpha * armijo_slope
        wolfe = decrease & (ops.abs(dphi) <= curvature_bound) & ops.logical_not(bad)
        # Bracketing: [prev, α] holds a Wolfe point when α fails the decrease (or is no
        # lower than prev), [α, prev] when φ'(α) ≥ 0; otherwise the trial step grows.
        over = ops.logical_not(decrease) | ((i > 0) & (f >= f_prev))
        uphill = ops.logical_not(over) & (dphi >= 0.0)
        # Zoom: α replaces hi when it fails the decrease or is no lower than lo; else it
        # becomes lo (and hi takes the old lo when φ' points the other way).
        z_hi = ops.logical_not(decrease) | (f >= f_lo)
        z_flip = ops.logical_not(z_hi) & (dphi * (a_hi - a_lo) >= 0.0)

        def pick(bracket_over, bracket_uphill, bracket_else, zoom_hi, zoom_flip, zoom_else):
            bracket = ops.where(over, bracket_over, ops.where(uphill, bracket_uphill, bracket_else))
            zoom = ops.where(z_hi, zoom_hi, ops.where(z_flip, zoom_flip, zoom_else))
            return ops.where(zooming, zoom, bracket)

        new_lo = [pick(p, x, lo, lo, x, x) for p, x, lo in ((a_prev, alpha, a_lo), (f_prev, f, f_lo), (d_prev, dphi, d_lo))]
        new_hi = [pick(x, p, hi, x, lo, hi) for x, p, lo, hi in
                  ((alpha, a_prev, a_lo, a_hi), (f, f_prev, f_lo, f_hi), (dphi, d_prev, d_lo, d_hi))]
        stage = ops.where(zooming | over | uphill, 1, 0)
        # The kept point: a Wolfe point, else the lowest point with sufficient decrease.
        better = wolfe | (decrease & ops.logical_not(bad) & (f < f_out))
        a_out, f_out = ops.where(better, alpha, a_out), ops.where(better, f, f_out)
        g_out = ops.where(better, g, g_out)
        # A zoom interval that has shrunk to rounding holds nothing new.
        collapsed = zooming & (ops.abs(new_hi[0] - new_lo[0]) <= 1e-12 * larger(ops.abs(new_lo[0]), ops.full_like(alpha, 1e-30)))
        return (
            i + 1, ops.cast(stage, "int32"), alpha, f, dphi, smaller(2.0 * alpha, ops.full_like(alpha, alpha_max)),
            *new_lo, *new_hi, a_out, f_out, g_out, wolfe | collapsed, ok | wolfe,
        )

    out = ops.while_loop(cond, body, start)
    return out[12], out[13], out[14], out[0], out[16]


def armijo(evaluate, f0, d0, g0, alpha0, c1=1e-4, max_evaluations=20):
    """Backtracking to sufficient decrease (N&W Alg. 3.1, quadratic interpolation)."""
    f0 = ops.convert_to_tensor(f0)
    start = (ops.convert_to_tensor(0, "int32"), ops.cast(alpha0, f0.dtype), ops.zeros_like(f0), f0, g0,
             ops.convert_to_tensor(False))

    def cond(i, alpha, a_out, f_out, g_out, done):
        return (i < max_evaluations) & ops.logical_not(done)

    def body(i, alpha, a_out, f_out, g_out, done):
        f, _, g, bad = _evaluated(evaluate, alpha)
        decrease = (f <= f0 + c1 * alpha * d0) & ops.logical_not(bad)
        a_out, f_out = ops.where(decrease, alpha, a_out), ops.where(decrease, f, f_out)
        g_out = ops.where(decrease, g, g_out)
        # Minimizer of q(a) = f0 + d0 a + c a² with q(alpha) = f: a* = −d0 α² / (2(f − f0 − d0 α)).
        excess = f - f0 - d0 * alpha
        quadratic = -d0 * alpha * alpha / (2.0 * ops.where(excess > 0.0, excess, ops.ones_like(excess)))
        quadratic = ops.where(ops.isfinite(quadratic) & (excess > 0.0), quadratic, 0.5 * alpha)
        shrunk = smaller(larger(quadratic, 0.1 * alpha), 0.5 * alpha)
        return i + 1, shrunk, a_out, f_out, g_out, decrease

    out = ops.while_loop(cond, body, start)
    return out[2], out[3], out[4], out[0], out[5]
