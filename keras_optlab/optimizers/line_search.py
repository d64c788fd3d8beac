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

Both are written once against the namespace ``xp`` of
:mod:`keras_optlab.optimizers.arrays`: with ``arrays.TRACED`` a search is one
``keras.ops.while_loop`` of selects — no Python branch on a value — that ``tf.function``
and ``jax.jit`` trace; with ``arrays.HOST_TORCH`` the same lines run as a Python loop over
host scalars (PyTorch, eagerly). Each stops after at most ``max_evaluations``
evaluations of (φ, ∇J). A point
where J or ∇J is not finite counts as "too far" (φ = +∞). When no accepted step is
found within the budget, the best point found with sufficient decrease is returned
(``satisfied`` False); when there is none, α = 0 and θ stays where it was.

``evaluate(alpha)`` → ``(f, dphi, g)``: J, φ'(α) (scalars of ``xp``) and the flat
gradient at θ₀ + αd. Each search returns ``(alpha, f, g, evaluations, satisfied)``.
"""


def _evaluated(xp, evaluate, alpha):
    """(f, dphi, g, bad): a point with non-finite J or φ' reads f = +inf, dphi = 0."""
    f, dphi, g = evaluate(alpha)
    bad = xp.lnot(xp.land(xp.isfinite(f), xp.isfinite(dphi)))
    f = xp.where(bad, xp.scalar(float("inf"), f), f)
    dphi = xp.where(bad, xp.scalar(0.0, dphi), dphi)
    return f, dphi, g, bad


def _cubic_step(xp, a_lo, f_lo, d_lo, a_hi, f_hi, d_hi):
    """The minimizer of the cubic through (a_lo, f_lo, d_lo) and (a_hi, f_hi, d_hi)
    (N&W Eq. 3.59), safeguarded: bisection outside the middle 80% of the interval."""
    one = xp.scalar(1.0, a_lo)
    width = a_hi - a_lo
    same = width == 0.0
    d1 = d_lo + d_hi - 3.0 * (f_lo - f_hi) / xp.where(same, one, a_lo - a_hi)
    radicand = d1 * d1 - d_lo * d_hi
    d2 = xp.sign(width) * xp.sqrt(xp.larger(radicand, xp.scalar(0.0, radicand)))
    denominator = d_hi - d_lo + 2.0 * d2
    flat = denominator == 0.0
    cubic = a_hi - width * (d_hi + d2 - d1) / xp.where(flat, one, denominator)
    low = xp.smaller(a_lo, a_hi) + 0.1 * xp.abs(width)
    high = xp.larger(a_lo, a_hi) - 0.1 * xp.abs(width)
    usable = xp.land(xp.land(xp.isfinite(cubic), radicand >= 0.0), xp.land(xp.lnot(flat), cubic >= low))
    usable = xp.land(xp.land(usable, cubic <= high), xp.lnot(same))
    return xp.where(usable, cubic, 0.5 * (a_lo + a_hi))


