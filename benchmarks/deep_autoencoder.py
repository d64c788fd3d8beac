"""The CURVES deep autoencoder of Hinton & Salakhutdinov (2006) — sparse init + scheduled
Nesterov momentum vs Hessian-free, at equal wall time (Martens 2010; Sutskever et al. 2013;
Section 4 of the notes).

    .venv/bin/python benchmarks/deep_autoencoder.py [--seconds 270] [--n 20000] [--json PATH]

The 784-400-200-100-50-25-6 encoder and its mirror-image decoder (6-25-50-100-200-400-784):
logistic hidden units, a linear 6-unit code, logistic outputs; the loss is the
cross-entropy of the pixels summed over the 784 pixels of an image (the papers'
objective; computed from the output logits, so the logistic output is inside the loss).
Data: ``keras_optlab.lab.data.curves`` (generated in the package; see its docstring for
how it differs from the original file). Contenders, each from the same seed:

* ``momentum-glorot`` — (a) SGD with heavy-ball momentum (``Momentum``, Alg. 8.2,
  α = 0.9) from Keras' dense Glorot-uniform kernels;
* ``nesterov-sparse`` — (b) ``Nesterov`` (Alg. 8.3) with Sutskever et al.'s schedule
  μₜ = min(1 − 2^(−1−log₂(⌊t/250⌋+1)), μ_max) = min(1 − 1/(2(⌊t/250⌋+1)), μ_max), from
  ``SparseK(k=15)`` kernels (15 non-zero N(0, 1) incoming weights per unit, Martens 2010);
* ``adam-glorot`` — (c) ``Adam`` (Alg. 8.7) from Glorot kernels;
* ``hf-gauss-newton-sparse`` — (d) Hessian-free: ``Newton(solver="cg",
  curvature="gauss_newton", adaptive_damping=True)`` through ``SecondOrder``, from
  ``SparseK(k=15)`` as in Martens (2010), on large minibatches.

Each trains for ``--seconds`` of training wall time (evaluation excluded); the training
squared error per image, Σ_pixels (x − x̂)² averaged over images — the papers' measure
— is recorded on a fixed 2,000-image subset of the training set after every epoch, and
on the whole training set and 2,000 held-out images at the end.

The momentum schedule is a time-varying momentum, which ``Nesterov`` (a float
``momentum``, checked at construction) does not take; so the benchmark subclasses it
(``ScheduledNesterov``): ``rule_hyperparameters`` hands the rule μₜ computed from the
optimizer's ``iterations`` inside the compiled step (the same value reaches the keras.ops
rule, TF's fused kernel and keras_optlab's CPU kernel, which all read
``rule_hyperparameters``). The package is unchanged.
"""

import argparse
import datetime
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import keras_optlab as ko  # noqa: E402
from keras_optlab.lab.data import curves  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_json  # noqa: E402

ENCODER = (400, 200, 100, 50, 25)
CODE = 6
PIXELS = 784
MONITOR = 2000  # training images the learning curve is measured on
SCHEDULE_STEP = 250  # Sutskever et al.: μ changes every 250 updates

# Settings chosen by two pilot runs of 40 s each (benchmarks/results/deep_autoencoder_pilot_{a,b}_cpu.json:
# defaults with 0.001 everywhere, then 0.005 / 0.005 / 3e-4): the better of the two rates tried;
# Momentum's two rates tied (30.79 vs 30.81). The Hessian-free settings were not tuned.
DEFAULTS = {
    "momentum-glorot": {"learning_rate": 0.001, "momentum": 0.9, "batch_size": 200},
    "nesterov-sparse": {"learning_rate": 0.005, "momentum_max": 0.995, "batch_size": 200},
    "adam-glorot": {"learning_rate": 0.001, "batch_size": 200},
    "hf-gauss-newton-sparse": {"damping": 10.0, "max_cg_iterations": 30, "batch_size": 2000},
}


def sutskever_momentum(t, momentum_max):
    """μₜ = min(1 − 2^(−1−log₂(⌊t/250⌋+1)), μ_max) for update t = 0, 1, … (NumPy)."""
    k = np.floor(np.asarray(t, np.float64) / SCHEDULE_STEP)
    return np.minimum(1.0 - 2.0 ** (-1.0 - np.log2(k + 1.0)), momentum_max)


class ScheduledNesterov(ko.optimizers.Nesterov):
    """``Nesterov`` whose momentum follows Sutskever et al.'s schedule up to ``momentum``
    (μ_max). With a μ that changes between steps, the look-ahead form (weights hold
    θ + μv) uses μₜ for the step of update t; where μ changes (every 250 updates) the
    stored point differs from the book's θ + μₜ₊₁v by (μₜ₊₁ − μₜ)v — the same
    approximation as Sutskever et al.'s own NAG reformulation."""

    def momentum_now(self, dtype="float32"):
        k = ops.floor(ops.cast(self.iterations, "float32") / SCHEDULE_STEP)
        mu = ops.minimum(1.0 - 0.5 / (k + 1.0), self.momentum)  # 2^(−1−log₂(k+1)) = 1/(2(k+1))
        return ops.cast(mu, dtype)

    def rule_hyperparameters(self, variable, learning_rate):
        return {"learning_rate": learning_rate, "momentum": self.momentum_now(variable.dtype)}


