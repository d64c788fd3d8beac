"""Coordinate descent (Goodfellow et al. 2016, Sec. 8.7.2).

Coordinate descent minimizes f(x) with respect to one variable x_i at a time, the others
held fixed; a *sweep* visits every coordinate once. It shines when each one-variable
problem is solved exactly and cheaply. The book's example is sparse coding,

    J(H) = ‖X − WH‖²_F + λ Σ_{i,j} |H_ij|        (W fixed: the lasso, one code per column)

whose coordinate problem has a closed form, soft-thresholding:
r = X − WH + w_i H_i (the residual without atom i),
H_i ← S(w_iᵀ r, λ/2) / ‖w_i‖² with S(z, t) = sign(z)·max(|z| − t, 0). Keeping the residual
R = X − WH up to date makes a sweep cost 2·k·m·N multiply-adds (k atoms, m dimensions,
N signals) — as much as one gradient of the smooth part. The competitor is proximal
gradient descent (ISTA, Daubechies et al. 2004; Beck & Teboulle 2009) at its best
constant step 1/L, L = 2‖W‖₂² the Lipschitz constant of ∇‖X − WH‖²:
H ← S(H + (2/L)Wᵀ(X − WH), λ/L). One sweep and one ISTA step cost the same, so the
script counts both in iterations and in wall time until J − J* ≤ ``TOLERANCE``·|J*|.
J* is an independent reference: scikit-learn's ``Lasso`` (its objective is
(1/2m)‖x − Wh‖² + α‖h‖₁, so α = λ/(2m), no intercept); the script prints how far each
method's converged objective is from it.

The book's caveat: coordinate descent is slow when variables interact strongly, e.g.
f(x) = (x₁ − x₂)² + α(x₁² + x₂²) with small α. Minimizing over x₁ gives x₁ = x₂/(1 + α),
over x₂ gives x₂ = x₁/(1 + α): a sweep shrinks x by (1 + α)⁻², so the sweeps needed grow
like 1/α, while in the rotated variables u = x₁ − x₂, v = x₁ + x₂ (no interaction) one
sweep solves it exactly. The script counts sweeps to ‖x‖ ≤ 1e-6·‖x₀‖ against α, with
plain gradient descent at its best constant step 2/(λ_min + λ_max) for comparison
(contraction (κ − 1)/(κ + 1), κ = (2 + α)/α: conditioning hurts it too).

NumPy float64 throughout: this is about the algorithm, not Keras.

    python examples/coordinate_descent.py           # a few seconds
    python examples/coordinate_descent.py --quick   # a smaller problem (smoke run)

Writes coordinate_descent.png to $OPTLAB_OUT (or runs/): the objective gap of both
methods per iteration and per second, and the caveat's zig-zag.

References: Goodfellow, Bengio & Courville (2016), Sec. 8.7.2; Friedman, Hastie, Höfling
& Tibshirani (2007), "Pathwise coordinate optimization", Ann. Appl. Stat.; Beck & Teboulle
(2009), "A fast iterative shrinkage-thresholding algorithm", SIAM J. Imaging Sci.
"""

import argparse
import math
import os
import time

import numpy as np

from keras_optlab import _checks
from keras_optlab.lab._optional import require
from keras_optlab.lab.plots import new_figure, output_dir, save

TOLERANCE = 1e-6  # relative objective gap the race runs to
REFERENCE_TOLERANCE = 1e-8  # the converged objectives must match the reference this closely (relative)
DEFAULT = {"dim": 64, "atoms": 128, "signals": 64, "active": 5, "lam": 0.5, "max_iterations": 20000}
QUICK = {"dim": 32, "atoms": 64, "signals": 16, "active": 3, "lam": 0.5, "max_iterations": 20000}
ALPHAS = (1.0, 0.1, 0.01, 0.001)


def soft_threshold(z, t):
    """S(z, t) = sign(z)·max(|z| − t, 0), elementwise."""
    return np.sign(z) * np.maximum(np.abs(z) - t, 0.0)


def objective(x, w, h, lam):
    """J(H) = ‖X − WH‖²_F + λ‖H‖₁."""
    r = x - w @ h
    return float(np.sum(r * r) + lam * np.sum(np.abs(h)))


