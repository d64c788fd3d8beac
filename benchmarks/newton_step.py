"""Step time of Newton-CG through ``SecondOrder`` next to a plain SGD step (CPU; any backend).

One training step on the digits MLP (64 → ``--hidden`` tanh → 10 logits, softmax
cross-entropy from logits, one batch of ``--batch-size`` training samples), through
``model.train_on_batch`` (Keras' own train function of the backend: ``tf.function`` on
TensorFlow, ``jax.jit`` of the stateless step on JAX, eager on torch):

    newton  keras_optlab.SecondOrder(mlp) compiled with
            Newton(solver="cg", max_cg_iterations=--cg-iterations): one Newton step,
            H p by Hessian-vector products (the backend's autodiff adapter), CG
            warm-started from the previous direction
    sgd     the same architecture (same initial weights), compiled with
            keras_optlab.optimizers.SGD(0.05): one gradient step (Keras' train_step)

Method: both models are built and their train functions traced by ``--warmup`` calls
before timing. ``--rounds`` rounds; in each round each contender runs ``--steps``
steps back to back, contenders interleaved (order flipped every other round). A step
ends with ``train_on_batch``'s host read of the loss (a sync on every backend; JAX's
dispatch is asynchronous, so this also waits for the step). Reported: the median ms/step
of each side and the ratio newton/sgd as the median of the per-round ratios (paired
rounds absorb load bursts that hit both sides), and the CG iterations the last Newton
steps used (``Newton.cg_iterations``). The machine's load average (``os.getloadavg``)
is recorded before and after.

Run from the repository root:

    .venv/bin/python benchmarks/newton_step.py                     # $KERAS_BACKEND or tensorflow
    .venv/bin/python benchmarks/newton_step.py --backend jax       # or torch
    .venv/bin/python benchmarks/newton_step.py --quick --json ''   # smoke run

Results: ``--json`` (default ``benchmarks/results/newton_step_cpu.json`` on TensorFlow,
``newton_step_<backend>_cpu.json`` on the others; ``''`` for none) with the CPU model,
cores, date, backend and library versions.
"""

import argparse
import datetime
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import BACKENDS, backend_and_json, rerun_with_backend, select_backend, write_json  # noqa: E402

select_backend(__name__ == "__main__")  # before keras is imported

import keras  # noqa: E402
import numpy as np  # noqa: E402

from optimizer_step import device_info, versions  # noqa: E402  (one copy of the device block)

import keras_optlab  # noqa: E402
from keras_optlab import optimizers  # noqa: E402
from keras_optlab.lab.data import load_digits  # noqa: E402
from keras_optlab.lab.models import digits_mlp  # noqa: E402


def framework_versions(backend):
    if backend == "jax":
        import jax

        return {"jax": jax.__version__, "jax_devices": [str(d) for d in jax.devices()]}
    if backend == "torch":
        import torch

        return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    return {}


def loss_fn():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def make_models(hidden, cg_iterations, seed, cg_tolerance=1e-5, damping=1e-4):
    """(SecondOrder with Newton-CG, plain model with SGD), same initial weights."""
    inner = digits_mlp((hidden,), "tanh", seed=seed, output_activation=None, name="newton_mlp")
    plain = digits_mlp((hidden,), "tanh", seed=seed, output_activation=None, name="sgd_mlp")
    newton = keras_optlab.SecondOrder(inner)
    newton_optimizer = optimizers.Newton(solver="cg", max_cg_iterations=cg_iterations, cg_tolerance=cg_tolerance,
                                         damping=damping)
    newton.compile(optimizer=newton_optimizer, loss=loss_fn())
    plain.compile(optimizer=optimizers.SGD(0.05), loss=loss_fn())
    return newton, plain, newton_optimizer