def image_cross_entropy(x, logits):
    """Σ over the 784 pixels of the Bernoulli cross-entropy, per image (mean over the batch
    is Keras')."""
    return ops.sum(ops.binary_crossentropy(x, logits, from_logits=True), axis=-1)


def autoencoder(kernel_initializer, seed=0):
    """The 784-400-200-100-50-25-6-25-50-100-200-400-784 network (logistic hidden units, a
    linear code, 784 output logits), its kernels from ``kernel_initializer`` (a Keras
    name, or an initializer re-seeded per layer with ``seed`` + the layer's width)."""
    keras.utils.set_random_seed(seed)

    def dense(units, activation=None):
        init = kernel_initializer if isinstance(kernel_initializer, str) else kernel_initializer.__class__.from_config(
            {**kernel_initializer.get_config(), "seed": seed + units})
        return keras.layers.Dense(units, activation=activation, kernel_initializer=init)

    layers = [keras.Input((PIXELS,))]
    layers += [dense(n, "sigmoid") for n in ENCODER] + [dense(CODE)]
    layers += [dense(n, "sigmoid") for n in reversed(ENCODER)] + [dense(PIXELS)]  # logits
    return keras.Sequential(layers)


def squared_error_per_image(model, x):
    """Σ_pixels (x − σ(logits))², averaged over the images of ``x``: the papers' measure."""
    logits = model.predict(x, batch_size=1000, verbose=0)
    return float(np.mean(np.sum((x - 1.0 / (1.0 + np.exp(-logits))) ** 2, axis=1)))


class TimeBudget(keras.callbacks.Callback):
    """Stops ``fit`` once the training time of this contender reaches the budget."""

    def __init__(self, start, spent, budget):
        super().__init__()
        self.start, self.spent, self.budget = start, spent, budget

    def on_train_batch_end(self, batch, logs=None):
        if self.spent + time.perf_counter() - self.start >= self.budget:
            self.model.stop_training = True


def contender(name, settings):
    """(model, optimizer) of the contender ``name`` (a key of ``DEFAULTS``)."""
    s = settings
    if name == "momentum-glorot":
        return autoencoder("glorot_uniform"), ko.optimizers.Momentum(s["learning_rate"], momentum=s["momentum"])
    if name == "nesterov-sparse":
        return autoencoder(ko.initializers.SparseK(k=15, seed=0)), ScheduledNesterov(
            s["learning_rate"], momentum=s["momentum_max"])
    if name == "adam-glorot":
        return autoencoder("glorot_uniform"), ko.optimizers.Adam(s["learning_rate"])
    if name == "hf-gauss-newton-sparse":
        return ko.SecondOrder(autoencoder(ko.initializers.SparseK(k=15, seed=0))), ko.optimizers.Newton(
            damping=s["damping"], solver="cg", curvature="gauss_newton", adaptive_damping=True,
            max_cg_iterations=s["max_cg_iterations"])
    raise ValueError(f"unknown contender {name!r}")