def problem(dim=64, atoms=128, signals=64, active=5, noise=0.05, seed=0):
    """A sparse-coding problem: W (dim × atoms) with unit-norm Gaussian columns, codes
    with ``active`` non-zeros per column, X = W H_true + noise. Returns (X, W, H_true)."""
    dim, atoms, signals = (_checks.integer(n, v, low=1) for n, v in
                           (("dim", dim), ("atoms", atoms), ("signals", signals)))
    active = _checks.integer("active", active, low=1, high=atoms)
    rng = np.random.default_rng(_checks.integer("seed", seed))
    w = rng.standard_normal((dim, atoms))
    w /= np.linalg.norm(w, axis=0)
    h = np.zeros((atoms, signals))
    for j in range(signals):
        idx = rng.choice(atoms, active, replace=False)
        h[idx, j] = rng.choice([-1.0, 1.0], active) * rng.uniform(1.0, 2.0, active)
    x = w @ h + _checks.number("noise", noise, low=0.0) * rng.standard_normal((dim, signals))
    return x, w, h


def coordinate_descent(x, w, lam, iterations, h=None, callback=None):
    """Cyclic coordinate descent on J, all N codes at once (one row of H per coordinate
    step): ``iterations`` sweeps, the residual R = X − WH kept current. ``callback(k, H)``
    after every sweep may return True to stop. Returns H."""
    h = np.zeros((w.shape[1], x.shape[1])) if h is None else h.copy()
    r = x - w @ h
    norms = np.sum(w * w, axis=0)
    for k in range(iterations):
        for i in range(w.shape[1]):
            wi = w[:, i]
            old = h[i]
            new = soft_threshold(wi @ r + norms[i] * old, lam / 2) / norms[i]
            r -= np.outer(wi, new - old)
            h[i] = new
        if callback is not None and callback(k + 1, h):
            break
    return h


def ista(x, w, lam, iterations, h=None, callback=None):
    """Proximal gradient descent (ISTA) at the step 1/L, L = 2‖W‖₂²: ``iterations`` steps
    H ← S(H + (2/L)Wᵀ(X − WH), λ/L); ``callback`` as for :func:`coordinate_descent`."""
    h = np.zeros((w.shape[1], x.shape[1])) if h is None else h.copy()
    lipschitz = 2.0 * np.linalg.norm(w, 2) ** 2
    for k in range(iterations):
        h = soft_threshold(h + (2.0 / lipschitz) * (w.T @ (x - w @ h)), lam / lipschitz)
        if callback is not None and callback(k + 1, h):
            break
    return h


def reference(x, w, lam):
    """H* and J* by scikit-learn's ``Lasso`` (a compiled coordinate descent of its own,
    α = λ/(2m) for its (1/2m)‖x − Wh‖² + α‖h‖₁, no intercept, tol 1e-14): independent
    of this file's code."""
    linear_model = require("sklearn.linear_model", "examples/coordinate_descent.py")
    lasso = linear_model.Lasso(alpha=lam / (2 * x.shape[0]), fit_intercept=False, tol=1e-14, max_iter=100_000)
    lasso.fit(w, x)
    h = np.array(lasso.coef_.T).reshape(w.shape[1], x.shape[1])
    return h, objective(x, w, h, lam)


def race(method, x, w, lam, target, max_iterations):
    """Run ``method`` until J ≤ ``target`` (or ``max_iterations``): the gap history, the
    iterations and seconds to the target (``None`` if not reached)."""
    values, reached = [], {}
    start = time.perf_counter()
    elapsed = 0.0

    def callback(k, h):
        nonlocal elapsed
        elapsed += time.perf_counter() - callback.t  # time the method itself, not J's evaluation
        value = objective(x, w, h, lam)
        values.append((k, elapsed, value))
        callback.t = time.perf_counter()
        if value <= target:
            reached.update(iterations=k, seconds=elapsed)
            return True
        return False

    callback.t = start
    h = method(x, w, lam, max_iterations, callback=callback)
    return {"history": values, "iterations": reached.get("iterations"), "seconds": reached.get("seconds"), "h": h}


