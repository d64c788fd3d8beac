"""Section 2.1 of the notes (Goodfellow et al. 2016, Sec. 8.2.1, Figure 8.1): ill-conditioning
on a real network, trained as practitioners train one.

A gradient step −εg changes the cost by about ½ε²gᵀHg − εgᵀg (Eq. 8.10): once ½ε²gᵀHg
exceeds εgᵀg the step makes things worse — ε exceeds the critical learning rate
2gᵀg/gᵀHg, which is never below 2/λ_max. Figure 8.1 of the book shows the gradient norm
of a convolutional network *growing* over training while its classification error falls.

Here: a small CNN on scikit-learn's digits (8×8 images), keras_optlab ``Momentum``
(Alg. 8.2, α = 0.9), with the step size set relative to the curvature measured at the
start, ε = f · 2/λ_max(θ₀) (λ_max of the full training loss by Lanczos,
``keras_optlab.curvature.top_eigenvalues``). While it trains, the script records

* the minibatch gradient norm of every step (the optimizer's ``gradient_norm``, with
  ``track_gradient_norm=True``) — the book's curve;
* every ``EVERY`` steps, gᵀg and gᵀHg of the full training loss
  (``keras_optlab.curvature.gradient_curvature``) and whether ½ε²gᵀHg > εgᵀg; and, less
  often, λ_max;
* the training and validation classification error after every epoch.

    python examples/ill_conditioning.py            # one setting, the figure (about 40 s on 2 cores)
    python examples/ill_conditioning.py --sweep    # step size x batch size x depth (minutes)

Output goes to $OPTLAB_OUT (or runs/; the copies in docs/figures/ were written to a
scratch $OPTLAB_OUT and copied there). The one setting writes ill_conditioning_cnn.png, four panels:
the gradient norm against epochs (minibatch ‖g‖ of every step, full-training-set ‖g‖ every
EVERY steps — Fig. 8.1, left), the training and validation classification error per epoch
(Fig. 8.1, right), the two terms εgᵀg and ½ε²gᵀHg of Eq. 8.10 with the steps where the
second exceeds the first marked, and ε against the critical 2gᵀg/gᵀHg, 2/λ_max and the
heavy ball's terminal step ε/(1−α). --sweep writes ill_conditioning_sweep.png (per batch
size and depth, against f: the share of measurements with ½ε²gᵀHg > εgᵀg, and ‖g‖ at the
end over ‖g‖ at the start) and ill_conditioning_sweep.json (one row per setting). The
numbers quoted in docs/claims.md are printed by these two commands (the sweep's printout
is kept in docs/figures/ill_conditioning_sweep.txt).
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_optlab.curvature import gradient_curvature, top_eigenvalues  # noqa: E402
from keras_optlab.lab.data import load_digits  # noqa: E402
from keras_optlab.lab.plots import new_figure, output_dir, save  # noqa: E402
from keras_optlab.optimizers import Momentum  # noqa: E402

RUNS = output_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runs"))  # $OPTLAB_OUT wins
MOMENTUM = 0.9
EVERY, EIGEN_EVERY = 10, 150  # steps between measurements of gᵀHg and of λ_max

# The headline setting (default run) and the sweep's grid.
DEFAULT = {"factor": 0.01, "batch": 32, "depth": 3, "steps": 600}
FACTORS = (0.01, 0.03, 0.1, 0.3, 1.0)
BATCHES = (32, 256)
DEPTHS = (1, 3)


def positive_number(name, value):
    """``float(value)`` for a finite real number > 0 (not a bool); else TypeError or
    ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a real number > 0. Received: {name}={value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a finite number > 0. Received: {name}={value!r}")
    return float(value)


def positive_integer(name, value):
    """``int(value)`` for an integer ≥ 1 (Python or NumPy, not a bool); else TypeError or
    ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")
    return int(value)


def cnn(depth, seed=0):
    """``depth`` 3×3 ReLU convolutions (16, 32, 32 … filters, 'same' padding, no pooling)
    on the 8×8 digit, flattened into a dense layer of 10 logits. Keras' default Glorot
    kernels. ``depth``: an int ≥ 1; ``seed``: Keras' global seed."""
    depth = positive_integer("depth", depth)
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((8, 8, 1))]
    for i in range(depth):
        layers.append(keras.layers.Conv2D(16 if i == 0 else 32, 3, padding="same", activation="relu"))
    layers += [keras.layers.Flatten(), keras.layers.Dense(10)]
    return keras.Sequential(layers)


