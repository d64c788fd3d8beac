"""Continuation by Gaussian blurring (Goodfellow et al. 2016, Sec. 8.7.6).

Continuation methods build a series of cost functions {J⁽⁰⁾, …, J⁽ⁿ⁾}, the last one the
true cost J, the first ones easier, and minimize them in turn, each solution the start of
the next. The book's example blurs the cost, J⁽ⁱ⁾(θ) = E_{θ′∼N(θ, σᵢ²I)} J(θ′) with
σ₀ > σ₁ > … > σₙ = 0: blurring washes out small, narrow local minima, so a path that
starts in one of their basins is led toward a wide, deep one first, and the later, less
blurred problems only refine it.

The surface is :func:`keras_optlab.lab.surfaces.gaussian_wells`: a bowl with a deep broad
well (the global minimum) and a shallow narrow well beside the start. Its blur has a
closed form (a Gaussian convolved with a Gaussian is a Gaussian), so every J⁽ⁱ⁾ and its
gradient are exact — the script checks one value against a Monte Carlo estimate of the
expectation (fixed seed). Gradients are taken on the active Keras backend
(``surfaces.value_and_gradient``).

* plain gradient descent θ ← θ − ε∇J(θ) for ``len(SIGMAS) × STEPS`` steps from the start;
* continuation: ``STEPS`` steps of the same gradient descent on each J⁽ⁱ⁾, σᵢ in
  ``SIGMAS`` (the last 0: J itself), each level warm-started where the previous ended.

Both use the same step ε and the same number of gradient evaluations. The script prints
both endpoints, their losses, and which minimizer of J each ended at (within
``BASIN_TOLERANCE``; both runs end on σ = 0, at a stationary point of J).

    python examples/continuation.py           # a few seconds
    python examples/continuation.py --quick   # fewer steps (smoke run)

Writes continuation.png to $OPTLAB_OUT (or runs/): J with both paths, each blurred
surface with the part of the continuation path run on it, and the loss J along both runs.

References: Goodfellow, Bengio & Courville (2016), Sec. 8.7.6; Mobahi & Fisher (2015),
"On the link between Gaussian homotopy continuation and convex envelopes", EMMCVPR.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_optlab import _checks  # noqa: E402
from keras_optlab.lab import surfaces  # noqa: E402
from keras_optlab.lab.plots import draw_surface, new_figure, output_dir, save  # noqa: E402

SIGMAS = (2.0, 1.2, 0.6, 0.3, 0.0)
LEARNING_RATE = 0.1  # below 2/λ_max of the narrow well (A/s² ≈ 8.2 there): stable everywhere
STEPS = 150  # per level (quick: 40)
MONTE_CARLO = 200_000  # samples of the expectation check
BASIN_TOLERANCE = 1e-3  # a point is "at" a minimizer within this distance


def descend(surface, start, learning_rate, steps):
    """Gradient descent on ``surface`` (Alg. 8.1 with the exact gradient): the path,
    ``steps + 1`` points, as a float64 array."""
    learning_rate = _checks.positive("learning_rate", learning_rate)
    steps = _checks.integer("steps", steps, low=1)
    theta = np.asarray(start, dtype=np.float64)
    path = [theta]
    for _ in range(steps):
        theta = theta - learning_rate * surface.gradient(theta)
        path.append(theta)
    return np.array(path)


def continuation(start, sigmas=SIGMAS, learning_rate=LEARNING_RATE, steps=STEPS):
    """Descend each blurred surface ``gaussian_wells(blur=σ)`` in turn, σ in ``sigmas``,
    each from where the previous stopped. Returns a list of ``(σ, surface, path)``."""
    levels, theta = [], np.asarray(start, dtype=np.float64)
    for sigma in sigmas:
        surface = surfaces.gaussian_wells(blur=sigma)
        path = descend(surface, theta, learning_rate, steps)
        levels.append((sigma, surface, path))
        theta = path[-1]
    return levels


def monte_carlo_blur(surface, theta, sigma, samples=MONTE_CARLO, seed=0):
    """E_{θ′∼N(θ, σ²I)} J(θ′) by Monte Carlo (NumPy ``default_rng(seed)``): mean and
    standard error."""
    points = np.asarray(theta, np.float64) + sigma * np.random.default_rng(seed).standard_normal((samples, 2))
    values = values_along(surface, points)
    return float(values.mean()), float(values.std() / np.sqrt(samples))


def at_minimum(theta, minima):
    """Index into ``minima`` of the minimizer within ``BASIN_TOLERANCE`` of ``theta``, or
    ``None`` (the runs end at a stationary point of J: the last level is σ = 0)."""
    for i, m in enumerate(minima):
        if np.linalg.norm(np.asarray(theta) - np.asarray(m)) < BASIN_TOLERANCE:
            return i
    return None


def values_along(surface, path):
    """J at every point of ``path`` (one batched evaluation)."""
    return np.asarray(ops.convert_to_numpy(keras.ops.vectorized_map(surface.function, ops.convert_to_tensor(path))))


def run(steps=STEPS, verbose=True):
    """Both methods from the surface's default start; returns a dict of the results."""
    target = surfaces.gaussian_wells()
    minima = surfaces.gaussian_wells_minima()  # [global, local] of J, lowest first
    t0 = time.perf_counter()
    plain = descend(target, target.start, LEARNING_RATE, steps * len(SIGMAS))
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    levels = continuation(target.start, SIGMAS, LEARNING_RATE, steps)
    t_cont = time.perf_counter() - t0
    mc_sigma = SIGMAS[0]
    mc, mc_error = monte_carlo_blur(target, target.start, mc_sigma)
    result = {
        "start": target.start,
        "minima": minima,
        "plain": plain,
        "levels": levels,
        "plain_end": plain[-1],
        "continuation_end": levels[-1][2][-1],
        "plain_loss": target.value(plain[-1]),
        "continuation_loss": target.value(levels[-1][2][-1]),
        "plain_basin": at_minimum(plain[-1], minima),
        "continuation_basin": at_minimum(levels[-1][2][-1], minima),
        "monte_carlo": (mc_sigma, mc, mc_error, surfaces.gaussian_wells(blur=mc_sigma).value(target.start)),
        "seconds": (t_plain, t_cont),
        "steps": steps,
    }
    if verbose:
        report(result)
    return result


