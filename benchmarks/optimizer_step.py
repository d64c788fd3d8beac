"""Step time of keras_optlab's optimizers against their Keras counterparts (CPU; TF, torch, JAX).

Each optimizer updates ``--params`` float32 parameters split into ``--variables``
variables of mixed shapes through ``optimizer.apply(grads, variables)`` inside a
``tf.function`` — with and without ``jit_compile=True`` — next to the Keras optimizer
that computes the same kind of update:

    SGD              keras.optimizers.SGD()
    Momentum         keras.optimizers.SGD(momentum=0.9)
    Nesterov         keras.optimizers.SGD(momentum=0.9, nesterov=True)
    AdaGrad          keras.optimizers.Adagrad()
    RMSProp          keras.optimizers.RMSprop()
    NesterovRMSProp  keras.optimizers.RMSprop(momentum=0.9)   (no Keras counterpart:
                     the nearest one, plain heavy-ball momentum; same state, same op count)
    Adam             keras.optimizers.Adam()

Method: every contender owns its variables (and slots) and shares one list of fixed
random gradient tensors created once, outside the timed region. Each contender is
built and its ``tf.function`` traced/compiled by ``--warmup`` calls before any timing.
Then ``--rounds`` rounds run; in each round every contender performs ``--steps`` steps
back to back, contenders interleaved (A B A B …, the order flipped every other round
so that neither side always goes first). A round's time is read after a host read of
the optimizer's ``iterations`` (a synchronisation point). Reported: the median ms/step
of each side, and the ratio ours/keras as the median of the per-round ratios (paired
rounds: a burst of load from another process hits both sides of the same round). The
tracing count of every ``tf.function`` is checked after warm-up and after timing: a
retrace during timing is an error.

The memory-traffic bound (``--no-bound`` leaves it out): ``stream_bound.cc``, compiled
with the C++ compiler ``$CXX`` (default ``c++``) when one is found, streams exactly the
bytes one step must move (θ, the slots and g read, θ and the slots written: SGD
12 B/param, Momentum/Nesterov/AdaGrad/RMSProp 20, Nesterov-RMSProp/Adam 28) with one
thread per core and no framework in the way, in its own process after the paired
rounds. ``bound/keras`` is about the lowest ours/keras ratio any implementation can
reach on this machine in that run, ``ours/bound`` how far ours is from it. It is a
measured floor (a bare loop), not a theoretical one: read it as ±20%.

``--ablations`` adds keras_optlab variants to each round (same interleaving) to
measure where time goes:

    tracked            ``track_gradient_norm=True``: the per-step global gradient norm
                       that feeds ``optimizer.gradient_norm`` (off by default because
                       of what this measures).
    l2loss-tracked     the same norm through TF's fused ``tf.nn.l2_loss`` kernel
                       instead of ``ops.sum(ops.square(g))`` (a subclass defined here;
                       nothing in the package changes).
    xla-update         each variable's keras.ops rule as its own XLA cluster.
    tf-fused           keras_optlab's CPU kernels off: TF's fused kernel where one
                       exists (the fallback when the kernels cannot be built).

Run from the repository root:

    python benchmarks/optimizer_step.py                 # 10M params, 20 variables
    python benchmarks/optimizer_step.py --quick         # 1M params, smoke run
    python benchmarks/optimizer_step.py --optimizers Adam,SGD --xla-only --ablations

Results go to ``--json`` (default ``benchmarks/results/optimizer_step_cpu.json``) with
the CPU model, core count, date and library versions.

Other backends: ``--backend torch`` or ``--backend jax`` (set before keras is imported,
see ``common.select_backend``; loaded as a module whose keras runs another backend, the
script re-runs itself in a child process) time ours against Keras' counterpart only, as
Keras' own trainer steps them: torch eagerly under ``torch.no_grad()`` (Keras' built-ins
there are its multi-tensor ``torch._foreach_*`` implementations), JAX through
``stateless_apply`` in ``jax.jit`` with the state donated. No XLA modes, ablations,
torch peers or bound. ``--variant`` plain, clip-skip (``global_clipnorm=1.0`` on both
sides, ``skip_nonfinite=True`` on ours: issue 14's case), clip, skip, a list, ``both``
(plain,clip-skip) or ``all``; ``--threads`` sets torch's thread count (1 is steadier on a
loaded machine). Results: ``benchmarks/results/optimizer_step_<backend>_cpu.json``.

    python benchmarks/optimizer_step.py --backend torch --params 10M --rounds 5 --steps 3 \
        --threads 1 --variant both
"""

import argparse
import datetime
import functools
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# Keras reads KERAS_BACKEND once, when it is imported: a script run with --backend sets
# it first (common.select_backend); main() re-runs itself in a child process when keras
# was already imported with another backend (the script loaded as a module).
from common import BACKENDS, backend_and_json, rerun_with_backend, select_backend, write_json  # noqa: E402

select_backend(__name__ == "__main__")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_optlab  # noqa: E402
from keras_optlab import optimizers as optlab  # noqa: E402

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf  # noqa: E402

    from keras_optlab import accel  # noqa: E402
    from keras_optlab.accel import cpu  # noqa: E402
else:  # torch / JAX: no TF graph, no speed paths, no memory-traffic bound
    tf = accel = cpu = None


# Targets of issue 7 (ratio ours/keras, median), for the optimizers it names; SGD and
# NesterovRMSProp are measured but have no target.
TARGETS = {False: 0.4, True: 1.0}
TARGETED = ("Adam", "Momentum", "Nesterov", "AdaGrad", "RMSProp")