def run(name, settings, x, x_test, seconds):
    """Train one contender for ``seconds`` of training wall time, one ``fit`` epoch at a
    time; returns its learning curve and final errors as a dict (one entry of the JSON)."""
    model, optimizer = contender(name, settings)
    model.compile(optimizer=optimizer, loss=image_cross_entropy)
    monitor = x[:MONITOR]
    curve = [{"seconds": 0.0, "steps": 0, "train_squared_error": squared_error_per_image(model, monitor)}]
    spent, epochs, steps, load = 0.0, 0, 0, [os.getloadavg()[0]]
    momentum = []
    while spent < seconds:
        start = time.perf_counter()
        history = model.fit(x, x, batch_size=settings["batch_size"], epochs=1, verbose=0, shuffle=True,
                            callbacks=[TimeBudget(start, spent, seconds)])
        spent += time.perf_counter() - start
        epochs += 1
        steps = int(optimizer.iterations)
        if not np.isfinite(history.history["loss"][-1]):
            print(f"{name}: loss is {history.history['loss'][-1]} after {steps} steps, stopped", flush=True)
            break
        curve.append({"seconds": spent, "steps": steps, "loss": float(history.history["loss"][-1]),
                      "train_squared_error": squared_error_per_image(model, monitor)})
        if isinstance(optimizer, ScheduledNesterov):
            momentum.append(float(optimizer.momentum_now()))
        load.append(os.getloadavg()[0])
    result = {
        "name": name, "settings": settings, "seconds": spent, "epochs": epochs, "steps": steps,
        "images_seen": steps * settings["batch_size"], "curve": curve,
        "final_train_squared_error": squared_error_per_image(model, x),
        "final_test_squared_error": squared_error_per_image(model, x_test),
        "load_average_1min": {"min": min(load), "max": max(load)},
    }
    if momentum:
        result["momentum_at_end"] = momentum[-1]
    print(f"{name:>24}: {steps:6d} steps ({epochs} epochs) in {spent:6.1f} s, training squared error per image "
          f"{result['final_train_squared_error']:.3f} (held-out {result['final_test_squared_error']:.3f})", flush=True)
    return result


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=270.0, help="training wall time per contender")
    parser.add_argument("--n", type=int, default=20000, help="training images (the papers: 20,000)")
    parser.add_argument("--only", default="", help="comma-separated subset of " + ",".join(DEFAULTS))
    parser.add_argument("--set", action="append", default=[], metavar="NAME.KEY=VALUE",
                        help="override a setting, e.g. --set nesterov-sparse.learning_rate=0.005")
    parser.add_argument("--quick", action="store_true", help="smoke run: 400 images, 0.5 s per contender")
    parser.add_argument("--json", default="benchmarks/results/deep_autoencoder_cpu.json")
    parser.add_argument("--png", default=None, help="also plot the learning curves (needs matplotlib)")
    args = parser.parse_args(argv)
    if not (np.isfinite(args.seconds) and args.seconds > 0):
        parser.error(f"--seconds must be a finite number > 0. Received: --seconds={args.seconds}")
    if args.n < 1:
        parser.error(f"--n must be an integer >= 1. Received: --n={args.n}")
    unknown = [s for s in args.only.split(",") if s and s not in DEFAULTS]
    if unknown:
        parser.error(f"--only: unknown contender(s) {', '.join(unknown)}; choose from {', '.join(DEFAULTS)}")
    for item in args.set:
        key, _, value = item.partition("=")
        name, _, field = key.partition(".")
        if not value or name not in DEFAULTS or field not in DEFAULTS[name]:
            parser.error(f"--set must be NAME.KEY=VALUE with NAME one of {', '.join(DEFAULTS)} and KEY one of "
                         f"its settings. Received: --set={item}")
        try:
            type(DEFAULTS[name][field])(value)
        except ValueError:
            parser.error(f"--set {key}: {value!r} is not a {type(DEFAULTS[name][field]).__name__}")
    if args.quick:
        args.n, args.seconds = 400, 0.5
    return args


def settings_from(args):
    """Each chosen contender's settings: ``DEFAULTS`` with ``--set`` applied (checked by
    ``parse_args``; an override of a contender left out by ``--only`` is ignored)."""
    names = [s for s in args.only.split(",") if s] or list(DEFAULTS)
    settings = {name: dict(DEFAULTS[name]) for name in names}
    for item in args.set:
        key, value = item.split("=", 1)
        name, field = key.split(".", 1)
        if name in settings:
            settings[name][field] = type(DEFAULTS[name][field])(value)
    if args.quick:
        for s in settings.values():
            s["batch_size"] = min(s["batch_size"], 100)
            if "max_cg_iterations" in s:
                s["max_cg_iterations"] = 3
    return settings


def main(argv=None):
    args = parse_args(argv)
    settings = settings_from(args)
    start = time.perf_counter()
    x, x_test = curves(args.n, seed=0), curves(200 if args.quick else 2000, seed=1)
    generated = time.perf_counter() - start
    n_params = autoencoder("glorot_uniform").count_params()
    print(f"CURVES autoencoder 784-{'-'.join(map(str, ENCODER))}-{CODE} (and mirror), {n_params} parameters; "
          f"{args.n} training images generated in {generated:.1f} s; {args.seconds:.0f} s of training each", flush=True)
    runs = [run(name, s, x, x_test, args.seconds) for name, s in settings.items()]
    result = {
        "benchmark": "deep_autoencoder",
        "command": "benchmarks/deep_autoencoder.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.date.today().isoformat(),
        "device": {"cpu_model": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "parameters": n_params,
        "training_images": args.n,
        "seconds_per_contender": args.seconds,
        "total_seconds": time.perf_counter() - start,
        "runs": runs,
    }
    if args.json:
        write_json(result, args.json)
    if args.png:
        plot(runs, args.png)
    return result


def plot(runs, path):
    """Two panels to ``path``: each contender's training squared error per image (on the
    2,000-image monitoring subset, log scale) against training wall time (left) and
    against parameter updates (right, symlog) — equal time, and what each did with it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in runs:
        t = [p["seconds"] for p in r["curve"]]
        err = [p["train_squared_error"] for p in r["curve"]]
        ax[0].plot(t, err, label=r["name"])
        ax[1].plot([p["steps"] for p in r["curve"]], err, label=r["name"])
    ax[0].set(xlabel="training wall time (s)", ylabel="training squared error per image", yscale="log",
              title="CURVES autoencoder, equal wall time")
    ax[1].set(xlabel="parameter updates", xscale="symlog", yscale="log", title="the same, against updates")
    ax[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
