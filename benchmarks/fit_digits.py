"""End-to-end ``model.fit`` epoch time on digits: keras_optlab optimizers vs Keras'.

The same MLP (64 → ``--hidden`` → ``--hidden`` → 10, tanh, softmax cross-entropy) on
scikit-learn's bundled digits (``keras_optlab.lab.data.load_digits``: 1437 training
samples, standardized) is trained by each keras_optlab optimizer and by its Keras
counterpart (the pairs of ``optimizer_step.py``), one epoch of ``--batch-size`` per
timed ``fit`` call, with ``model.compile(jit_compile=...)`` as chosen (default
``"auto"``, which is Keras' default and means no XLA on a CPU-only machine).

Method: both models start from the same weights; each is compiled and warmed up by
one untimed epoch (tracing). Then ``--rounds`` rounds; in each round every contender
runs one epoch, contenders alternating and the order flipped every other round. The
models keep training across rounds (the optimizer state is real, not reset).
Reported: the median epoch time of each side and the ratio ours/Keras as the median
of per-round ratios (paired rounds absorb load bursts from other processes).
Target (issue 7): ratio ≤ 1.0.

Run from the repository root:

    .venv/bin/python benchmarks/fit_digits.py                   # ~2 min on 2 cores
    .venv/bin/python benchmarks/fit_digits.py --jit-compile true
    .venv/bin/python benchmarks/fit_digits.py --quick           # smoke run

Results: ``--json`` (default ``benchmarks/results/fit_digits_cpu.json``; ``''`` for
none) with the CPU model, cores, date and library versions.
"""

import argparse
import datetime
import gc
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import write_json  # noqa: E402

from optimizer_step import PAIRS, device_info, versions  # noqa: E402  (the same pairs)

from keras_optlab.lab.data import load_digits  # noqa: E402

DEFAULT_JSON = os.path.join(HERE, "results", "fit_digits_cpu.json")
TARGET = 1.0


def make_model(hidden, seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hidden, activation="tanh"),
            keras.layers.Dense(hidden, activation="tanh"),
            keras.layers.Dense(10),
        ]
    )


class Contender:
    def __init__(self, label, factory, weights, hidden, jit_compile, x, y, batch_size):
        self.label = label
        self.model = make_model(hidden, 0)
        self.model.set_weights(weights)
        self.model.compile(
            optimizer=factory(),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit_compile,
        )
        self.x, self.y, self.batch_size = x, y, batch_size
        self.times = []
        self.losses = []

    def epoch(self):
        start = time.perf_counter()
        history = self.model.fit(self.x, self.y, batch_size=self.batch_size, epochs=1, shuffle=False, verbose=0)
        elapsed = time.perf_counter() - start
        self.losses.append(float(history.history["loss"][-1]))
        return elapsed


def bench_pair(name, x, y, args, jit_compile):
    ours_factory, keras_factory, keras_desc, note = PAIRS[name]
    weights = make_model(args.hidden, 0).get_weights()
    contenders = [
        Contender(label, f, weights, args.hidden, jit_compile, x, y, args.batch_size)
        for label, f in (("ours", ours_factory), ("keras", keras_factory))
    ]
    try:
        for c in contenders:
            for _ in range(args.warmup):
                c.epoch()
        for r in range(args.rounds):
            for c in contenders if r % 2 == 0 else contenders[::-1]:
                c.times.append(c.epoch() * 1e3)
        ours, theirs = contenders[0].times, contenders[1].times
        entry = {
            "optimizer": name,
            "keras": keras_desc,
            "note": note,
            "jit_compile": jit_compile,
            "ours_ms": statistics.median(ours),
            "keras_ms": statistics.median(theirs),
            "ratio": statistics.median(a / b for a, b in zip(ours, theirs)),
            "target": TARGET,
            "ours_ms_rounds": ours,
            "keras_ms_rounds": theirs,
            "final_loss": {"ours": contenders[0].losses[-1], "keras": contenders[1].losses[-1]},
        }
        entry["meets_target"] = entry["ratio"] <= TARGET
        return entry
    finally:
        del contenders
        keras.backend.clear_session()
        gc.collect()


def format_table(results):
    header = f"{'optimizer':<16} {'jit':<5} {'ours ms':>9} {'keras ms':>9} {'ratio':>6} {'target':>6} {'ok':<3}  keras counterpart"
    lines = [header, "-" * len(header)]
    for e in results:
        lines.append(
            f"{e['optimizer']:<16} {str(e['jit_compile']):<5} {e['ours_ms']:9.1f} {e['keras_ms']:9.1f} {e['ratio']:6.2f} "
            f"{e['target']:6.2f} {'yes' if e['meets_target'] else 'NO':<3}  {e['keras']}" + ("*" if e["note"] else "")
        )
    for n in sorted({e["note"] for e in results if e["note"]}):
        lines.append(f"* {n}")
    return "\n".join(lines)


def parse_jit(text):
    return {"auto": "auto", "true": True, "false": False}[text.lower()]


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--optimizers", default=",".join(PAIRS), help=f"comma-separated subset of {','.join(PAIRS)}")
    p.add_argument("--hidden", type=int, default=None, help="hidden width (default 512; --quick 32)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=None, help="timed epochs per contender (default 7; --quick 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first (default 1)")
    p.add_argument("--jit-compile", type=parse_jit, nargs="+", default=["auto"], help="auto, true, false (several: each)")
    p.add_argument("--quick", action="store_true", help="hidden 32, 2 rounds: a smoke run")
    p.add_argument("--json", default=DEFAULT_JSON, help="where to write results (default %(default)s); '' for none")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if keras.backend.backend() != "tensorflow":
        raise SystemExit(f"this benchmark needs KERAS_BACKEND=tensorflow (got {keras.backend.backend()})")
    args.hidden = args.hidden or (32 if args.quick else 512)
    args.rounds = args.rounds or (2 if args.quick else 7)
    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    unknown = [n for n in names if n not in PAIRS]
    if unknown:
        raise SystemExit(f"unknown optimizer(s) {unknown}; choose from {list(PAIRS)}")
    x, y, _, _ = load_digits()
    params = make_model(args.hidden, 0).count_params()
    print(
        f"fit on digits: {len(x)} samples, batch {args.batch_size} ({-(-len(x) // args.batch_size)} steps/epoch), "
        f"MLP 64-{args.hidden}-{args.hidden}-10 ({params:,} params), {args.rounds} rounds",
        flush=True,
    )
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    results = []
    for jit in args.jit_compile:
        for name in names:
            e = bench_pair(name, x, y, args, jit)
            results.append(e)
            print(
                f"  {name:<16} jit={str(jit):<5} ours {e['ours_ms']:7.1f} ms  keras {e['keras_ms']:7.1f} ms  "
                f"ratio {e['ratio']:.2f}",
                flush=True,
            )
    print()
    print(format_table(results))
    report = {
        "benchmark": "fit_digits",
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/fit_digits.py"] + list(sys.argv[1:] if argv is None else argv)),
        "device": device_info(),
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "versions": versions(),
        "config": {
            "samples": int(len(x)),
            "batch_size": args.batch_size,
            "hidden": args.hidden,
            "params": int(params),
            "rounds": args.rounds,
            "warmup_epochs": args.warmup,
            "jit_compile": args.jit_compile,
            "optimizers": names,
            "ratio": "median over rounds of (ours epoch ms / keras epoch ms) in the same round",
        },
        "target": TARGET,
        "results": results,
    }
    if args.json:
        write_json(report, args.json)
    return report


if __name__ == "__main__":
    main()