# torch's CPU peers (only when torch is importable): name -> (description, factory of
# params). The fused CPU kernels where torch has one, else its foreach implementation.
TORCH_PEERS = {
    "SGD": ("torch.optim.SGD(fused=True)", lambda t, p: t.optim.SGD(p, lr=0.01, fused=True)),
    "Momentum": ("torch.optim.SGD(momentum=0.9, fused=True)", lambda t, p: t.optim.SGD(p, lr=0.01, momentum=0.9, fused=True)),
    "Nesterov": (
        "torch.optim.SGD(momentum=0.9, nesterov=True, fused=True)",
        lambda t, p: t.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, fused=True),
    ),
    "AdaGrad": ("torch.optim.Adagrad(fused=True)", lambda t, p: t.optim.Adagrad(p, lr=0.01, eps=1e-7, fused=True)),
    "RMSProp": ("torch.optim.RMSprop(foreach=True)", lambda t, p: t.optim.RMSprop(p, lr=0.001, alpha=0.9, eps=1e-6, foreach=True)),
    "Adam": ("torch.optim.Adam(fused=True)", lambda t, p: t.optim.Adam(p, lr=0.001, eps=1e-8, fused=True)),
}


# Arrays the bound streams per optimizer (the last one, g, is only read).
BOUND_ARRAYS = {"SGD": 2, "Momentum": 3, "Nesterov": 3, "AdaGrad": 3, "RMSProp": 3, "NesterovRMSProp": 4, "Adam": 4}


def import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch

# name -> (ours factory, keras factory, description of the Keras side, note)
# Hyperparameters are the keras_optlab defaults on both sides; only the structure of the
# update matters for the step time. Factories take the --variant's keyword arguments.
PAIRS = {
    "SGD": (
        lambda **kw: optlab.SGD(learning_rate=0.01, **kw),
        lambda **kw: keras.optimizers.SGD(learning_rate=0.01, **kw),
        "keras.optimizers.SGD()",
        None,
    ),
    "Momentum": (
        lambda **kw: optlab.Momentum(learning_rate=0.01, momentum=0.9, **kw),
        lambda **kw: keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, **kw),
        "keras.optimizers.SGD(momentum=0.9)",
        None,
    ),
    "Nesterov": (
        lambda **kw: optlab.Nesterov(learning_rate=0.01, momentum=0.9, **kw),
        lambda **kw: keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True, **kw),
        "keras.optimizers.SGD(momentum=0.9, nesterov=True)",
        None,
    ),
    "AdaGrad": (
        lambda **kw: optlab.AdaGrad(learning_rate=0.01, epsilon=1e-7, initial_accumulator_value=0.0, **kw),
        lambda **kw: keras.optimizers.Adagrad(learning_rate=0.01, epsilon=1e-7, initial_accumulator_value=0.0, **kw),
        "keras.optimizers.Adagrad()",
        None,
    ),
    "RMSProp": (
        lambda **kw: optlab.RMSProp(learning_rate=0.001, rho=0.9, epsilon=1e-6, **kw),
        lambda **kw: keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-6, **kw),
        "keras.optimizers.RMSprop()",
        None,
    ),
    "NesterovRMSProp": (
        lambda **kw: optlab.NesterovRMSProp(learning_rate=0.001, rho=0.9, momentum=0.9, epsilon=1e-6, **kw),
        lambda **kw: keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9, momentum=0.9, epsilon=1e-6, **kw),
        "keras.optimizers.RMSprop(momentum=0.9)",
        "no Keras counterpart: compared with RMSprop(momentum=0.9), heavy-ball momentum, same state",
    ),
    "Adam": (
        lambda **kw: optlab.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, **kw),
        lambda **kw: keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, **kw),
        "keras.optimizers.Adam()",
        None,
    ),
}


# --variant: keyword arguments of (ours, keras). "clip-skip" is issue 14's case: global
# clipping on both sides, and our non-finite skip (Keras has none) on ours.
# "clip" and "skip" split clip-skip's cost in two: global clipping on both sides, and
# our non-finite skip alone against Keras' plain step.
VARIANTS = {
    "plain": ({}, {}),
    "clip-skip": ({"global_clipnorm": 1.0, "skip_nonfinite": True}, {"global_clipnorm": 1.0}),
    "clip": ({"global_clipnorm": 1.0}, {"global_clipnorm": 1.0}),
    "skip": ({"skip_nonfinite": True}, {}),
}


def parse_variants(value):
    """--variant: one name, a comma-separated list, "both" (plain,clip-skip) or "all"."""
    if value == "both":
        return ["plain", "clip-skip"]
    if value == "all":
        return list(VARIANTS)
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}, both, all")
    return names


def variant_pair(name, variant):
    """(ours factory, keras factory) of ``name`` with ``variant``'s arguments."""
    ours, theirs = PAIRS[name][:2]
    ours_kw, keras_kw = VARIANTS[variant]
    return functools.partial(ours, **ours_kw), functools.partial(theirs, **keras_kw)


# --------------------------------------------------------------------------- ablations


def _with_clip_gradients(factory, suffix, clip_gradients):
    """Wrap an optimizer factory: same optimizer, another ``transform_gradients``."""

    def make():
        opt = factory()
        cls = type(opt)

        def transform_gradients(self, grads, variables):
            if self.clips:  # clipping configured: keep keras_optlab's own path
                return cls.transform_gradients(self, grads, variables)
            return clip_gradients(self, grads)

        opt.__class__ = type(f"{cls.__name__}{suffix}", (cls,), {"transform_gradients": transform_gradients})
        return opt

    return make


