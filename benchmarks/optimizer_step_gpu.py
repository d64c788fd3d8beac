"""Optimizer step on an accelerator under KERAS_BACKEND=jax: keras_optlab vs Keras vs
optax (vs torch), and against the memory-copy bound.

Written for a machine with JAX and a GPU plus only the keras wheel (no TensorFlow, no
keras-tuner): ``import keras_optlab`` then loads the first-order optimizers, clipping
and initializers and leaves out what needs TensorFlow or Keras Tuner (the smoke test
runs it with both blocked).

Each contender updates ``--params`` float32 parameters split into ``--variables``
equal flat arrays with one fixed set of random gradients:

    ours          keras_optlab optimizer, ``stateless_apply`` in ``jax.jit`` with the
                  state donated — what Keras' JAX trainer does in ``fit``
    keras         keras.optimizers counterpart, the same way
    optax         optax.adam / optax.sgd(momentum) update + apply_updates, jit, donated
    torch         torch.optim.Adam / SGD(momentum) with ``fused=True`` on the GPU
                  (only when torch with CUDA is importable)
    copy bound    bytes moved per step (Adam 28 B/param: reads θ, g, s, r, writes θ, s, r;
                  momentum 20; SGD 12) over the bandwidth of a jitted device copy
                  (``x + 1`` on a donated buffer of the same total size), measured here

Method: everything compiled/warmed before timing; ``--rounds`` rounds of ``--steps``
steps, contenders interleaved, order flipped every other round; every round ends with
``block_until_ready`` (torch: ``cuda.synchronize``). Reported: median ms/step and the
ratios (median of per-round ratios) ours/optax, keras/ours, ours/copy-bound.
Targets (issue 7): Adam and momentum ≤ 1.05× optax, ≥ 1.7× faster than Keras,
≤ 1.25× the copy bound.

    KERAS_BACKEND=jax python benchmarks/optimizer_step_gpu.py                 # 100M params, 50 variables
    KERAS_BACKEND=jax python benchmarks/optimizer_step_gpu.py --quick         # tiny, runs on CPU JAX too

Results: ``--json`` (default ``benchmarks/results/optimizer_step_gpu.json``) with the
device name, date and versions. Nothing measured on CPU here is a GPU number.
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from common import write_json  # noqa: E402
DEFAULT_JSON = os.path.join(HERE, "results", "optimizer_step_gpu.json")
BYTES_PER_PARAM = {"Adam": 28, "Momentum": 20, "SGD": 12}
TARGETS = {"ours_over_optax": 1.05, "keras_over_ours": 1.7, "ours_over_bound": 1.25}


def load_book_optimizers():
    """``keras_optlab.optimizers`` (first-order optimizers need only Keras).

    Returns (the module, how it was loaded — recorded in the JSON).
    """
    from keras_optlab import optimizers

    return optimizers, "import keras_optlab.optimizers"


def optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


# --------------------------------------------------------------------------- contenders


class KerasContender:
    """A Keras optimizer driven by stateless_apply inside jax.jit with donated state."""

    def __init__(self, label, optimizer, shapes, grads, seed):
        self.label = label
        rng = np.random.default_rng(seed)
        variables = [keras.Variable(rng.standard_normal(s, dtype=np.float32) * 0.05) for s in shapes]
        optimizer.build(variables)
        self.params = [v.value for v in variables]
        self.state = [v.value for v in optimizer.variables]
        self.grads = grads

        def step(state, params, grads):
            params, state = optimizer.stateless_apply(state, grads, params)
            return state, params

        self.step = jax.jit(step, donate_argnums=(0, 1))
        self.times = []

    def run(self, steps):
        state, params, grads = self.state, self.params, self.grads
        jax.block_until_ready(params)
        start = time.perf_counter()
        for _ in range(steps):
            state, params = self.step(state, params, grads)
        jax.block_until_ready(params)
        self.state, self.params = state, params
        return time.perf_counter() - start


class OptaxContender:
    def __init__(self, label, transform, shapes, grads, seed):
        import optax

        self.label = label
        rng = np.random.default_rng(seed)
        self.params = [jnp.asarray(rng.standard_normal(s, dtype=np.float32) * 0.05) for s in shapes]
        self.state = transform.init(self.params)
        self.grads = grads

        def step(state, params, grads):
            updates, state = transform.update(grads, state, params)
            return state, optax.apply_updates(params, updates)

        self.step = jax.jit(step, donate_argnums=(0, 1))
        self.times = []

    run = KerasContender.run


class TorchContender:
    def __init__(self, label, make, torch, shapes, grads, seed):
        self.label, self.torch = label, torch
        rng = np.random.default_rng(seed)
        self.params = [
            torch.tensor(rng.standard_normal(s, dtype=np.float32) * 0.05, device="cuda", requires_grad=True) for s in shapes
        ]
        for p, g in zip(self.params, grads):
            p.grad = torch.tensor(np.asarray(g), device="cuda")
        self.optimizer = make(self.params)
        self.times = []

    def run(self, steps):
        sync = self.torch.cuda.synchronize
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            self.optimizer.step()
        sync()
        return time.perf_counter() - start


def copy_step(xs):
    """One read and one write of every element. ``x + 1``, not ``x + 0``: XLA
    simplifies ``x + 0`` to ``x``, and with the buffer donated the "copy" then moves
    nothing (a bound of 0.19 ms for 10M params on CPU before this was caught)."""
    return [x + 1.0 for x in xs]


class CopyContender:
    """A device copy of ``params`` float32 values: ``copy_step`` on a donated buffer
    (one read and one write of 4 B per element) — the bandwidth the bound uses."""

    def __init__(self, shapes):
        self.label = "copy"
        self.x = [jnp.zeros(s, jnp.float32) for s in shapes]
        self.step = jax.jit(copy_step, donate_argnums=0)
        self.times = []

    def run(self, steps):
        x = self.x
        jax.block_until_ready(x)
        start = time.perf_counter()
        for _ in range(steps):
            x = self.step(x)
        jax.block_until_ready(x)
        self.x = x
        return time.perf_counter() - start


# name -> factories (book module / keras / optax / torch module, learning rate); all use lr 1e-3
PEERS = {
    "Adam": (
        lambda book, lr: book.Adam(learning_rate=lr),
        lambda lr: keras.optimizers.Adam(learning_rate=lr),
        lambda optax, lr: optax.adam(lr),
        lambda torch, lr: lambda p: torch.optim.Adam(p, lr=lr, fused=True),
    ),
    "Momentum": (
        lambda book, lr: book.Momentum(learning_rate=lr, momentum=0.9),
        lambda lr: keras.optimizers.SGD(learning_rate=lr, momentum=0.9),
        lambda optax, lr: optax.sgd(lr, momentum=0.9),
        lambda torch, lr: lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9, fused=True),
    ),
    "SGD": (
        lambda book, lr: book.SGD(learning_rate=lr),
        lambda lr: keras.optimizers.SGD(learning_rate=lr),
        lambda optax, lr: optax.sgd(lr),
        lambda torch, lr: lambda p: torch.optim.SGD(p, lr=lr, fused=True),
    ),
}


def contenders_for(name, book, shapes, grads, torch):
    if name not in PEERS:
        raise SystemExit(f"unknown optimizer {name!r}; choose from {sorted(BYTES_PER_PARAM)}")
    ours, theirs, optax_of, torch_of = PEERS[name]
    optax = optional("optax")
    lr = 1e-3
    made = [
        KerasContender("ours", ours(book, lr), shapes, grads, 0),
        KerasContender("keras", theirs(lr), shapes, grads, 1),
    ]
    if optax:
        made.append(OptaxContender("optax", optax_of(optax, lr), shapes, grads, 2))
    if torch:
        made.append(TorchContender("torch", torch_of(torch, lr), torch, shapes, grads, 3))
    return made


# --------------------------------------------------------------------------- run


def device_info():
    d = jax.devices()[0]
    return {"platform": d.platform, "device_kind": getattr(d, "device_kind", str(d)), "count": jax.device_count()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--params", type=int, default=None, help="total float32 params (default 100M; --quick 100k)")
    p.add_argument("--variables", type=int, default=None, help="variables (default 50; --quick 5)")
    p.add_argument("--rounds", type=int, default=None, help="default 9; --quick 2")
    p.add_argument("--steps", type=int, default=None, help="steps per round (default 20; --quick 2)")
    p.add_argument("--optimizers", default="Adam,Momentum,SGD")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run (any device)")
    p.add_argument("--json", default=DEFAULT_JSON, help="'' for none")
    args = p.parse_args(argv)
    if keras.backend.backend() != "jax":
        raise SystemExit(f"this benchmark needs KERAS_BACKEND=jax (got {keras.backend.backend()})")
    params = args.params or (100_000 if args.quick else 100_000_000)
    variables = args.variables or (5 if args.quick else 50)
    rounds = args.rounds or (2 if args.quick else 9)
    steps = args.steps or (2 if args.quick else 20)
    book, loaded = load_book_optimizers()
    torch = None if args.no_torch else optional("torch")
    if torch is not None and not torch.cuda.is_available():
        torch = None
    base, extra = divmod(params, variables)
    shapes = [(base + (1 if i < extra else 0),) for i in range(variables)]
    rng = np.random.default_rng(1000)
    grads = [jnp.asarray(rng.standard_normal(s, dtype=np.float32) * 1e-2) for s in shapes]
    dev = device_info()
    print(f"{dev}: {params:,} params in {variables} variables, {rounds} rounds x {steps} steps; keras_optlab: {loaded}")
    if dev["platform"] == "cpu":
        print("NOTE: running on CPU — these are not GPU numbers.")
    started = datetime.datetime.now(datetime.timezone.utc)
    results = []
    for name in [n.strip() for n in args.optimizers.split(",") if n.strip()]:
        cs = contenders_for(name, book, shapes, grads, torch) + [CopyContender(shapes)]
        for c in cs:
            c.run(2)  # compile and warm up
        for r in range(rounds):
            for c in cs if r % 2 == 0 else cs[::-1]:
                c.times.append(c.run(steps) / steps * 1e3)
        by = {c.label: c.times for c in cs}
        copy_ms = by.pop("copy")
        # copy moves 8 B/param; the optimizer's bound scales it to its bytes per param
        bound = [t * BYTES_PER_PARAM[name] / 8 for t in copy_ms]
        entry = {
            "optimizer": name,
            "ms": {k: statistics.median(v) for k, v in by.items()},
            "copy_ms": statistics.median(copy_ms),
            "copy_bandwidth_GBps": 8 * params / (statistics.median(copy_ms) * 1e-3) / 1e9,
            "bound_ms": statistics.median(bound),
            "bytes_per_param": BYTES_PER_PARAM[name],
            "ratios": {
                "keras_over_ours": statistics.median(k / o for k, o in zip(by["keras"], by["ours"])),
                "ours_over_bound": statistics.median(o / b for o, b in zip(by["ours"], bound)),
                "keras_over_bound": statistics.median(k / b for k, b in zip(by["keras"], bound)),
            },
            "ms_rounds": by,
        }
        for peer in ("optax", "torch"):
            if peer in by:
                entry["ratios"][f"ours_over_{peer}"] = statistics.median(o / t for o, t in zip(by["ours"], by[peer]))
                entry["ratios"][f"{peer}_over_bound"] = statistics.median(t / b for t, b in zip(by[peer], bound))
        results.append(entry)
        print(
            f"  {name:<9} " + "  ".join(f"{k} {v:.3f} ms" for k, v in entry["ms"].items())
            + f"  bound {entry['bound_ms']:.3f} ms  " + "  ".join(f"{k} {v:.2f}" for k, v in entry["ratios"].items()),
            flush=True,
        )
        del cs
    report = {
        "benchmark": "optimizer_step_gpu",
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["KERAS_BACKEND=jax python benchmarks/optimizer_step_gpu.py"] + list(sys.argv[1:] if argv is None else argv)),
        "device": dev,
        "is_gpu_number": dev["platform"] == "gpu",
        "keras_optlab_loaded_as": loaded,
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "keras": keras.__version__,
            "optax": getattr(optional("optax"), "__version__", None),
            "torch": getattr(torch, "__version__", None),
            "tensorflow_importable": optional("tensorflow") is not None,
        },
        "config": {"params": params, "variables": variables, "rounds": rounds, "steps": steps, "dtype": "float32"},
        "targets": TARGETS,
        "results": results,
    }
    if args.json:
        write_json(report, args.json)
    return report


if __name__ == "__main__":
    main()