def report(r):
    names = {0: "at the GLOBAL minimum", 1: "at the local minimum", None: "at no minimizer of J"}
    g, loc = r["minima"][:2]
    target = surfaces.gaussian_wells()
    print(f"J = two Gaussian wells in a bowl (keras_optlab.lab.surfaces.gaussian_wells), backend "
          f"{keras.backend.backend()}")
    print(f"minima of J: global ({g[0]:.6f}, {g[1]:.6f}) J = {target.value(g):.6f}; "
          f"local ({loc[0]:.6f}, {loc[1]:.6f}) J = {target.value(loc):.6f}")
    sigma, mc, err, exact = r["monte_carlo"]
    print(f"blur check at the start, σ = {sigma:g}: closed form {exact:.6f}, Monte Carlo ({MONTE_CARLO} samples, "
          f"seed 0) {mc:.6f} ± {err:.6f} (difference {abs(mc - exact) / err:.2f} standard errors)")
    total = r["steps"] * len(SIGMAS)
    print(f"start ({r['start'][0]:g}, {r['start'][1]:g}), ε = {LEARNING_RATE:g}, {total} gradient steps each")
    for sigma, surface, path in r["levels"]:
        print(f"  continuation level σ = {sigma:<4g}: end ({path[-1][0]: .6f}, {path[-1][1]: .6f}), "
              f"J_σ = {surface.value(path[-1]): .6f}, minimizer of J_σ ({surface.minimizer[0]: .6f}, "
              f"{surface.minimizer[1]: .6f}), "
              f"{len(surfaces.gaussian_wells_minima(blur=sigma))} minimum/minima reached from the well centres")
    for name, key in (("plain gradient descent", "plain"), ("continuation", "continuation")):
        end = r[f"{key}_end"]
        print(f"{name:22s}: end ({end[0]: .6f}, {end[1]: .6f}), J = {r[f'{key}_loss']: .6f}, "
              f"{names[r[f'{key}_basin']]}")
    path = np.concatenate([r["levels"][0][2]] + [p[1:] for _, _, p in r["levels"][1:]])
    along = values_along(target, path)
    rises = np.flatnonzero(np.diff(along) > 0)
    if rises.size:  # J first stops falling at step rises[0]; the highest J after that
        dip = int(rises[0])
        peak = dip + int(np.argmax(along[dip:]))
        print(f"J (unblurred) along the continuation path: {along[0]:.6f} at the start, falls to {along[dip]:.6f} "
              f"(step {dip}), rises to {along[peak]:.6f} (step {peak}), ends at {along[-1]:.6f}")
    print(f"time: plain {r['seconds'][0]:.2f} s, continuation {r['seconds'][1]:.2f} s")