class Recorder(keras.callbacks.Callback):
    """Minibatch ‖g‖ each step; full-training-set curvature every EVERY steps."""

    def __init__(self, x, y, learning_rate, every=EVERY, eigen_every=EIGEN_EVERY):
        super().__init__()
        self.x, self.y, self.learning_rate = x, y, learning_rate
        self.every, self.eigen_every = every, eigen_every
        self.minibatch_norm, self.measurements, self.eigen = [], [], []
        self.step = 0
        self.diverged = None

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.minibatch_norm.append(float(keras.ops.convert_to_numpy(self.model.optimizer.gradient_norm)))
        if not np.isfinite(self.minibatch_norm[-1]) or not np.isfinite(logs["loss"]):
            self.diverged = self.step  # the weights are no longer finite: nothing left to measure
            self.model.stop_training = True
            return
        if self.step % self.every == 0 or self.step == 1:
            m = gradient_curvature(self.model, self.x, self.y, learning_rate=self.learning_rate)
            m["step"] = self.step
            self.measurements.append(m)
        if self.step % self.eigen_every == 0:
            self.eigen.append((self.step, lambda_max(self.model, self.x, self.y)))


def lambda_max(model, x, y):
    """λ_max of the full training loss: Lanczos, or power iteration where the Lanczos
    tridiagonal's eigh does not converge (seen once in the sweep); NaN after divergence."""
    try:
        return float(top_eigenvalues(model, x, y, k=1, max_iterations=30, tol=1e-3)[0])
    except np.linalg.LinAlgError:
        try:
            return float(top_eigenvalues(model, x, y, k=1, method="power", max_iterations=50, tol=1e-3)[0])
        except np.linalg.LinAlgError:
            return float("nan")


def train(factor, batch, depth, steps, data):
    """Train ``cnn(depth)`` with ``Momentum`` at ε = ``factor`` · 2/λ_max(θ₀) on minibatches
    of ``batch`` for about ``steps`` updates (whole epochs), recording as ``Recorder``
    does; ``data`` = (x, y, x_val, y_val). Returns ``summarize``'s dict."""
    factor = positive_number("factor", factor)
    batch = positive_integer("batch", batch)
    steps = positive_integer("steps", steps)
    if not isinstance(data, (tuple, list)) or len(data) != 4:
        raise TypeError(f"`data` must be a tuple (x, y, x_val, y_val). Received: data of type {type(data).__name__}")
    x, y, x_val, y_val = data
    model = cnn(depth)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="sgd", loss=loss)  # for the curvature at θ₀ only
    lam0 = lambda_max(model, x, y)
    learning_rate = factor * 2.0 / lam0
    model.compile(optimizer=Momentum(learning_rate, momentum=MOMENTUM, track_gradient_norm=True), loss=loss,
                  metrics=["accuracy"])
    recorder = Recorder(x, y, learning_rate)
    recorder.eigen.append((0, lam0))
    epochs = int(np.ceil(steps / np.ceil(len(x) / batch)))
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=batch, epochs=epochs, validation_data=(x_val, y_val), verbose=0,
                        callbacks=[recorder])
    return summarize(dict(factor=factor, batch=batch, depth=depth, learning_rate=learning_rate, lambda0=lam0,
                          epochs=epochs, seconds=time.perf_counter() - start), recorder, history.history)