def _on_paths(factory, *paths):
    """The same factory, its step traced under ``keras_optlab.accel.paths(*paths)``."""

    def make():
        return factory()

    make.paths = paths
    return make


def _with_setting(factory, attribute, value):
    """Wrap an optimizer factory: same optimizer, one attribute set before first use."""

    def make():
        opt = factory()
        setattr(opt, attribute, value)
        return opt

    return make


def _tracked(factory):
    """The package's own ``track_gradient_norm=True``."""
    return _with_setting(factory, "track_gradient_norm", True)


def _l2loss_tracked(factory):
    """The same telemetry, computed with TF's fused ``tf.nn.l2_loss`` (one kernel per
    variable, no materialised g² tensor) instead of ``ops.sum(ops.square(g))``."""

    def clip(self, grads):
        parts = [2.0 * tf.nn.l2_loss(g) for g in grads if g is not None]
        self._gradient_norm.assign(tf.sqrt(tf.add_n(parts)))
        return grads

    return _with_clip_gradients(factory, "L2LossTracked", clip)


def _xla_update(factory):
    """The keras.ops rule of each variable compiled as its own XLA cluster
    (``tf.function(jit_compile=True)`` per variable, inside the un-XLA'd step): what
    XLA's fusion alone buys an optimizer without a fused TF kernel (RMSProp). The
    package does not do this; the ablation measures whether it would pay."""

    def make():
        opt = factory()  # its own update_step below: the speed paths leave it alone
        cls = type(opt)
        compiled = {}

        def update_step(self, gradient, variable, learning_rate):
            key = id(variable)
            if key not in compiled:
                compiled[key] = tf.function(
                    lambda g, lr, variable=variable: cls.update_step(self, g, variable, lr), jit_compile=True
                )
            compiled[key](gradient, tf.convert_to_tensor(learning_rate))

        opt.__class__ = type(f"{cls.__name__}XLAUpdate", (cls,), {"update_step": update_step})
        return opt

    return make


def _tf_fused(factory):
    """keras_optlab's CPU kernel turned off: TF's fused kernel where one computes the
    rule (SGD, Momentum, Nesterov, AdaGrad, Adam), the keras.ops rule elsewhere — the
    package's path before keras_optlab's own kernels existed, and its fallback."""
    return _on_paths(factory, "fused")


ABLATIONS = {"tracked": _tracked, "l2loss-tracked": _l2loss_tracked, "xla-update": _xla_update, "tf-fused": _tf_fused}


def _keras_ops_path(factory):
    """The same optimizer with both fast paths turned off: the keras.ops rule."""
    return _on_paths(factory, "ops")


# --------------------------------------------------------------------------- set-up


def parse_count(text):
    """'10M', '1e7', '500k', '10_000' -> int."""
    text = str(text).strip().replace("_", "")
    scale = 1
    if text[-1:].lower() in ("k", "m", "g"):
        scale = {"k": 10**3, "m": 10**6, "g": 10**9}[text[-1].lower()]
        text = text[:-1]
    value = float(text) * scale
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"not a positive integer count: {text!r}")
    return int(value)


