"""Cost of keras_optlab's curvature diagnostics (CPU; TensorFlow, JAX or PyTorch backend).

1. **HVP / gradient.** Time of one Hessian-vector product of a model's compiled loss
   (``keras_optlab.curvature.hvp``, double backprop, Pearlmutter 1994) over the time of
   one gradient of the same loss on the same batch
   (``keras_optlab.curvature.model_loss_and_gradient``). Both are the package's own
   cached functions of the backend's autodiff adapter (TF: ``tf.function`` of nested
   tapes; JAX: ``jax.jit`` of ``jax.jvp(jax.grad)``; torch: eager double backprop),
   traced before timing. A timed block ends with a sync of its last result (JAX:
   ``jax.block_until_ready``, its dispatch is asynchronous; else a host read of one
   tensor). Target (issue 5): ≤ 2.5×.

       mlp   64 → 256 → 256 → 10 (tanh), softmax cross-entropy, batch 512   (85k params)
       lstm  LSTM(64) over 32 steps of 16 features → Dense(1), MSE, batch 64 (21k params)

2. **CurvatureMonitor overhead on fit.** ``fit`` of a digits MLP (64 → 128 tanh → 10,
   keras_optlab SGD, batch 32, 45 batches per epoch) with and without
   ``CurvatureMonitor`` at its defaults (``every_n_batches=50``, ``top_eigenvalue=True``,
   5 warm-started Lanczos steps). The monitor batch is the training batch size (32) and,
   as a second case, 256 samples; a third case turns ``top_eigenvalue`` off (batch 32). Target (issue 5): ≤ 5% at the default interval.
   Reported two ways: the paired ratio of whole-fit times minus one ("overhead"), and
   the wall time spent inside the monitor's hook over the rest of the same fit
   ("in-callback"), which does not difference two noisy totals.

Method: everything is traced/warmed up before timing. ``--rounds`` rounds; in each
round the contenders run back to back, order flipped every other round. Reported: the
median time of each contender, and the ratio as the median of the per-round ratios
(paired rounds absorb load bursts that hit both sides). fit contenders train the same
model object (one traced training step), each round continuing from the last.
The machine's load average is recorded before and after (`os.getloadavg`).

Run from the repository root:

    .venv/bin/python benchmarks/curvature_cost.py            # ~2 min on 2 cores
    .venv/bin/python benchmarks/curvature_cost.py --quick    # smoke run
    .venv/bin/python benchmarks/curvature_cost.py --backend jax    # or torch
    .venv/bin/python benchmarks/curvature_cost.py --backend torch --no-monitor

``--backend`` (default ``$KERAS_BACKEND``, else tensorflow) chooses the Keras backend;
run as a script it is set before keras is imported, loaded as a module whose keras
already runs another backend the script re-runs itself in a child process.
``--no-monitor`` leaves part 2 out.

Results: ``--json`` (default ``benchmarks/results/curvature_cost_cpu.json`` on
TensorFlow, ``curvature_cost_<backend>_cpu.json`` on the others; ``''`` for none) with
the CPU model, cores, date, backend and library versions.
"""

import argparse
import datetime
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import BACKENDS, backend_and_json, rerun_with_backend, select_backend, sync, write_json  # noqa: E402

select_backend(__name__ == "__main__")  # before keras is imported

import keras  # noqa: E402
import numpy as np  # noqa: E402

from optimizer_step import device_info, versions  # noqa: E402  (one copy of the device block)

from keras_optlab import curvature, optimizers  # noqa: E402
from keras_optlab.callbacks import CurvatureMonitor  # noqa: E402
from keras_optlab.lab.data import load_digits  # noqa: E402

TARGETS = {"hvp_over_gradient": 2.5, "monitor_overhead": 0.05}