def paired_rounds(contenders, rounds, steps):
    """contenders: {name: one-step callable}. Returns {name: [ms per step, one per round]}."""
    times = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            step = contenders[name]
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times[name].append(1e3 * (time.perf_counter() - start) / steps)
    return times


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=BACKENDS, default=None, help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    p.add_argument("--hidden", type=int, default=32, help="hidden units (default 32: 64→32→10, 2,410 params)")
    p.add_argument("--batch-size", type=int, default=256, help="samples in the one training batch (default 256)")
    p.add_argument("--cg-iterations", type=int, default=10, help="Newton's max_cg_iterations (default 10)")
    p.add_argument(
        "--cg-tolerance", type=float, default=1e-5,
        help="Newton's cg_tolerance, relative to |g| (default 1e-5, Newton's own; 1e-30 makes CG run "
        "its max_cg_iterations unless it stops on non-positive curvature)",
    )
    p.add_argument(
        "--damping", type=float, default=1e-4,
        help="Newton's damping α (default 1e-4, Newton's own); CG stops at non-positive curvature of "
        "H + αI (Steihaug), so a larger α lets it run more iterations on this non-convex loss",
    )
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 7; --quick 2)")
    p.add_argument("--steps", type=int, default=None, help="steps per round and contender (default 10; --quick 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per contender first (default 3; --quick 1)")
    p.add_argument("--threads", type=int, default=None, help="torch backend: torch.set_num_threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 2 steps, warm-up 1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="where to write results (default: see above); '' for none")
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    backend, argv = backend_and_json(args, argv, "newton_step", tensorflow_file="newton_step_cpu.json")
    if backend != keras.backend.backend():
        return rerun_with_backend(__file__, backend, argv, args.json)
    rounds = args.rounds or (2 if args.quick else 7)
    steps = args.steps or (2 if args.quick else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    if backend == "torch" and args.threads:
        import torch

        torch.set_num_threads(args.threads)

    x_train, y_train, _, _ = load_digits()
    x, y = x_train[: args.batch_size], y_train[: args.batch_size].astype("int32")
    newton, plain, newton_optimizer = make_models(args.hidden, args.cg_iterations, args.seed, args.cg_tolerance, args.damping)
    params = int(sum(np.prod(v.shape) for v in plain.trainable_variables))
    print(
        f"newton step ({backend}): digits MLP 64→{args.hidden}→10 ({params:,} params), batch {len(x)}, "
        f"Newton(solver='cg', max_cg_iterations={args.cg_iterations}, cg_tolerance={args.cg_tolerance:g}, damping={args.damping:g}) vs SGD; {rounds} rounds x {steps} steps, "
        f"warm-up {warmup}; Keras {keras.__version__}",
        flush=True,
    )
    losses = {"newton": [], "sgd": []}

    def newton_step():
        losses["newton"].append(float(newton.train_on_batch(x, y)))

    def sgd_step():
        losses["sgd"].append(float(plain.train_on_batch(x, y)))

    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    for _ in range(warmup):
        newton_step()
        sgd_step()
    cg_after_warmup = int(keras.ops.convert_to_numpy(newton_optimizer.cg_iterations))
    cg_used = []
    times = paired_rounds({"newton": newton_step, "sgd": sgd_step}, rounds, steps)
    cg_last = int(keras.ops.convert_to_numpy(newton_optimizer.cg_iterations))
    # CG iterations of a few more steps, read one by one (untimed: a host read per step).
    for _ in range(3):
        newton_step()
        cg_used.append(int(keras.ops.convert_to_numpy(newton_optimizer.cg_iterations)))
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    ratios = [n / s for n, s in zip(times["newton"], times["sgd"])]
    result = {
        "newton_ms": statistics.median(times["newton"]),
        "sgd_ms": statistics.median(times["sgd"]),
        "ratio": statistics.median(ratios),
        "ratio_of_medians": statistics.median(times["newton"]) / statistics.median(times["sgd"]),
        "newton_ms_rounds": times["newton"],
        "sgd_ms_rounds": times["sgd"],
        "ratios": ratios,
        "cg_iterations": {
            "max": args.cg_iterations,
            "tolerance": args.cg_tolerance,
            "damping": args.damping,
            "after_warmup": cg_after_warmup,
            "last_timed_step": cg_last,
            "next_steps": cg_used,
        },
        "loss": {
            "newton_first": losses["newton"][0],
            "newton_last": losses["newton"][-1],
            "sgd_first": losses["sgd"][0],
            "sgd_last": losses["sgd"][-1],
        },
    }
    print(f"{'contender':10} {'ms/step':>9}")
    print(f"{'newton-cg':10} {result['newton_ms']:9.2f}")
    print(f"{'sgd':10} {result['sgd_ms']:9.2f}")
    print(
        f"ratio newton-cg / sgd (median of paired rounds) {result['ratio']:.1f}; CG iterations used "
        f"(max {args.cg_iterations}): {cg_used}; loss newton {losses['newton'][0]:.3f} -> {losses['newton'][-1]:.3f}, "
        f"sgd {losses['sgd'][0]:.3f} -> {losses['sgd'][-1]:.3f}"
    )
    report = {
        "benchmark": "newton_step",
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/newton_step.py", *argv]),
        "backend": backend,
        "device": device_info(),
        "versions": {**versions(), **framework_versions(backend)},
        "load_average_1_5_15min": {"before": list(load_before) if load_before else None,
                                   "after": list(load_after) if load_after else None},
        "config": {
            "model": f"64-{args.hidden}-10 tanh MLP, logits, SparseCategoricalCrossentropy(from_logits=True)",
            "params": params,
            "batch_size": len(x),
            "newton": f"SecondOrder + Newton(solver='cg', max_cg_iterations={args.cg_iterations}, "
            f"cg_tolerance={args.cg_tolerance:g}, damping={args.damping:g})",
            "sgd": "keras_optlab.optimizers.SGD(0.05), Keras' train_step",
            "step": "model.train_on_batch(x, y) (host read of the loss: a sync)",
            "rounds": rounds,
            "steps": steps,
            "warmup": warmup,
            "ratio": "median over rounds of (newton ms / sgd ms) in the same round",
        },
        "result": result,
    }
    if args.json:
        write_json(report, args.json)
    return report


if __name__ == "__main__":
    main()
