"""Build time and step time of keras_optlab's CPU kernels under different ISA flags.

Each variant is a value of ``KERAS_OPTLAB_CPU_FLAGS`` (see keras_optlab.accel.cpu):
``portable`` is the default chain of this machine (no override), ``baseline`` is no ISA
flags at all (the chain's last fallback, which builds on every CPU TensorFlow runs on),
``native`` is ``-march=native``; ``--variant NAME=FLAGS`` adds others (``NAME=`` with
nothing after ``=``: no ISA flags). The default pair, portable and baseline, builds
everywhere; ``native`` is built only when named, since TF's Eigen headers do not compile
with it on CPUs with AVX512-FP16 (it is then reported as a failed build). Every variant is built by keras_optlab.accel.cpu's own
build into its own temporary cache directory (``KERAS_OPTLAB_CACHE``), in its own
process, and its build time is reported (a variant whose build fails is reported
with the compiler's first error and left out of the timing).

Timing: TensorFlow registers a library's ops for good, so each measurement runs in a
fresh process that loads one library. It calls the ops ``KerasOptlab>BookApplyAdam``
and ``KerasOptlab>BookApplyMomentum`` directly on ``--size`` float32 parameters (var,
slots and gradient created once, outside the timed region) from a ``tf.function``
(no XLA): ``--warmup`` calls, then ``--steps`` calls timed one by one; the process
reports the median ms per call of each op. ``--runs`` rounds interleave the variants
(the order flipped every other round). Reported: the median over rounds of each
variant's per-round median, and the ratio of each variant to the last one named
(``portable/baseline`` by default) as the median of the per-round ratios (paired rounds).

Run from the repository root:

    python benchmarks/kernel_flags.py                      # 10M params, 5 rounds, portable vs baseline
    python benchmarks/kernel_flags.py --variant portable --variant native   # against this CPU's -march=native
    python benchmarks/kernel_flags.py --build-only --variant "v4=-march=x86-64-v4 -mtune=generic"
    python benchmarks/kernel_flags.py --size 1000 --runs 1 --steps 2   # smoke run
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OPS = ("adam", "momentum")


def parse_variant(text):
    """``"portable"`` -> ("portable", None: no override); ``"baseline"`` -> no ISA flags
    (``";"``); ``"native"`` -> -march=native;
    ``"NAME=FLAGS"`` -> (NAME, FLAGS), an empty FLAGS meaning no ISA flags (``";"``)."""
    if text == "portable":
        return "portable", None
    if text == "baseline":
        return "baseline", ";"
    if text == "native":
        return "native", "-march=native"
    name, sep, flags = text.partition("=")
    if not sep or not name or name.startswith("-") or any(c.isspace() for c in name):
        raise argparse.ArgumentTypeError(f"a variant is portable, baseline, native or NAME=FLAGS. Received: {text!r}")
    return name, flags.strip() or ";"


def environment(cache, flags):
    env = dict(os.environ, KERAS_OPTLAB_CACHE=cache, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3",
               KERAS_OPTLAB_KERNELS="1")
    env.pop("KERAS_OPTLAB_CPU_FLAGS", None)
    if flags is not None:
        env["KERAS_OPTLAB_CPU_FLAGS"] = flags
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    return env


def worker(args, env):
    """Run this script's ``--worker`` mode in a fresh process; return its JSON line."""
    done = subprocess.run([sys.executable, os.path.abspath(__file__), *args], env=env, capture_output=True,
                          text=True, timeout=1800, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"worker {args} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- worker side


def build_worker():
    from keras_optlab.accel import cpu

    start = time.perf_counter()
    try:
        cpu.build(verbose=False)
        error = None
    except RuntimeError as failure:
        error = str(failure)
    seconds = time.perf_counter() - start
    info = cpu.status()
    tried = info.get("tried") or []
    return {
        "ok": error is None, "seconds": round(seconds, 2), "flags": info.get("flags"), "tried": tried,
        "first_error": next((t["error"] for t in tried if t.get("error")), None),
        "chain": info["flag_sets"],
    }


def time_worker(size, steps, warmup):
    import tensorflow as tf

    from keras_optlab.accel import cpu

    if cpu.load() is None:
        raise SystemExit(f"no kernels: {cpu.status()['error']}")
    rng = tf.random.Generator.from_seed(0)
    grad = rng.normal((size,), dtype=tf.float32)
    variables = {name: tf.Variable(tf.fill((size,), value)) for name, value in
                 (("var", 1.0), ("m", 0.0), ("v", 0.0), ("velocity", 0.0))}
    adam, momentum = cpu.op("adam"), cpu.op("momentum")

    @tf.function(jit_compile=False)
    def adam_step():
        adam(var=variables["var"].handle, m=variables["m"].handle, v=variables["v"].handle, grad=grad,
             one_minus_beta1=0.1, one_minus_beta2=0.001, step_size=1e-3, epsilon=1e-7)

    @tf.function(jit_compile=False)
    def momentum_step():
        momentum(var=variables["var"].handle, velocity=variables["velocity"].handle, grad=grad, lr=1e-3,
                 momentum=0.9)

    out = {"flags": cpu.status()["flags"]}
    for name, step in (("adam", adam_step), ("momentum", momentum_step)):
        graph_ops = [o.type for o in step.get_concrete_function().graph.get_operations()]
        assert cpu.OP_TYPES[name] in graph_ops, graph_ops
        for _ in range(warmup):
            step()
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            step()  # eager call of a tf.function on the CPU: returns when the op has run
            times.append(time.perf_counter() - start)
        out[name] = 1e3 * statistics.median(times)
    return out


# --------------------------------------------------------------------------- driver side


def summarize(rounds, names):
    """Medians over rounds per variant and op, and each variant's ratio to the last
    variant as the median of its per-round ratios."""
    reference = names[-1]
    summary = {}
    for name in names:
        summary[name] = {}
        for op in OPS:
            values = [r[name][op] for r in rounds]
            ratios = [r[name][op] / r[reference][op] for r in rounds]
            summary[name][op] = {"median_ms": statistics.median(values), "runs_ms": values,
                                 f"ratio_to_{reference}": statistics.median(ratios)}
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", action="append", type=parse_variant, default=None,
                        help="portable, baseline, native or NAME=FLAGS (repeatable; default: portable baseline)")
    parser.add_argument("--size", type=int, default=10_000_000, help="float32 parameters (default 10M)")
    parser.add_argument("--runs", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--steps", type=int, default=20, help="timed calls per op and process (default 20)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--build-only", action="store_true", help="report build times, time nothing")
    parser.add_argument("--json", help="also write the report to this file")
    parser.add_argument("--worker", choices=["build", "time"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker == "build":
        print(json.dumps(build_worker()))
        return 0
    if args.worker == "time":
        print(json.dumps(time_worker(args.size, args.steps, args.warmup)))
        return 0

    variants = args.variant or [parse_variant("portable"), parse_variant("baseline")]
    names = [name for name, _ in variants]
    if len(set(names)) != len(names):
        parser.error(f"variant names repeat: {names}")
    caches = {name: tempfile.mkdtemp(prefix=f"kernel_flags-{name}-") for name in names}
    report = {"size": args.size, "runs": args.runs, "steps": args.steps, "builds": {}, "rounds": []}
    try:
        print(f"{'variant':<14} {'flags that built':<36} {'build s':>8}")
        for name, flags in variants:
            built = worker(["--worker", "build"], environment(caches[name], flags))
            report["builds"][name] = dict(built, override=flags)
            shown = " ".join(built["flags"]) if built["ok"] else f"FAILED: {built['first_error']}"
            print(f"{name:<14} {shown or '(no ISA flags)':<36} {built['seconds']:>8.1f}", flush=True)
            for attempt in built["tried"]:
                print(f"{'':<14}   tried {' '.join(attempt['flags']) or '(no ISA flags)'}: {attempt['seconds']} s,"
                      f" exit {attempt['returncode']}")
        if args.build_only:
            return 0
        timed = [(n, f) for n, f in variants if report["builds"][n]["ok"]]
        if not timed:
            raise SystemExit("no variant built")
        timed_names = [n for n, _ in timed]
        for r in range(args.runs):
            order = timed if r % 2 == 0 else timed[::-1]
            result = {}
            for name, flags in order:
                result[name] = worker(["--worker", "time", "--size", str(args.size), "--steps", str(args.steps),
                                       "--warmup", str(args.warmup)], environment(caches[name], flags))
            report["rounds"].append(result)
            print(f"round {r + 1}: " + "  ".join(f"{n} adam {result[n]['adam']:.2f} ms, momentum "
                                                 f"{result[n]['momentum']:.2f} ms" for n in timed_names), flush=True)
        report["summary"] = summarize(report["rounds"], timed_names)
        reference = timed_names[-1]
        print(f"\nmedian ms per call over {args.runs} rounds ({args.size:,} float32 params, ratio: median of "
              f"per-round ratios to {reference})")
        for name in timed_names:
            row = report["summary"][name]
            print(f"{name:<14} " + "  ".join(f"{op} {row[op]['median_ms']:8.2f} ms (x{row[op][f'ratio_to_{reference}']:.3f})"
                                           for op in OPS))
    finally:
        for cache in caches.values():
            shutil.rmtree(cache, ignore_errors=True)
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
                f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