def plot(r, path):
    """J with both paths; each blurred surface with its part of the path; J along both."""
    target = surfaces.gaussian_wells()
    fig = new_figure("examples/continuation.py", figsize=(15, 9.5))
    fig.suptitle("Sec. 8.7.6: continuation by Gaussian blurring, J⁽ⁱ⁾(θ) = E_{θ′∼N(θ, σᵢ²I)} J(θ′) (closed form)")
    axes = fig.subplots(2, 3).ravel()
    local = r["minima"][1]
    draw_surface(axes[0], target, points=120, levels=30)
    axes[0].plot(*r["plain"].T, "-", color="C0", lw=2, label=f"plain GD → J = {r['plain_loss']:.3f}")
    # The levels' paths joined (each after the first starts where the previous ended).
    full = np.concatenate([r["levels"][0][2]] + [p[1:] for _, _, p in r["levels"][1:]])
    axes[0].plot(*full.T, "-", color="C3", lw=2, label=f"continuation → J = {r['continuation_loss']:.3f}")
    axes[0].plot(*local, "v", color="C0", ms=10, markeredgecolor="k", linestyle="none", label="local minimum")
    axes[0].set_title("J (σ = 0): both paths")
    axes[0].legend(fontsize=8, loc="lower right")
    for ax, (sigma, surface, p) in zip(axes[1:5], [lv for lv in r["levels"] if lv[0] > 0]):
        draw_surface(ax, surface, points=120, levels=30)
        ax.plot(*p.T, "-", color="C3", lw=2)
        ax.plot(*p[-1], "o", color="C3", markeredgecolor="k")
        ax.set_title(f"J⁽ⁱ⁾ with σ = {sigma:g} and the path run on it")
    steps = np.arange(len(r["plain"]))
    axes[5].plot(steps, values_along(target, r["plain"]), color="C0", label="plain gradient descent")
    axes[5].plot(steps, values_along(target, full), color="C3", label="continuation")
    for k in range(1, len(SIGMAS)):
        axes[5].axvline(k * r["steps"], color="k", lw=0.5, ls=":")
    axes[5].axhline(target.value(r["minima"][0]), color="gold", label="global minimum")
    axes[5].axhline(target.value(local), color="C0", ls="--", lw=0.8, label="local minimum")
    axes[5].set(xlabel="gradient step (dotted: σ changes)", ylabel="J(θ) (unblurred)", title="J along both runs")
    axes[5].legend(fontsize=8)
    save(fig, path, dpi=80)
    print(f"wrote {os.path.normpath(path)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Sec. 8.7.6: continuation by Gaussian blurring")
    parser.add_argument("--quick", action="store_true", help="fewer steps per level (smoke run)")
    args = parser.parse_args(argv)
    out = output_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runs"))
    result = run(steps=40 if args.quick else STEPS)
    plot(result, os.path.join(out, "continuation.png"))
    return result


if __name__ == "__main__":
    main()