def coupled_sweeps(alpha, x0=(1.0, 0.5), tol=1e-6, max_sweeps=100_000, rotated=False):
    """Exact coordinate descent on f = (x₁ − x₂)² + α(x₁² + x₂²) from ``x0``, or with
    ``rotated`` on the same f in u = x₁ − x₂, v = x₁ + x₂, where it reads
    u² + ½α(u² + v²): separable, each coordinate's minimizer is 0. Returns the sweeps
    until ‖x‖ ≤ tol·‖x₀‖ (``None`` if not within ``max_sweeps``) and the path, one point
    per coordinate step."""
    alpha = _checks.positive("alpha", alpha)
    x = np.asarray(x0, dtype=np.float64)
    if rotated:
        x = np.array([x[0] - x[1], x[0] + x[1]])
    norm0, path = np.linalg.norm(x), [x.copy()]
    for sweep in range(1, max_sweeps + 1):
        if rotated:
            x[0] = 0.0
            path.append(x.copy())
            x[1] = 0.0
        else:
            x[0] = x[1] / (1.0 + alpha)  # ∂f/∂x₁ = 2(x₁ − x₂) + 2αx₁ = 0
            path.append(x.copy())
            x[1] = x[0] / (1.0 + alpha)
        path.append(x.copy())
        if np.linalg.norm(x) <= tol * norm0:
            return sweep, np.array(path)
    return None, np.array(path)


def gradient_descent_steps(alpha, x0=(1.0, 0.5), tol=1e-6, max_steps=1_000_000):
    """Steps of gradient descent at its best constant step ε = 2/(λ_min + λ_max) on the
    same f until ‖x‖ ≤ tol·‖x₀‖ (H = [[2 + 2α, −2], [−2, 2 + 2α]], eigenvalues 2α and
    4 + 2α: ε = 1/(1 + α), contraction (κ − 1)/(κ + 1) per step, κ = (2 + α)/α)."""
    alpha = _checks.positive("alpha", alpha)
    hessian = np.array([[2 + 2 * alpha, -2.0], [-2.0, 2 + 2 * alpha]])
    step = 2.0 / (2 * alpha + 4 + 2 * alpha)
    x = np.asarray(x0, dtype=np.float64)
    norm0 = np.linalg.norm(x)
    for k in range(1, max_steps + 1):
        x = x - step * (hessian @ x)
        if np.linalg.norm(x) <= tol * norm0:
            return k
    return None


def run(config, verbose=True):
    x, w, _ = problem(config["dim"], config["atoms"], config["signals"], config["active"])
    lam = config["lam"]
    h_star, j_star = reference(x, w, lam)
    target = j_star + TOLERANCE * abs(j_star)
    results = {"config": dict(config), "j_star": j_star,
               "sparsity": float(np.mean(h_star != 0))}
    for name, method in (("cd", coordinate_descent), ("ista", ista)):
        results[name] = race(method, x, w, lam, target, config["max_iterations"])
    # converged objectives, each method run on from its race endpoint
    results["cd_converged"] = objective(x, w, coordinate_descent(x, w, lam, 200, results["cd"]["h"]), lam)
    results["ista_converged"] = objective(x, w, ista(x, w, lam, 20000, results["ista"]["h"]), lam)
    results["coupled"] = [(a, coupled_sweeps(a)[0], coupled_sweeps(a, rotated=True)[0], gradient_descent_steps(a))
                          for a in ALPHAS]
    if verbose:
        report(results)
    return results