def _factor(size, rows):
    """(rows, size // rows) when rows divides size and both sides > 1, else None."""
    if rows > 1 and size % rows == 0 and size // rows > 1:
        return (rows, size // rows)
    return None


def variable_shapes(params, variables):
    """``variables`` shapes of mixed rank whose sizes sum to exactly ``params``.

    Sizes are as equal as possible; shapes cycle through a Dense-like kernel
    (1000, n), its transpose, a conv-like 4-D kernel and a flat vector, falling back to
    1-D whenever a size does not factor.
    """
    if variables < 1 or params < variables:
        raise ValueError(f"need params >= variables >= 1, got params={params}, variables={variables}")
    base, extra = divmod(params, variables)
    sizes = [base + (1 if i < extra else 0) for i in range(variables)]
    shapes = []
    for i, size in enumerate(sizes):
        kind = i % 4
        shape = None
        if kind == 0:
            shape = _factor(size, 1000) or _factor(size, 100)
        elif kind == 1:
            s = _factor(size, 1000) or _factor(size, 100)
            shape = s[::-1] if s else None
        elif kind == 2:
            for k in (3, 5, 2):  # a conv kernel (k, k, in, out)
                s = _factor(size // (k * k), 64) or _factor(size // (k * k), 16) if size % (k * k) == 0 else None
                if s:
                    shape = (k, k) + s[::-1]
                    break
        shapes.append(shape or (size,))
    assert sum(int(np.prod(s)) for s in shapes) == params
    return shapes


def make_variables(shapes, seed):
    rng = np.random.default_rng(seed)
    return [
        keras.Variable(rng.standard_normal(shape, dtype=np.float32) * 0.05, dtype="float32", name=f"w{i}")
        for i, shape in enumerate(shapes)
    ]


def gradient_arrays(shapes, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape, dtype=np.float32) * 1e-2 for shape in shapes]


def make_gradients(shapes, seed):
    return [tf.constant(g) for g in gradient_arrays(shapes, seed)]


class Contender:
    """One optimizer with its own variables and its compiled step function."""

    def __init__(self, label, factory, shapes, grads, xla, seed):
        self.label = label
        self.variables = make_variables(shapes, seed)
        self.optimizer = factory()
        # Build outside the traced function: slots are created once, eagerly.
        self.optimizer.build(self.variables)
        optimizer, variables = self.optimizer, self.variables

        def step(grads):
            optimizer.apply(grads, variables)

        self.step = tf.function(step, jit_compile=xla, reduce_retracing=False)
        with accel.paths(*getattr(factory, "paths", accel.PATHS)):  # the path is chosen when traced
            self.step.get_concrete_function(grads)
        self.grads = grads
        self.times = []

    def traces(self):
        return self.step.experimental_get_tracing_count()

    def update_path(self):
        """Which update rule the traced step holds: "kernel" (keras_optlab's CPU
        kernel), "fused" (a TF ResourceApply* kernel) or "ops" (keras.ops)."""
        graph = self.step.get_concrete_function(self.grads).graph
        types = {op.type for op in graph.get_operations()}
        if any("BookApply" in t for t in types):  # KerasOptlab>BookApply*
            return "kernel"
        if any(t.startswith("ResourceApply") for t in types):
            return "fused"
        return "ops"

    def sync(self):
        return int(self.optimizer.iterations.numpy())

    def run(self, steps):
        step, grads = self.step, self.grads
        self.sync()
        start = time.perf_counter()
        for _ in range(steps):
            step(grads)
        self.sync()
        return time.perf_counter() - start

    def release(self):
        del self.step, self.optimizer, self.variables


class BackendContender:
    """One optimizer on the torch or JAX backend, stepped as Keras' own trainer steps it.

    torch: ``optimizer.apply(grads, variables)`` eagerly, under ``torch.no_grad()``
    (Keras' torch trainer without ``jit_compile``). JAX: ``optimizer.stateless_apply``
    inside ``jax.jit`` with the state donated (Keras' JAX trainer), traced by the first
    warm-up call. The gradients are backend tensors made once, outside the timed region.
    """

    def __init__(self, label, factory, shapes, grad_arrays, seed):
        self.label = label
        self.backend = keras.backend.backend()
        self.variables = make_variables(shapes, seed)
        self.optimizer = factory()
        self.optimizer.build(self.variables)
        self.grads = [keras.ops.convert_to_tensor(g) for g in grad_arrays]
        self.times = []
        self.compiles = 0
        if self.backend == "jax":
            import jax

            optimizer = self.optimizer

            def step(optimizer_values, values, grads):
                self.compiles += 1  # runs only while jax traces
                values, optimizer_values = optimizer.stateless_apply(optimizer_values, grads, values)
                return optimizer_values, values

            self.state = ([v.value for v in optimizer.variables], [v.value for v in self.variables])
            self.step = jax.jit(step, donate_argnums=(0, 1))
        else:
            import torch

            self.no_grad = torch.no_grad

    def traces(self):
        return self.compiles if self.backend == "jax" else 1

    def sync(self):
        if self.backend == "jax":
            import jax

            jax.block_until_ready(self.state)
        else:  # a host read: also the sync point of a CUDA device
            keras.ops.convert_to_numpy(self.optimizer.iterations)

    def run(self, steps):
        self.sync()
        start = time.perf_counter()
        if self.backend == "jax":
            state, step, grads = self.state, self.step, self.grads
            for _ in range(steps):
                state = step(*state, grads)
            self.state = state
        else:
            apply, grads, variables = self.optimizer.apply, self.grads, self.variables
            with self.no_grad():
                for _ in range(steps):
                    apply(grads, variables)
        self.sync()
        return time.perf_counter() - start

    def release(self):
        del self.optimizer, self.variables, self.grads
        if self.backend == "jax":
            del self.state, self.step


class TorchContender:
    """torch's optimizer on its own parameters, with the same gradients (copied once).

    Runs in its own process (``torch_worker``): next to TensorFlow's thread pool in one
    process, torch's OpenMP threads and TF's compete — its fused Adam measured 136 ms
    per step interleaved in-process against 4.9 ms alone.
    """

    def __init__(self, label, make, torch, shapes, grads, seed):
        self.label = label
        rng = np.random.default_rng(seed)
        self.params = [
            torch.tensor(rng.standard_normal(shape, dtype=np.float32) * 0.05, requires_grad=True) for shape in shapes
        ]
        for p, g in zip(self.params, grads):
            p.grad = torch.from_numpy(np.array(g))
        self.optimizer = make(torch, self.params)
        self.times = []

    def traces(self):
        return 1

    def run(self, steps):
        step = self.optimizer.step  # CPU: synchronous, no sync point needed
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return time.perf_counter() - start

    def release(self):
        del self.optimizer, self.params


def torch_times(name, shapes, rounds, steps, warmup):
    """ms/step of ``name``'s torch peer, timed in a child process (see TorchContender)."""
    import subprocess

    spec = json.dumps({"name": name, "shapes": [list(s) for s in shapes], "rounds": rounds, "steps": steps, "warmup": warmup})
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--torch-worker", spec],
        capture_output=True, text=True, check=True, timeout=1800,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_bound(directory):
    """Compile ``stream_bound.cc`` into ``directory`` with the first flag set of the
    kernels' portable chain (``keras_optlab.accel.cpu.flag_sets()``) that compiles, so
    that the floor and our kernels are built for the same ISA.

    Returns ``(executable, None, flags)``, or ``(None, why, None)`` without a compiler
    or when every flag set fails.
    """
    compiler = cpu.compiler()  # the compiler keras_optlab builds its kernels with
    if shutil.which(compiler) is None:
        return None, f"no C++ compiler {compiler!r} on PATH (set $CXX)", None
    exe = os.path.join(directory, "stream_bound")
    errors = []
    for flags in cpu.flag_sets():
        done = subprocess.run(
            [compiler, "-O3", *flags, "-std=c++20", "-pthread", os.path.join(HERE, "stream_bound.cc"), "-o", exe],
            capture_output=True, text=True, timeout=300, check=False,
        )
        if done.returncode == 0:
            return exe, None, flags
        errors.append(f"[{' '.join(flags) or 'no ISA flags'}] {done.stderr.strip()[-300:]}")
    return None, "building stream_bound.cc failed: " + " | ".join(errors), None


def bound_times(exe, name, params, rounds, steps, warmup):
    """ms/step of the memory-traffic bound of ``name`` on ``params`` floats, per round."""
    threads = device_info()["cores"]
    args = [exe, str(BOUND_ARRAYS[name]), str(params), str(threads), str(steps), str(rounds), str(warmup)]
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(done.stdout)


def torch_worker(spec):
    """Child process: time one torch peer, print its per-round ms/step as JSON."""
    import torch

    spec = json.loads(spec)
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()))
    shapes = [tuple(s) for s in spec["shapes"]]
    c = TorchContender("torch", TORCH_PEERS[spec["name"]][1], torch, shapes, gradient_arrays(shapes, 0), seed=7)
    for _ in range(spec["warmup"]):
        c.run(1)
    print(json.dumps([c.run(spec["steps"]) / spec["steps"] * 1e3 for _ in range(spec["rounds"])]))


