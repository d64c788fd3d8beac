"""Hessian-free Newton vs Adam on a deep autoencoder of digits: reconstruction error
against wall time (Martens 2010 reports HF winning on deep autoencoders; measure here).

    .venv/bin/python benchmarks/hessian_free_autoencoder.py [--seconds 60] [--json PATH]

Each optimizer trains the same autoencoder (same initial weights) for the same wall-time
budget; after every epoch the validation reconstruction MSE and the elapsed training
time are recorded. Also reported: the cost of one CG Newton step in gradient
evaluations (time of a Newton step / time of a gradient on the same batch, and the
number of CG iterations, each one Hessian-vector product).
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
import tensorflow as tf  # noqa: E402

import keras_optlab as ko  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_json  # noqa: E402

LAYERS = (32, 16, 4, 16, 32)


def digits_01():
    from sklearn.datasets import load_digits

    x = (load_digits().data / 16.0).astype("float32")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    return x[order[:1400]], x[order[1400:]]


def autoencoder(seed=0):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((64,))] + [keras.layers.Dense(n, activation="tanh") for n in LAYERS]
    return keras.Sequential(layers + [keras.layers.Dense(64, activation="sigmoid")])


def run(name, make_model, optimizer, x, x_val, batch_size, seconds):
    model = make_model()
    model.compile(optimizer=optimizer, loss="mse")
    curve = [(0.0, float(model.evaluate(x_val, x_val, verbose=0)))]
    elapsed, epochs = 0.0, 0
    while elapsed < seconds:
        start = time.perf_counter()
        model.fit(x, x, batch_size=batch_size, epochs=1, verbose=0)
        elapsed += time.perf_counter() - start
        epochs += 1
        curve.append((elapsed, float(model.evaluate(x_val, x_val, verbose=0))))
    print(f"{name:>22}: {epochs:4d} epochs in {elapsed:6.1f} s, validation MSE {curve[-1][1]:.5f}", flush=True)
    return {"name": name, "epochs": epochs, "curve": curve, "final_val_mse": curve[-1][1]}


def newton_step_cost(x, repeats=5):
    """Median time of one CG Newton step / median time of one gradient, same batch."""
    inner = autoencoder()
    variables = inner.trainable_variables
    batch = tf.constant(x)

    def loss_fn():
        return tf.reduce_mean(tf.square(inner(batch, training=True) - batch))

    @tf.function
    def gradient():
        with tf.GradientTape() as tape:
            loss = loss_fn()
        return tape.gradient(loss, variables)

    opt = ko.Newton(damping=1.0, solver="cg", max_cg_iterations=20)
    step = tf.function(lambda: opt.newton_step(loss_fn, variables))
    gradient(), step()  # trace
    g_times, n_times, iterations = [], [], []
    for _ in range(repeats):
        t = time.perf_counter(); gradient(); g_times.append(time.perf_counter() - t)  # noqa: E702
        t = time.perf_counter(); step(); n_times.append(time.perf_counter() - t)  # noqa: E702
        iterations.append(int(opt.cg_iterations))
    return {
        "gradient_ms": 1e3 * float(np.median(g_times)),
        "newton_step_ms": 1e3 * float(np.median(n_times)),
        "gradient_evaluations_per_step": float(np.median(n_times) / np.median(g_times)),
        "cg_iterations": iterations,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training time budget per optimizer")
    parser.add_argument("--json", default="benchmarks/results/hessian_free_autoencoder_cpu.json")
    parser.add_argument("--png", default=None, help="also plot the curves (needs matplotlib)")
    args = parser.parse_args(argv)

    x, x_val = digits_01()
    n_params = autoencoder().count_params()
    print(f"autoencoder 64-{'-'.join(map(str, LAYERS))}-64, {n_params} parameters, "
          f"{len(x)} training / {len(x_val)} validation digits, {args.seconds:.0f} s each")
    runs = [
        run("Adam 1e-3, batch 64", autoencoder, ko.Adam(1e-3), x, x_val, 64, args.seconds),
        run("Adam 3e-3, batch 64", autoencoder, ko.Adam(3e-3), x, x_val, 64, args.seconds),
        run("HF Newton, batch 700", lambda: ko.SecondOrder(autoencoder()),
            ko.Newton(damping=1.0, solver="cg", adaptive_damping=True, max_cg_iterations=30), x, x_val, 700,
            args.seconds),
        run("HF Gauss-Newton, batch 700", lambda: ko.SecondOrder(autoencoder()),
            ko.Newton(damping=1.0, solver="cg", adaptive_damping=True, max_cg_iterations=30, curvature="gauss_newton"),
            x, x_val, 700, args.seconds),
    ]
    cost = newton_step_cost(x[:700])
    print(f"one CG Newton step = {cost['gradient_evaluations_per_step']:.1f} gradient times "
          f"({cost['newton_step_ms']:.1f} ms vs {cost['gradient_ms']:.2f} ms; CG iterations {cost['cg_iterations']})")
    result = {
        "benchmark": "hessian_free_autoencoder",
        "date": datetime.date.today().isoformat(),
        "device": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "parameters": n_params,
        "seconds_per_optimizer": args.seconds,
        "runs": runs,
        "newton_step_cost": cost,
    }
    write_json(result, args.json)
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for r in runs:
            t, mse = zip(*r["curve"])
            ax.plot(t, mse, label=r["name"])
        ax.set(xlabel="training wall time (s)", ylabel="validation reconstruction MSE", yscale="log",
               title="Deep autoencoder of digits: Hessian-free Newton vs Adam")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.png, dpi=100)
    return result


if __name__ == "__main__":
    main()