def report(r):
    cfg = r["config"]
    print(f"sparse coding J(H) = ‖X − WH‖² + λ‖H‖₁: W {cfg['dim']}×{cfg['atoms']} (unit columns), "
          f"{cfg['signals']} signals with {cfg['active']} active atoms, λ = {cfg['lam']:g}; NumPy float64")
    print(f"reference J* = {r['j_star']:.12f} (scikit-learn Lasso, α = λ/(2m), tol 1e-14); "
          f"{r['sparsity']:.1%} of H* non-zero")
    print(f"to J − J* ≤ {TOLERANCE:g}·|J*| (one sweep costs one gradient step):")
    for name, label in (("cd", "coordinate descent"), ("ista", "ISTA, step 1/L")):
        m = r[name]
        unit = "sweeps" if name == "cd" else "steps"
        if m["iterations"] is None:
            print(f"  {label:20s}: not reached in {cfg['max_iterations']} {unit}")
        else:
            print(f"  {label:20s}: {m['iterations']:6d} {unit}, {m['seconds'] * 1e3:8.1f} ms "
                  f"({m['seconds'] / m['iterations'] * 1e3:.3f} ms per iteration)")
    cd, ist = r["cd"], r["ista"]
    if cd["iterations"] and ist["iterations"]:
        print(f"  ISTA/CD: {ist['iterations'] / cd['iterations']:.1f}× the iterations, "
              f"{ist['seconds'] / cd['seconds']:.2f}× the wall time")
    for name in ("cd", "ista"):
        gap = abs(r[f"{name}_converged"] - r["j_star"]) / abs(r["j_star"])
        print(f"  {name} run on to convergence: J = {r[f'{name}_converged']:.12f}, |J − J*|/|J*| = {gap:.1e} "
              f"({'matches' if gap <= REFERENCE_TOLERANCE else 'DOES NOT match'} the reference to "
              f"{REFERENCE_TOLERANCE:g})")
    print("caveat: f(x) = (x₁ − x₂)² + α(x₁² + x₂²) from (1, 0.5), to ‖x‖ ≤ 1e-6·‖x₀‖ "
          "(predicted: ⌈ln 1e-6 / ln (1 + α)⁻²⌉, a sweep shrinks x by (1 + α)⁻²)")
    print(f"  {'α':>7} {'CD sweeps':>10} {'predicted':>15} {'CD, rotated u,v':>16} {'GD steps (best ε)':>18}")
    for alpha, sweeps, rotated, gd in r["coupled"]:
        predicted = math.ceil(math.log(1e-6) / (-2 * math.log1p(alpha)))
        print(f"  {alpha:7g} {sweeps:10d} {predicted:15d} {rotated:16d} {gd:18d}")


def plot(r, path):
    fig = new_figure("examples/coordinate_descent.py", figsize=(15, 4.6))
    fig.suptitle("Sec. 8.7.2: coordinate descent on sparse coding (left, middle) and on coupled variables (right)")
    ax = fig.subplots(1, 3)
    j_star = r["j_star"]
    for name, label, color in (("cd", "coordinate descent (per sweep)", "C3"), ("ista", "ISTA, step 1/L", "C0")):
        k, t, v = (np.array(c) for c in zip(*r[name]["history"]))
        gap = np.maximum((v - j_star) / abs(j_star), 1e-16)
        ax[0].plot(k, gap, color=color, label=label)
        ax[1].plot(t * 1e3, gap, color=color, label=label)
    for a in ax[:2]:
        a.axhline(TOLERANCE, color="k", ls=":", lw=0.8, label=f"target {TOLERANCE:g}")
        a.set(yscale="log", ylabel="(J − J*)/|J*|")
        a.legend(fontsize=8)
    ax[0].set(xscale="log", xlabel="iteration (sweep or gradient step, equal cost)", title="per iteration")
    ax[1].set(xlabel="wall time (ms; NumPy, CD's loop over coordinates in Python)", title="per second")
    alpha = 0.05
    _, zig = coupled_sweeps(alpha, max_sweeps=40)
    g = np.linspace(-0.2, 1.1, 200)
    gx, gy = np.meshgrid(g, g)
    f = (gx - gy) ** 2 + alpha * (gx**2 + gy**2)
    ax[2].contour(gx, gy, f, levels=np.geomspace(1e-3, 1.5, 14), colors="grey", linewidths=0.6)
    ax[2].plot(*zig.T, ".-", color="C3", ms=3, lw=1, label="coordinate descent, 40 sweeps")
    ax[2].plot(0, 0, "*", color="gold", ms=14, markeredgecolor="k", label="minimizer")
    ax[2].plot(1.0, 0.5, "o", color="white", markeredgecolor="k", label="start")
    ax[2].set(xlabel="x₁", ylabel="x₂", aspect="equal",
              title=f"f = (x₁ − x₂)² + α(x₁² + x₂²), α = {alpha:g}:\ncoordinate descent zig-zags along the valley")
    ax[2].legend(fontsize=8, loc="upper left")
    save(fig, path, dpi=90)
    print(f"wrote {os.path.normpath(path)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Sec. 8.7.2: coordinate descent")
    parser.add_argument("--quick", action="store_true", help="a smaller problem (smoke run)")
    args = parser.parse_args(argv)
    out = output_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runs"))
    t0 = time.perf_counter()
    results = run(QUICK if args.quick else DEFAULT)
    plot(results, os.path.join(out, "coordinate_descent.png"))
    print(f"{time.perf_counter() - t0:.1f} s")
    return results


if __name__ == "__main__":
    main()