def eq_8_10_terms(step_size, measurements):
    """The two terms of Eq. 8.10 for a step of ``step_size`` at each measurement:
    (εgᵀg, ½ε²gᵀHg) as arrays."""
    g_norm_sq = np.array([r["g_norm_sq"] for r in measurements])
    ghg = np.array([r["gHg"] for r in measurements])
    return step_size * g_norm_sq, 0.5 * step_size**2 * ghg


def summarize(run, recorder, history):
    """``run`` updated with the recorded series and the summary numbers of one setting."""
    m = recorder.measurements
    eps = run["learning_rate"]
    g_norm = np.sqrt([r["g_norm_sq"] for r in m])
    first, second = eq_8_10_terms(eps, m)
    # ε/(1−α): the heavy ball's terminal step on a steady gradient
    first_eff, second_eff = eq_8_10_terms(eps / (1 - MOMENTUM), m)
    tenth = max(1, len(m) // 10)
    run.update(
        steps=recorder.step,
        diverged=recorder.diverged,
        minibatch_norm=np.asarray(recorder.minibatch_norm),
        measurements=m,
        eigen=recorder.eigen,
        full_norm_first=float(g_norm[:tenth].mean()),
        full_norm_last=float(g_norm[-tenth:].mean()),
        full_norm_max=float(g_norm.max()),
        peak_step=int(m[int(np.argmax(g_norm))]["step"]),
        loss_at_peak=float(m[int(np.argmax(g_norm))]["loss"]),
        ill_fraction=float(np.mean(second > first)),
        ill_fraction_effective=float(np.mean(second_eff > first_eff)),
        lambda_last=recorder.eigen[-1][1],
        train_error=1 - np.asarray(history["accuracy"]),
        val_error=1 - np.asarray(history["val_accuracy"]),
        loss_first=m[0]["loss"],
        loss_last=m[-1]["loss"],
    )
    return run


HEADER = (f"{'f=eps*lmax0/2':>13} {'batch':>5} {'depth':>5} {'eps':>8} {'steps':>5} "
          f"{'|g| start':>9} {'|g| end':>8} {'|g| max':>8} {'at step':>7} {'loss there':>10} {'grows':>5} {'ill(eps)':>8} {'ill(eps/(1-a))':>14} "
          f"{'lmax0':>7} {'lmax end':>8} {'eps*lmax_end/2':>14} {'loss0':>6} {'loss end':>8} "
          f"{'train err':>9} {'val err':>7}")


def row(r):
    grows = r["full_norm_last"] > r["full_norm_first"]
    return (f"{r['factor']:13.2f} {r['batch']:5d} {r['depth']:5d} {r['learning_rate']:8.4f} {r['steps']:5d} "
            f"{r['full_norm_first']:9.3g} {r['full_norm_last']:8.3g} {r['full_norm_max']:8.3g} "
            f"{r['peak_step']:7d} {r['loss_at_peak']:10.3g} "
            f"{'yes' if grows else 'no':>5} {r['ill_fraction']:8.0%} {r['ill_fraction_effective']:14.0%} "
            f"{r['lambda0']:7.2f} {r['lambda_last']:8.2f} {r['learning_rate'] * r['lambda_last'] / 2:14.2f} "
            f"{r['loss_first']:6.3f} {r['loss_last']:8.3g} "
            f"{r['train_error'][-1]:9.3f} {r['val_error'][-1]:7.3f}"
            + (f"  diverged at step {r['diverged']}" if r["diverged"] else ""))


def report(runs):
    print("digits CNN, Momentum(alpha=0.9), eps = f * 2/lambda_max(theta_0); |g| and gHg of the full training loss "
          f"every {EVERY} steps (start/end = mean over the first/last tenth); ill = share of those measurements "
          "with 1/2 eps^2 gHg > eps gTg")
    print(HEADER)
    for r in runs:
        print(row(r))


def plot_run(r, path):
    """The one setting's four panels (see the module docstring) to ``path``."""
    m = r["measurements"]
    steps = np.array([x["step"] for x in m])
    eps = r["learning_rate"]
    key = lambda k: np.array([x[k] for x in m])  # noqa: E731
    fig = new_figure("examples/ill_conditioning.py", figsize=(12, 8))
    fig.suptitle(f"Digits CNN ({r['depth']} conv layers), Momentum α = {MOMENTUM}, batch {r['batch']}, "
                 f"ε = {r['factor']:g}·2/λ_max(θ₀) = {eps:.3g}")
    ax = fig.subplots(2, 2)
    per_epoch = int(np.ceil(len(r["minibatch_norm"]) / r["epochs"]))
    ax[0, 0].plot(np.arange(1, len(r["minibatch_norm"]) + 1) / per_epoch, r["minibatch_norm"], lw=0.4, alpha=0.5,
                  label="minibatch ‖g‖ (every step)")
    ax[0, 0].plot(steps / per_epoch, np.sqrt(key("g_norm_sq")), label="full training set ‖g‖")
    ax[0, 0].set(title="Gradient norm (Fig. 8.1, left)", xlabel="epoch", ylabel="‖g‖")
    ax[0, 0].legend()
    epochs = np.arange(1, len(r["val_error"]) + 1)
    ax[0, 1].plot(epochs, r["train_error"], label="training")
    ax[0, 1].plot(epochs, r["val_error"], label="validation")
    ax[0, 1].set(title="Classification error (Fig. 8.1, right)", xlabel="epoch", ylabel="error", yscale="log")
    ax[0, 1].legend()
    first, second = eq_8_10_terms(eps, m)
    ax[1, 0].plot(steps, first, label="εgᵀg")
    ax[1, 0].plot(steps, second, label="½ε²gᵀHg")
    ill = second > first
    ax[1, 0].plot(steps[ill], second[ill], "r.", ms=4,
                  label=f"½ε²gᵀHg > εgᵀg ({ill.mean():.0%} of measurements)")
    ax[1, 0].set(title="The two terms of Eq. 8.10 (full training loss)", xlabel="step", yscale="log")
    ax[1, 0].legend()
    eig_steps, eig = zip(*r["eigen"])
    ax[1, 1].plot(steps, key("critical_learning_rate"), label="critical ε = 2gᵀg/gᵀHg")
    ax[1, 1].plot(eig_steps, 2 / np.asarray(eig), "o--", label="2/λ_max")
    ax[1, 1].axhline(eps, color="k", label="ε in use")
    ax[1, 1].axhline(eps / (1 - MOMENTUM), color="k", ls=":", label="ε/(1−α), heavy-ball terminal step")
    ax[1, 1].set(title="Step size vs the critical step size", xlabel="step", yscale="log")
    ax[1, 1].legend(fontsize=8)
    save(fig, path, dpi=100)
    print(f"wrote {os.path.normpath(path)}")


def plot_sweep(runs, path):
    """The sweep's two panels to ``path``: for each (batch, depth), against f, the share of
    measurements with ½ε²gᵀHg > εgᵀg and the ratio ‖g‖ end / ‖g‖ start (> 1: grows)."""
    fig = new_figure("examples/ill_conditioning.py", figsize=(12, 4.5))
    fig.suptitle("Digits CNN, Momentum α = 0.9: where Fig. 8.1's effect appears")
    ax = fig.subplots(1, 2)
    for batch in sorted({r["batch"] for r in runs}):
        for depth in sorted({r["depth"] for r in runs}):
            rs = [r for r in runs if r["batch"] == batch and r["depth"] == depth]
            if not rs:
                continue
            f = [r["factor"] for r in rs]
            label = f"batch {batch}, {depth} conv"
            ax[0].plot(f, [r["ill_fraction"] for r in rs], "o-", label=label)
            ax[1].plot(f, [r["full_norm_last"] / r["full_norm_first"] for r in rs], "o-", label=label)
    ax[0].set(xscale="log", xlabel="f = ε·λ_max(θ₀)/2", ylabel="share of measurements",
              title="½ε²gᵀHg > εgᵀg (full training loss)")
    ax[1].axhline(1.0, color="k", lw=0.8)
    ax[1].set(xscale="log", yscale="log", xlabel="f = ε·λ_max(θ₀)/2", ylabel="‖g‖ end / ‖g‖ start",
              title="Gradient norm growth over training (> 1: grows)")
    ax[0].legend()
    save(fig, path, dpi=100)
    print(f"wrote {os.path.normpath(path)}")


def _values(parser, option, text, kind, check):
    """The comma-separated ``text`` of ``option`` as a tuple of ``kind``, each passing
    ``check``; a bad one is a usage error naming the option."""
    try:
        return tuple(check(option, kind(v)) for v in text.split(","))
    except (TypeError, ValueError) as error:
        parser.error(str(error) if option in str(error) else f"{option}: {error}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Fig. 8.1 on a digits CNN")
    parser.add_argument("--sweep", action="store_true", help="step size x batch size x depth grid")
    parser.add_argument("--quick", action="store_true", help="a few steps per setting (smoke run)")
    parser.add_argument("--label-noise", type=float, default=0.0,
                        help="share of training labels replaced by uniformly random ones (0: none)")
    parser.add_argument("--factors", default=None, help="comma-separated f values for --sweep")
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes for --sweep")
    parser.add_argument("--depths", default=None, help="comma-separated depths for --sweep")
    args = parser.parse_args(argv)
    if not 0.0 <= args.label_noise <= 1.0:
        parser.error(f"--label-noise must be in [0, 1]. Received: --label-noise={args.label_noise}")
    factors = _values(parser, "--factors", args.factors, float, positive_number) if args.factors else FACTORS
    batches = _values(parser, "--batches", args.batches, int, positive_integer) if args.batches else BATCHES
    depths = _values(parser, "--depths", args.depths, int, positive_integer) if args.depths else DEPTHS
    x, y, x_val, y_val = load_digits()  # standardized pixels, reshaped to 8×8×1 images
    if args.label_noise:
        rng = np.random.default_rng(0)
        noisy = rng.random(len(y)) < args.label_noise
        y = np.where(noisy, rng.integers(0, 10, len(y)), y).astype(np.int32)
        print(f"label noise: {noisy.mean():.1%} of the training labels replaced by random ones")
    data = (x.reshape(-1, 8, 8, 1), y, x_val.reshape(-1, 8, 8, 1), y_val)
    steps = 30 if args.quick else DEFAULT["steps"]
    if args.sweep:
        grid = [(f, b, d) for d in depths for b in batches for f in factors]
        if args.quick:
            grid = grid[:2]
        print(HEADER, flush=True)
        runs = []
        for f, b, d in grid:
            runs.append(train(f, b, d, steps, data))
            print(row(runs[-1]), flush=True)
        report(runs)
        suffix = f"_noise{args.label_noise:g}" if args.label_noise else ""
        plot_sweep(runs, os.path.join(RUNS, f"ill_conditioning_sweep{suffix}.png"))
        keep = ("factor", "batch", "depth", "learning_rate", "lambda0", "lambda_last", "steps", "diverged",
                "full_norm_first", "full_norm_last", "full_norm_max", "peak_step", "loss_at_peak", "ill_fraction",
                "ill_fraction_effective", "loss_first", "loss_last")
        table = [{k: r[k] for k in keep} | {"train_error": float(r["train_error"][-1]),
                                            "val_error": float(r["val_error"][-1])} for r in runs]
        with open(os.path.join(RUNS, f"ill_conditioning_sweep{suffix}.json"), "w") as f:
            json.dump(table, f, indent=1)
    else:
        r = train(DEFAULT["factor"], DEFAULT["batch"], DEFAULT["depth"], steps, data)
        report([r])
        print(f"validation error: epoch 1 {r['val_error'][0]:.3f}, epoch {r['epochs']} {r['val_error'][-1]:.3f}; "
              f"{r['seconds']:.0f} s")
        plot_run(r, os.path.join(RUNS, "ill_conditioning_cnn.png"))


if __name__ == "__main__":
    main()