def state_bytes(optimizer, variables):
    """Optimizer state in bytes: (per-parameter slots, scalars).

    A variable of the optimizer counts as a slot when it has as many elements as one
    of the model's variables and is not a scalar; everything else (iterations,
    learning rate, telemetry) counts as scalars.
    """
    sizes = {int(np.prod(v.shape)) for v in variables}
    slots = scalars = 0
    for v in optimizer.variables:
        n = int(np.prod(v.shape)) if len(v.shape) else 1
        nbytes = n * np.dtype(keras.backend.standardize_dtype(v.dtype)).itemsize
        if len(v.shape) and n in sizes:
            slots += nbytes
        else:
            scalars += nbytes
    return slots, scalars


def memory_table(names, shapes, torch=None):
    """Bytes of optimizer state per parameter, ours vs Keras (and torch after one step)."""
    params = sum(int(np.prod(s)) for s in shapes)
    book_slots = {"SGD": 0, "Momentum": 1, "Nesterov": 1, "AdaGrad": 1, "RMSProp": 1, "NesterovRMSProp": 2, "Adam": 2}
    rows = []
    for name in names:
        ours_f, keras_f = PAIRS[name][:2]
        row = {"optimizer": name, "params": params, "book_minimum_bytes_per_param": 4 * book_slots[name]}
        for side, factory in (("ours", ours_f), ("keras", keras_f)):
            variables = make_variables(shapes, 0)
            opt = factory()
            opt.build(variables)
            slots, scalars = state_bytes(opt, variables)
            row[side] = {"slot_bytes_per_param": slots / params, "scalar_bytes": scalars}
            del opt, variables
            gc.collect()
        if torch is not None and name in TORCH_PEERS:
            ps = [torch.zeros(s, requires_grad=True) for s in shapes]
            for p in ps:
                p.grad = torch.zeros_like(p)
            opt = TORCH_PEERS[name][1](torch, ps)
            opt.step()
            slots = scalars = 0
            for st in opt.state.values():
                for value in st.values():
                    if torch.is_tensor(value):
                        nbytes = value.numel() * value.element_size()
                        if value.dim():
                            slots += nbytes
                        else:
                            scalars += nbytes
            row["torch"] = {"slot_bytes_per_param": slots / params, "scalar_bytes": scalars}
            del opt, ps
        row["meets_book_minimum"] = row["ours"]["slot_bytes_per_param"] == row["book_minimum_bytes_per_param"]
        rows.append(row)
        gc.collect()
    return rows


def format_memory(rows):
    lines = [
        f"{'optimizer':<16} {'book B/param':>12} {'ours B/param':>12} {'ours scalars B':>14} "
        f"{'keras B/param':>13} {'keras scalars B':>15} {'torch B/param':>13}",
    ]
    lines.append("-" * len(lines[0]))
    for r in rows:
        t = r.get("torch")
        lines.append(
            f"{r['optimizer']:<16} {r['book_minimum_bytes_per_param']:12.1f} {r['ours']['slot_bytes_per_param']:12.1f} "
            f"{r['ours']['scalar_bytes']:14d} {r['keras']['slot_bytes_per_param']:13.1f} "
            f"{r['keras']['scalar_bytes']:15d} " + (f"{t['slot_bytes_per_param']:13.1f}" if t else f"{'-':>13}")
        )
    return "\n".join(lines)


def device_info():
    model = None
    processors = 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model is None:
                    model = line.split(":", 1)[1].strip()
                if line.startswith("processor"):
                    processors += 1
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "kind": "cpu",
        "cpu_model": model or platform.processor() or "unknown",
        "cores": usable,
        "cpuinfo_processors": processors or None,
        "machine": platform.machine(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() if tf else None,
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads() if tf else None,
    }


def versions(torch=None):
    return {
        "torch": torch.__version__ if torch is not None else None,
        "python": platform.python_version(),
        "tensorflow": tf.__version__ if tf else None,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "keras_optlab": getattr(keras_optlab, "__version__", "unknown"),
    }


# --------------------------------------------------------------------------- benchmark