def strong_wolfe(xp, evaluate, f0, d0, g0, alpha0, c1=1e-4, c2=0.9, max_evaluations=20, alpha_max=1e10):
    """A step satisfying the strong Wolfe conditions (N&W Alg. 3.5 + 3.6); see the module."""
    zero = xp.scalar(0.0, f0)
    armijo_slope = c1 * d0
    curvature_bound = c2 * xp.abs(d0)
    false = xp.lnot(True)
    # stage 0: bracketing (Alg. 3.5), 1: zoom (Alg. 3.6).
    start = (
        xp.integer(0), xp.integer(0),
        zero, f0, d0, xp.scalar(alpha0, f0),               # previous point, next bracket trial
        zero, f0, d0, zero, f0, d0,                         # zoom interval: lo, hi
        zero, f0, g0, false, false,                         # kept point; done; satisfied
    )

    def cond(i, stage, *rest):
        return xp.land(i < max_evaluations, xp.lnot(rest[-2]))

    def body(i, stage, a_prev, f_prev, d_prev, a_next, a_lo, f_lo, d_lo, a_hi, f_hi, d_hi, a_out, f_out, g_out, done, ok):
        zooming = stage == 1
        alpha = xp.where(zooming, _cubic_step(xp, a_lo, f_lo, d_lo, a_hi, f_hi, d_hi), a_next)
        f, dphi, g, bad = _evaluated(xp, evaluate, alpha)
        decrease = f <= f0 + alpha * armijo_slope
        wolfe = xp.land(xp.land(decrease, xp.abs(dphi) <= curvature_bound), xp.lnot(bad))
        # Bracketing: [prev, α] holds a Wolfe point when α fails the decrease (or is no
        # lower than prev), [α, prev] when φ'(α) ≥ 0; otherwise the trial step grows.
        over = xp.lor(xp.lnot(decrease), xp.land(i > 0, f >= f_prev))
        uphill = xp.land(xp.lnot(over), dphi >= 0.0)
        # Zoom: α replaces hi when it fails the decrease or is no lower than lo; else it
        # becomes lo (and hi takes the old lo when φ' points the other way).
        z_hi = xp.lor(xp.lnot(decrease), f >= f_lo)
        z_flip = xp.land(xp.lnot(z_hi), dphi * (a_hi - a_lo) >= 0.0)

        def pick(bracket_over, bracket_uphill, bracket_else, zoom_hi, zoom_flip, zoom_else):
            bracket = xp.where(over, bracket_over, xp.where(uphill, bracket_uphill, bracket_else))
            zoom = xp.where(z_hi, zoom_hi, xp.where(z_flip, zoom_flip, zoom_else))
            return xp.where(zooming, zoom, bracket)

        new_lo = [pick(p, x, lo, lo, x, x) for p, x, lo in ((a_prev, alpha, a_lo), (f_prev, f, f_lo), (d_prev, dphi, d_lo))]
        new_hi = [pick(x, p, hi, x, lo, hi) for x, p, lo, hi in
                  ((alpha, a_prev, a_lo, a_hi), (f, f_prev, f_lo, f_hi), (dphi, d_prev, d_lo, d_hi))]
        stage = xp.where(xp.lor(zooming, xp.lor(over, uphill)), xp.integer(1), xp.integer(0))
        # The kept point: a Wolfe point, else the lowest point with sufficient decrease.
        better = xp.lor(wolfe, xp.land(xp.land(decrease, xp.lnot(bad)), f < f_out))
        a_out, f_out, g_out = xp.where(better, alpha, a_out), xp.where(better, f, f_out), xp.where(better, g, g_out)
        # A zoom interval that has shrunk to rounding holds nothing new.
        width = xp.abs(new_hi[0] - new_lo[0])
        collapsed = xp.land(zooming, width <= 1e-12 * xp.larger(xp.abs(new_lo[0]), xp.scalar(1e-30, alpha)))
        return (
            i + 1, stage, alpha, f, dphi, xp.smaller(2.0 * alpha, xp.scalar(alpha_max, alpha)),
            *new_lo, *new_hi, a_out, f_out, g_out, xp.lor(wolfe, collapsed), xp.lor(ok, wolfe),
        )

    out = xp.while_loop(cond, body, start)
    return out[12], out[13], out[14], out[0], out[16]


def armijo(xp, evaluate, f0, d0, g0, alpha0, c1=1e-4, max_evaluations=20):
    """Backtracking to sufficient decrease (N&W Alg. 3.1, quadratic interpolation)."""
    start = (xp.integer(0), xp.scalar(alpha0, f0), xp.scalar(0.0, f0), f0, g0, xp.lnot(True))

    def cond(i, alpha, a_out, f_out, g_out, done):
        return xp.land(i < max_evaluations, xp.lnot(done))

    def body(i, alpha, a_out, f_out, g_out, done):
        f, _, g, bad = _evaluated(xp, evaluate, alpha)
        decrease = xp.land(f <= f0 + c1 * alpha * d0, xp.lnot(bad))
        a_out, f_out, g_out = xp.where(decrease, alpha, a_out), xp.where(decrease, f, f_out), xp.where(decrease, g, g_out)
        # Minimizer of q(a) = f0 + d0 a + c a² with q(alpha) = f: a* = −d0 α² / (2(f − f0 − d0 α)).
        excess = f - f0 - d0 * alpha
        curved = excess > 0.0
        quadratic = -d0 * alpha * alpha / (2.0 * xp.where(curved, excess, xp.scalar(1.0, excess)))
        quadratic = xp.where(xp.land(xp.isfinite(quadratic), curved), quadratic, 0.5 * alpha)
        shrunk = xp.smaller(xp.larger(quadratic, 0.1 * alpha), 0.5 * alpha)
        return i + 1, shrunk, a_out, f_out, g_out, decrease

    out = xp.while_loop(cond, body, start)
    return out[2], out[3], out[4], out[0], out[5]