def mlp_case(batch):
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="tanh"),
            keras.layers.Dense(256, activation="tanh"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    return model, rng.standard_normal((batch, 64)).astype("float32"), rng.integers(0, 10, batch)


def lstm_case(batch, steps=32):
    model = keras.Sequential([keras.Input((steps, 16)), keras.layers.LSTM(64), keras.layers.Dense(1)])
    model.compile(loss="mse")
    rng = np.random.default_rng(0)
    return model, rng.standard_normal((batch, steps, 16)).astype("float32"), rng.standard_normal((batch, 1))


def paired_rounds(contenders, rounds):
    """contenders: {name: zero-arg callable timed as a whole}. Returns {name: [seconds]}."""
    times = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return times


def summarize(times, base, other):
    ratios = [o / b for b, o in zip(times[base], times[other])]
    return {
        f"{base}_s": statistics.median(times[base]),
        f"{other}_s": statistics.median(times[other]),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
    }


def hvp_vs_gradient(name, model, x, y, calls, rounds):
    vectors = [np.random.default_rng(1).standard_normal(v.shape).astype("float32") for v in model.trainable_variables]
    vectors = curvature.hvp(model, x, y, vectors)  # also traces; tensors from now on

    def gradient():
        for _ in range(calls):
            _, grads = curvature.model_loss_and_gradient(model, x, y)
        sync(grads)

    def product():
        for _ in range(calls):
            hv = curvature.hvp(model, x, y, vectors)
        sync(hv)

    gradient()
    product()
    result = summarize(paired_rounds({"gradient": gradient, "hvp": product}, rounds), "gradient", "hvp")
    result["gradient_ms"] = 1e3 * result.pop("gradient_s") / calls
    result["hvp_ms"] = 1e3 * result.pop("hvp_s") / calls
    result["params"] = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    result["case"] = name
    return result


class TimedMonitor(CurvatureMonitor):
    """CurvatureMonitor that adds up the wall time spent in its batch hook."""

    spent = 0.0

    def on_train_batch_end(self, batch, logs=None):
        start = time.perf_counter()
        super().on_train_batch_end(batch, logs)
        self.spent += time.perf_counter() - start


def monitor_overhead(monitor_batch, epochs, rounds, top_eigenvalue=True):
    x, y, _, _ = load_digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="tanh"), keras.layers.Dense(10)])
    model.compile(
        optimizer=optimizers.SGD(0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    monitors = []
    # The monitor measures at batches n, 2n, ... of fit (1-based): every 50 steps, or
    # once per fit when a fit is shorter (--quick: one epoch of 45 batches).
    every = min(50, epochs * int(np.ceil(len(x) / 32)))

    def fit(with_monitor):
        def run():
            callbacks = []
            if with_monitor:
                callbacks.append(TimedMonitor(x[:monitor_batch], y[:monitor_batch], every_n_batches=every,
                                              top_eigenvalue=top_eigenvalue))
                monitors.append(callbacks[0])
            model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=callbacks)
            sync([v.value for v in model.trainable_variables])  # JAX: fit may return before its last steps ran

        return run

    for _ in range(2):  # traces the training step and the monitor's functions
        fit(True)()
        fit(False)()
    monitors.clear()
    times = paired_rounds({"plain": fit(False), "monitored": fit(True)}, rounds)
    result = summarize(times, "plain", "monitored")
    result["overhead"] = result["ratio"] - 1.0
    # Less noisy on a shared machine: the time spent inside the monitor over the rest of
    # the same monitored fit (no difference of two separately timed runs).
    shares = [m.spent / (t - m.spent) for m, t in zip(monitors, times["monitored"])]
    result["in_callback_share"] = statistics.median(shares)
    result["in_callback_ms_per_measurement"] = statistics.median(
        1e3 * m.spent / len(m.measurements) for m in monitors
    )
    result["monitor_batch"] = monitor_batch
    result["top_eigenvalue"] = top_eigenvalue
    result["steps_per_fit"] = epochs * int(np.ceil(len(x) / 32))
    result["measurements_per_fit"] = len(monitors[0].measurements)
    return result


def framework_versions(backend):
    if backend == "jax":
        import jax

        return {"jax": jax.__version__, "jax_devices": [str(d) for d in jax.devices()]}
    if backend == "torch":
        import torch

        return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    return {}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20, help="gradient/HVP calls per round")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per timed fit")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 rounds, small sizes")
    parser.add_argument("--json", default=None, help="where to write results (default results/curvature_cost_cpu.json "
                        "on TensorFlow, results/curvature_cost_<backend>_cpu.json otherwise); '' for none")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--no-monitor", action="store_true", help="leave out the CurvatureMonitor fit overhead")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    backend, argv = backend_and_json(args, argv, "curvature_cost", tensorflow_file="curvature_cost_cpu.json")
    if backend != keras.backend.backend():
        return rerun_with_backend(__file__, backend, argv, args.json)
    if args.quick:
        args.rounds, args.calls, args.epochs = 3, 2, 1
    keras.utils.set_random_seed(0)
    load_before = os.getloadavg()

    hvp_rows = [
        hvp_vs_gradient("mlp", *mlp_case(64 if args.quick else 512), args.calls, args.rounds),
        hvp_vs_gradient("lstm", *lstm_case(8 if args.quick else 64, 4 if args.quick else 32), args.calls, args.rounds),
    ]
    monitor_rows = [] if args.no_monitor else [
        monitor_overhead(b, args.epochs, args.rounds, top) for b, top in ((32, True), (256, True), (32, False))
    ]

    print(f"backend {backend}: HVP / gradient (target <= {TARGETS['hvp_over_gradient']}x), median of {args.rounds} rounds")
    print(f"{'case':6} {'params':>7} {'grad ms':>8} {'HVP ms':>8} {'ratio':>6}")
    for r in hvp_rows:
        print(f"{r['case']:6} {r['params']:7d} {r['gradient_ms']:8.3f} {r['hvp_ms']:8.3f} {r['ratio']:6.2f}")
    print(f"\nCurvatureMonitor overhead on fit (target <= {TARGETS['monitor_overhead']:.0%}), defaults")
    print(
        f"{'monitor batch':>13} {'lambda_max':>10} {'steps':>6} {'measured':>8} {'plain s':>8} {'monitored s':>11} "
        f"{'overhead':>8} {'in-callback':>11} {'ms/measure':>10}"
    )
    for r in monitor_rows:
        print(
            f"{r['monitor_batch']:13d} {str(r['top_eigenvalue']):>10} {r['steps_per_fit']:6d} {r['measurements_per_fit']:8d} "
            f"{r['plain_s']:8.3f} {r['monitored_s']:11.3f} {r['overhead']:8.1%} "
            f"{r['in_callback_share']:11.1%} {r['in_callback_ms_per_measurement']:10.2f}"
        )

    report = {
        "benchmark": "curvature_cost",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/curvature_cost.py", *argv]),
        "backend": backend,
        "device": device_info(),
        "versions": {**versions(), **framework_versions(backend)},
        "settings": vars(args),
        "load_average_1_5_15min": {"before": load_before, "after": os.getloadavg()},
        "targets": TARGETS,
        "hvp_over_gradient": hvp_rows,
        "monitor_overhead": monitor_rows,
    }
    if args.json:
        write_json(report, args.json)
    return report


if __name__ == "__main__":
    main()