def paired_rounds(name, contenders, rounds, steps, warmup):
    """Warm every contender up, then time ``rounds`` interleaved rounds of ``steps``
    steps (order flipped every other round) into each contender's ``times`` (ms/step).
    A contender traced more than once in warm-up, or again while timed, is an error."""
    for c in contenders:
        for _ in range(warmup):
            c.run(1)
    traced = {c.label: c.traces() for c in contenders}
    for label, count in traced.items():
        if count != 1:
            raise RuntimeError(f"{name} {label}: traced {count} times during warm-up (expected 1)")
    for r in range(rounds):
        order = contenders if r % 2 == 0 else contenders[::-1]
        for c in order:
            c.times.append(c.run(steps) / steps * 1e3)
    for c in contenders:
        if c.traces() != traced[c.label]:
            raise RuntimeError(f"{name} {c.label}: retraced during timing ({traced[c.label]} -> {c.traces()})")


def bench_backend_pair(name, shapes, grad_arrays, rounds, steps, warmup, variant):
    """ours vs Keras on the torch or JAX backend (see BackendContender): paired rounds."""
    ours_factory, keras_factory = variant_pair(name, variant)
    contenders = [
        BackendContender(label, f, shapes, grad_arrays, seed=i)
        for i, (label, f) in enumerate((("ours", ours_factory), ("keras", keras_factory)))
    ]
    try:
        paired_rounds(name, contenders, rounds, steps, warmup)
        ours, theirs = contenders[0].times, contenders[1].times
        keras_desc, note = PAIRS[name][2:]
        keras_kw = VARIANTS[variant][1]
        if keras_kw:
            args = ", ".join(f"{k}={v!r}" for k, v in keras_kw.items())
            keras_desc = keras_desc[:-1] + (", " if not keras_desc.endswith("()") else "") + args + ")"
        return {
            "optimizer": name,
            "keras": keras_desc,
            "note": note,
            "backend": keras.backend.backend(),
            "variant": variant,
            "xla": keras.backend.backend() == "jax",  # jax.jit: compiled by XLA
            "ours_ms": statistics.median(ours),
            "keras_ms": statistics.median(theirs),
            "ratio": statistics.median(a / b for a, b in zip(ours, theirs)),
            "ratio_of_medians": statistics.median(ours) / statistics.median(theirs),
            "target": 1.0,
            "meets_target": statistics.median(a / b for a, b in zip(ours, theirs)) <= 1.0,
            "update_path": "ops",
            "ours_ms_rounds": ours,
            "keras_ms_rounds": theirs,
            "tracing_count": {c.label: c.traces() for c in contenders},
            "ablations": {},
        }
    finally:
        for c in contenders:
            c.release()
        del contenders
        gc.collect()


def bench_pair(name, shapes, grads, xla, rounds, steps, warmup, ablations, log, torch=None, ops_path=False, bound=None, variant="plain"):
    ours_factory, keras_factory = variant_pair(name, variant)
    keras_desc, note = PAIRS[name][2:]
    specs = [("ours", ours_factory), ("keras", keras_factory)]
    if ops_path:
        specs.append(("ours:keras.ops", _keras_ops_path(ours_factory)))
    specs += [(f"ours:{a}", ABLATIONS[a](ours_factory)) for a in ablations]
    contenders = [Contender(label, f, shapes, grads, xla, seed=i) for i, (label, f) in enumerate(specs)]
    try:
        paired_rounds(name, contenders, rounds, steps, warmup)
        by = {c.label: c for c in contenders}
        ours, theirs = by["ours"].times, by["keras"].times
        entry = {
            "optimizer": name,
            "keras": keras_desc,
            "note": note,
            "xla": xla,
            "ours_ms": statistics.median(ours),
            "keras_ms": statistics.median(theirs),
            "ratio": statistics.median(a / b for a, b in zip(ours, theirs)),
            "ratio_of_medians": statistics.median(ours) / statistics.median(theirs),
            "target": TARGETS[xla] if name in TARGETED else None,
            "update_path": by["ours"].update_path(),
            "ours_ms_rounds": ours,
            "keras_ms_rounds": theirs,
            "tracing_count": {c.label: c.traces() for c in contenders if c.label != "torch"},
            "ablations": {},
        }
        entry["meets_target"] = None if entry["target"] is None else entry["ratio"] <= entry["target"]
        # torch has no XLA mode: it runs after the no-XLA rounds, in its own process.
        if torch is not None and not xla and name in TORCH_PEERS:
            t = torch_times(name, shapes, rounds, steps, warmup)
            entry["torch"] = {
                "peer": TORCH_PEERS[name][0],
                "ms": statistics.median(t),
                "ours_over_torch": statistics.median(ours) / statistics.median(t),
                "keras_over_torch": statistics.median(theirs) / statistics.median(t),
                "ratio": "of medians (separate process, not paired rounds)",
                "ms_rounds": t,
            }
        if bound is not None:
            t = bound_times(bound, name, sum(int(np.prod(s)) for s in shapes), rounds, steps, warmup)
            entry["bound"] = {
                "ms": statistics.median(t),
                "bytes_per_param": 4 * (2 * BOUND_ARRAYS[name] - 1),
                "ours_over_bound": statistics.median(ours) / statistics.median(t),
                "bound_over_keras": statistics.median(t) / statistics.median(theirs),
                "ratio": "of medians (separate process, not paired rounds)",
                "ms_rounds": t,
            }
        if "ours:keras.ops" in by:
            t = by["ours:keras.ops"].times
            entry["keras_ops_path"] = {
                "ms": statistics.median(t),
                "ratio": statistics.median(x / y for x, y in zip(t, theirs)),
                "ms_rounds": t,
            }
        for a in ablations:
            t = by[f"ours:{a}"].times
            entry["ablations"][a] = {
                "ms": statistics.median(t),
                "ratio": statistics.median(x / y for x, y in zip(t, theirs)),
                "ms_rounds": t,
            }
        return entry
    finally:
        for c in contenders:
            c.release()
        del contenders
        gc.collect()


