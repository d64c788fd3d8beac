"""Polyak averaging (Goodfellow et al. 2016, Sec. 8.7.3; Polyak & Juditsky 1992).

A strictly convex problem with stochastic gradients: least squares on a small synthetic
dataset (n = 500 examples, d = 10 features, targets with noise), minibatches of 10 drawn
with replacement, SGD with a *constant* step ε, run 16 times with independent
minibatch draws (one (16, d) variable: SGD and the average are element-wise, so its rows
are 16 independent runs) and the squared distances averaged over the runs. Its exact minimizer θ* is computed in
float64 by NumPy (``np.linalg.lstsq``). The gradient noise does not vanish at θ*, so the
last SGD iterate θ⁽ᵗ⁾ stops approaching θ* and keeps bouncing at a noise floor, while the
Polyak average θ̂⁽ᵗ⁾ (``keras_optlab.SGD(polyak="arithmetic", polyak_start=100)``: the
same trajectory, averaged over the iterates after the first 100 steps, a burn-in that
keeps the far-away early iterates out of the mean) keeps converging: its squared
distance ‖θ̂ − θ*‖² falls like 1/t (the distance like 1/√t, the rate of the best
estimator from t noisy samples). Prints
both at log-spaced t with the log-log slope of each over the last two decades, and writes
polyak_averaging.png.

Run: python examples/polyak_averaging.py [--quick]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_optlab.lab.plots import new_figure, output_dir, save  # noqa: E402
from keras_optlab.optimizers import SGD  # noqa: E402

N, D, BATCH, EPSILON, TARGET_NOISE = 500, 10, 10, 0.05, 1.0
RUNS, BURN_IN = 16, 100


def problem(seed=0):
    """(X, y, θ*): the data and the exact float64 least-squares minimizer."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D))
    y = x @ rng.normal(size=D) + TARGET_NOISE * rng.normal(size=N)
    theta_star = np.linalg.lstsq(x, y, rcond=None)[0]
    return x, y, theta_star


def checkpoints(steps, per_decade=8):
    """Log-spaced step counts from 10 to ``steps``."""
    points = np.unique(np.round(np.logspace(1, np.log10(steps), int(per_decade * (np.log10(steps) - 1)) + 1)))
    return [int(t) for t in points]


def run(steps, seed=0):
    """Constant-step SGD with Polyak averaging, ``RUNS`` runs; returns (t, mean over the
    runs of ‖θ⁽ᵗ⁾ − θ*‖², of ‖θ̂⁽ᵗ⁾ − θ*‖²)."""
    x, y, theta_star = problem(seed)
    theta = keras.Variable(np.zeros((RUNS, D)), dtype="float64")  # row r: run r
    optimizer = SGD(learning_rate=EPSILON, polyak="arithmetic", polyak_start=BURN_IN)
    optimizer.build([theta])
    average = optimizer.average_of(theta)
    xs, ys = tf.constant(x), tf.constant(y)
    batches = tf.constant(np.random.default_rng(seed + 1).integers(0, N, size=(steps, RUNS, BATCH)))

    @tf.function
    def advance(begin, end):
        for k in tf.range(begin, end):
            xb, yb = tf.gather(xs, batches[k]), tf.gather(ys, batches[k])  # (runs, batch, d), (runs, batch)
            residual = tf.einsum("rbd,rd->rb", xb, theta.value) - yb
            optimizer.apply([tf.einsum("rbd,rb->rd", xb, residual) / BATCH], [theta])

    def distance(value):
        return float(np.mean(np.sum((keras.ops.convert_to_numpy(value) - theta_star) ** 2, axis=1)))

    ts, last, averaged, done = [], [], [], 0
    for t in checkpoints(steps):
        advance(tf.constant(done), tf.constant(t))
        done = t
        ts.append(t)
        last.append(distance(theta))
        averaged.append(distance(average))
    assert int(keras.ops.convert_to_numpy(optimizer.averaged_steps)) == steps - BURN_IN
    return np.array(ts), np.array(last), np.array(averaged)


def slope(ts, values, decades=2.0):
    """The least-squares slope of log(values) against log(t) over the last ``decades``."""
    keep = ts >= ts[-1] / 10**decades
    return float(np.polyfit(np.log10(ts[keep]), np.log10(values[keep]), 1)[0])


def figure(ts, last, averaged, path):
    fig = new_figure("examples/polyak_averaging.py", figsize=(6.4, 4.4))
    axes = fig.add_subplot()
    axes.loglog(ts, last, "o-", ms=3, label="SGD, last iterate θ⁽ᵗ⁾")
    axes.loglog(ts, averaged, "o-", ms=3, label=f"Polyak average θ̂⁽ᵗ⁾ of the iterates after step {BURN_IN} (= θ⁽ᵗ⁾ before)")
    reference = averaged[-1] * ts[-1] / ts
    axes.loglog(ts, reference, "k--", lw=1, label="∝ 1/t")
    axes.set_xlabel("step t")
    axes.axvline(BURN_IN, color="0.6", lw=0.8, ls=":")
    axes.set_ylabel(f"mean over {RUNS} runs of ‖θ − θ*‖²  (θ* exact, float64 NumPy)")
    axes.set_title(f"Least squares, minibatch {BATCH}, constant ε = {EPSILON}: the average converges")
    axes.title.set_fontsize(9)
    axes.legend(fontsize=8)
    return save(fig, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Sec. 8.7.3: Polyak averaging of constant-step SGD")
    parser.add_argument("--steps", type=int, default=20000, help="SGD steps (default 20000)")
    parser.add_argument("--quick", action="store_true", help="2000 steps (a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    steps = 2000 if args.quick else args.steps
    ts, last, averaged = run(steps, args.seed)
    print(f"Least squares, n={N}, d={D}, minibatch {BATCH}, SGD ε={EPSILON}, {steps} steps, average after "
          f"step {BURN_IN}; squared distance to the exact minimizer θ*, mean of {RUNS} runs:")
    print(f"  {'t':>7s} {'‖θ⁽ᵗ⁾ − θ*‖²':>14s} {'‖θ̂⁽ᵗ⁾ − θ*‖²':>14s} {'t·‖θ̂ − θ*‖²':>13s}")
    shown = sorted(set(range(0, len(ts), max(1, len(ts) // 10))) | {len(ts) - 1})
    for i in shown:
        print(f"  {ts[i]:7d} {last[i]:14.3e} {averaged[i]:14.3e} {ts[i] * averaged[i]:13.3g}")
    decades = min(2.0, np.log10(ts[-1]) - 1.5)
    print(f"log-log slope over the last {decades:.1f} decades: last iterate {slope(ts, last, decades):+.2f}, "
          f"average {slope(ts, averaged, decades):+.2f} (1/t is −1)")
    print(f"At t = {ts[-1]} the average is {last[-1] / averaged[-1]:.0f}x closer (squared) than the last iterate.")
    print(f"figure: {figure(ts, last, averaged, os.path.join(output_dir(), 'polyak_averaging.png'))}")
    return ts, last, averaged


if __name__ == "__main__":
    main()