def format_table(results, ablations=()):
    ops_path = any("keras_ops_path" in e for e in results)
    torch = any("torch" in e for e in results)
    bound = any("bound" in e for e in results)
    header = f"{'optimizer':<16} {'xla':<4} {'path':<6} {'ours ms':>9} {'keras ms':>9} {'ratio':>6} {'target':>6} {'ok':<3}"
    if ops_path:
        header += f" {'keras.ops ms':>12} {'ratio':>6}"
    if torch:
        header += f" {'torch ms':>9} {'ours/torch':>10}"
    if bound:
        header += f" {'bound ms':>9} {'ours/bound':>10} {'bound/keras':>11}"
    header += "".join(f" {a + ' ms':>16} {'ratio':>6}" for a in ablations)
    header += "  keras counterpart"
    lines = [header, "-" * len(header)]
    for e in results:
        target = "-" if e["target"] is None else f"{e['target']:.2f}"
        ok = "-" if e["meets_target"] is None else "yes" if e["meets_target"] else "NO"
        line = (
            f"{e['optimizer']:<16} {'yes' if e['xla'] else 'no':<4} {e.get('update_path', '?'):<6} "
            f"{e['ours_ms']:9.2f} {e['keras_ms']:9.2f} {e['ratio']:6.2f} {target:>6} {ok:<3}"
        )
        if ops_path:
            o = e.get("keras_ops_path")
            line += f" {o['ms']:12.2f} {o['ratio']:6.2f}" if o else " " * 20
        if torch:
            t = e.get("torch")
            line += f" {t['ms']:9.2f} {t['ours_over_torch']:10.2f}" if t else " " * 21
        if bound:
            b = e.get("bound")
            line += f" {b['ms']:9.2f} {b['ours_over_bound']:10.2f} {b['bound_over_keras']:11.2f}" if b else " " * 33
        for a in ablations:
            ab = e["ablations"].get(a)
            line += f" {ab['ms']:16.2f} {ab['ratio']:6.2f}" if ab else " " * 24
        line += f"  {e['keras']}" + ("*" if e["note"] else "")
        lines.append(line)
    for n in sorted({e["note"] for e in results if e["note"]}):
        lines.append(f"* {n}")
    return "\n".join(lines)


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", type=parse_count, default=None, help="total float32 parameters (default 10M; --quick 1M)")
    p.add_argument("--variables", type=int, default=20, help="number of variables (default 20)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds per contender (default 7; --quick 3)")
    p.add_argument("--steps", type=int, default=None, help="steps per round (default 10; --quick 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls before timing (default 2)")
    p.add_argument("--optimizers", default=",".join(PAIRS), help=f"comma-separated subset of {','.join(PAIRS)}")
    xla = p.add_mutually_exclusive_group()
    xla.add_argument("--no-xla", action="store_true", help="only tf.function without jit_compile")
    xla.add_argument("--xla-only", action="store_true", help="only tf.function(jit_compile=True)")
    p.add_argument("--ablations", nargs="?", const="all", default=None, help=f"also time variants: {','.join(ABLATIONS)} (default all)")
    p.add_argument("--ops-path", action="store_true", help="also time our keras.ops rule (fused kernels off)")
    p.add_argument("--no-torch", action="store_true", help="leave torch out even when it is importable")
    p.add_argument("--no-bound", action="store_true", help="leave out the memory-traffic bound (stream_bound.cc)")
    p.add_argument("--quick", action="store_true", help="1M params, 3 rounds of 3 steps: a smoke run")
    p.add_argument("--json", default=None, help="where to write results (default results/optimizer_step_cpu.json on "
                   "TensorFlow, results/optimizer_step_<backend>_cpu.json otherwise); '' for none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--backend", choices=BACKENDS, default=None,
        help="Keras backend (default: $KERAS_BACKEND, else tensorflow). torch and jax time "
        "ours vs Keras only: no XLA modes, ablations, torch peers or bound",
    )
    p.add_argument(
        "--threads", type=int, default=None,
        help="torch backend: torch.set_num_threads (default: the usable cores; 1 is steadier on a loaded machine)",
    )
    p.add_argument(
        "--variant", type=parse_variants, default=["plain"],
        help="plain: default arguments; clip-skip: global_clipnorm=1.0 on both sides and "
        "skip_nonfinite=True on ours; clip: global_clipnorm=1.0 on both sides; skip: "
        "skip_nonfinite=True on ours, Keras plain; a comma-separated list; both: plain,clip-skip; "
        "all: the four (default plain)",
    )
    return p


def main_backend(args, argv, params, rounds, steps, names):
    """The torch/JAX benchmark: ours vs Keras' counterpart, paired rounds, per variant."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(args.threads or device_info()["cores"])
        framework = {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    else:
        import jax

        framework = {"jax": jax.__version__, "jax_devices": [str(d) for d in jax.devices()]}
    variants = args.variant
    shapes = variable_shapes(params, args.variables)
    grad_arrays = gradient_arrays(shapes, args.seed + 1000)
    print(
        f"optimizer step ({backend}): {params:,} float32 params in {len(shapes)} variables, "
        f"{rounds} rounds x {steps} steps, warm-up {args.warmup}; Keras {keras.__version__}",
        flush=True,
    )
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    results = []
    for variant in variants:
        for name in names:
            t0 = time.perf_counter()
            entry = bench_backend_pair(name, shapes, grad_arrays, rounds, steps, args.warmup, variant)
            results.append(entry)
            print(
                f"  {name:<16} {variant:<9} ours {entry['ours_ms']:8.2f} ms  keras {entry['keras_ms']:8.2f} ms  "
                f"ratio {entry['ratio']:.2f}  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    print()
    for variant in variants:
        print(f"variant {variant}:")
        print(format_table([e for e in results if e["variant"] == variant]))
    report = {
        "benchmark": "optimizer_step",
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/optimizer_step.py", *argv]),
        "backend": backend,
        "device": device_info(),
        "load_average_before": list(load_before) if load_before else None,
        "load_average_after": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": {**versions(), **framework},
        "config": {
            "params": params,
            "variables": len(shapes),
            "shapes": [list(s) for s in shapes],
            "dtype": "float32",
            "rounds": rounds,
            "steps": steps,
            "warmup": args.warmup,
            "variants": {v: {"ours": VARIANTS[v][0], "keras": VARIANTS[v][1]} for v in variants},
            "optimizers": names,
            "ratio": "median over rounds of (ours ms / keras ms) in the same round",
        },
        "target": 1.0,
        "results": results,
    }
    if args.json:
        write_json(report, args.json)
    return report


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--torch-worker"]:
        return torch_worker(argv[1])
    args = build_parser().parse_args(argv)
    params = args.params or (10**6 if args.quick else 10**7)
    rounds = args.rounds or (3 if args.quick else 7)
    steps = args.steps or (3 if args.quick else 10)
    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    unknown = [n for n in names if n not in PAIRS]
    if unknown:
        raise SystemExit(f"unknown optimizer(s) {unknown}; choose from {list(PAIRS)}")
    backend, argv = backend_and_json(args, argv, "optimizer_step", tensorflow_file="optimizer_step_cpu.json")
    if backend != keras.backend.backend():
        return rerun_with_backend(__file__, backend, argv, args.json)
    if backend != "tensorflow":
        return main_backend(args, argv, params, rounds, steps, names)
    if args.ablations is None:
        ablations = []
    elif args.ablations == "all":
        ablations = list(ABLATIONS)
    else:
        ablations = [a.strip() for a in args.ablations.split(",") if a.strip()]
        bad = [a for a in ablations if a not in ABLATIONS]
        if bad:
            raise SystemExit(f"unknown ablation(s) {bad}; choose from {list(ABLATIONS)}")
    modes = [True] if args.xla_only else [False] if args.no_xla else [False, True]

    shapes = variable_shapes(params, args.variables)
    grads = make_gradients(shapes, args.seed + 1000)
    torch = None if args.no_torch else import_torch()
    if torch is not None:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()))
    scratch = tempfile.TemporaryDirectory(prefix="optimizer_step_")
    bound, why, bound_flags = (None, "--no-bound", None) if args.no_bound else build_bound(scratch.name)
    if bound is None and not args.no_bound:
        print(f"memory-traffic bound left out: {why}", flush=True)
    elif bound is not None:
        print(f"memory-traffic bound built with: {' '.join(bound_flags) or 'no ISA flags'}", flush=True)
    print(
        f"optimizer step: {params:,} float32 params in {len(shapes)} variables, "
        f"{rounds} rounds x {steps} steps, warm-up {args.warmup}; "
        f"TF {tf.__version__}, Keras {keras.__version__}",
        flush=True,
    )
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    results = []
    variants = args.variant
    for xla, variant, name in ((x, v, n) for x in modes for v in variants for n in names):
        t0 = time.perf_counter()
        entry = bench_pair(
            name, shapes, grads, xla, rounds, steps, args.warmup, ablations, print,
            torch=torch, ops_path=args.ops_path, bound=bound, variant=variant,
        )
        entry["variant"] = variant
        results.append(entry)
        print(
            f"  {name:<16} {variant:<9} xla={'yes' if xla else 'no ':<3} ours {entry['ours_ms']:8.2f} ms  "
            f"keras {entry['keras_ms']:8.2f} ms  ratio {entry['ratio']:.2f}"
            + (f"  torch {entry['torch']['ms']:.2f} ms" if "torch" in entry else "")
            + (f"  bound {entry['bound']['ms']:.2f} ms" if "bound" in entry else "")
            + (f"  keras.ops {entry['keras_ops_path']['ms']:.2f} ms" if "keras_ops_path" in entry else "")
            + "".join(f"  {a} {v['ms']:.2f} ms" for a, v in entry["ablations"].items())
            + f"  ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    scratch.cleanup()
    print()
    print(format_table(results, ablations))
    memory = memory_table(names, shapes, torch)
    print()
    print("optimizer state (bytes per parameter: slots; scalars in bytes):")
    print(format_memory(memory))

    report = {
        "benchmark": "optimizer_step",
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/optimizer_step.py"] + list(sys.argv[1:] if argv is None else argv)),
        "device": device_info(),
        "load_average_before": list(load_before) if load_before else None,
        "load_average_after": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": versions(torch),
        "config": {
            "params": params,
            "variables": len(shapes),
            "shapes": [list(s) for s in shapes],
            "dtype": "float32",
            "rounds": rounds,
            "steps": steps,
            "warmup": args.warmup,
            "xla_modes": modes,
            "optimizers": names,
            "ablations": ablations,
            "ratio": "median over rounds of (ours ms / keras ms) in the same round",
        },
        "targets": {"no_xla": TARGETS[False], "xla": TARGETS[True]},
        "results": results,
        "state_memory": memory,
    }
    if args.json:
        write_json(report, args.json)
    return report


if __name__ == "__main__":
    main()
