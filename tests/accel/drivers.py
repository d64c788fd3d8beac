"""Drivers shared by the speed-path tests (tests/accel) and their subprocess scripts.

Each path (``"kernel"``, ``"fused"``, ``"ops"``) is chosen with the public switch
``keras_optlab.accel.paths`` while a step is traced or run eagerly.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

import keras_optlab as ko
from keras_optlab import accel

STEPS = 200
SHAPES = [(7, 5), (5,), (3, 3, 2, 4)]

# name -> factory, with large epsilons so that their placement matters
FACTORIES = {
    "SGD": lambda **kw: ko.SGD(learning_rate=0.01, **kw),
    "Momentum": lambda **kw: ko.Momentum(learning_rate=0.01, momentum=0.9, **kw),
    "Nesterov": lambda **kw: ko.Nesterov(learning_rate=0.01, momentum=0.9, **kw),
    "AdaGrad": lambda **kw: ko.AdaGrad(learning_rate=0.1, epsilon=0.1, initial_accumulator_value=0.5, **kw),
    "RMSProp": lambda **kw: ko.RMSProp(learning_rate=0.01, rho=0.9, epsilon=0.1, **kw),
    "NesterovRMSProp": lambda **kw: ko.NesterovRMSProp(learning_rate=0.01, rho=0.9, momentum=0.8, epsilon=0.1, **kw),
    "Adam": lambda **kw: ko.Adam(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=0.1, **kw),
}
# name -> (factory, TF's fused kernel expected)
FUSED = {
    name: (FACTORIES[name], op)
    for name, op in {
        "SGD": "ResourceApplyGradientDescent",
        "Momentum": "ResourceApplyKerasMomentum",
        "Nesterov": "ResourceApplyKerasMomentum",
        "AdaGrad": "ResourceApplyAdagradV2",
        "Adam": "ResourceApplyAdam",
    }.items()
}
# RMSProp's only TF kernel needs a momentum slot the book's algorithm has not
UNFUSED = {name: FACTORIES[name] for name in ("RMSProp", "NesterovRMSProp")}
# name -> (factory, keras_optlab's CPU op expected); SGD has none (TF's is one pass)
KERNEL_OPS = {
    name: (FACTORIES[name], f"KerasOptlab>BookApply{op}")
    for name, op in {
        "Momentum": "Momentum",
        "Nesterov": "Nesterov",
        "AdaGrad": "Adagrad",
        "RMSProp": "Rmsprop",
        "NesterovRMSProp": "NesterovRmsprop",
        "Adam": "Adam",
    }.items()
}


def gradients(dtype, steps=STEPS, seed=0, shapes=SHAPES):
    """Gradients whose scales span five decades, as in test_book.py."""
    rng = np.random.default_rng(seed)
    return [
        [tf.constant(rng.normal(size=s) * 10.0 ** rng.uniform(-3, 2), dtype) for s in shapes] for _ in range(steps)
    ]


def run(optimizer, dtype, grads, mode="eager", paths=accel.PATHS):
    """(weights, optimizer variables) after applying ``grads`` (one variable per
    gradient, of its shape, from fixed random values) in ``mode`` ("eager", "graph",
    "xla"), on the update paths ``paths``."""
    rng = np.random.default_rng(1)
    variables = [keras.Variable(rng.normal(size=tuple(g.shape)), dtype=dtype) for g in grads[0]]
    with accel.paths(*paths):
        optimizer.build(variables)

        def step(g):
            optimizer.apply(g, variables)

        if mode != "eager":
            step = tf.function(step, jit_compile=(mode == "xla"))
        for g in grads:
            step(g)
    return [v.numpy() for v in variables], [v.numpy() for v in optimizer.variables]


def traced_op_types(optimizer, dtype="float32", jit_compile=False, shapes=SHAPES, paths=accel.PATHS):
    """The op types of one traced step of ``optimizer`` on variables of ``shapes``."""
    variables = [keras.Variable(np.ones(s), dtype=dtype) for s in shapes]
    with accel.paths(*paths):
        optimizer.build(variables)
        fn = tf.function(lambda g: optimizer.apply(g, variables), jit_compile=jit_compile)
        graph = fn.get_concrete_function([tf.TensorSpec(s, dtype) for s in shapes]).graph
    return [op.type for op in graph.get_operations()]


def check_mirrored(path, names):
    """Run ``mirrored_paths_check.py`` with ``path`` ("fused" or "kernel") in a fresh process
    (2 logical CPUs) and check each optimizer in ``names``."""
    script = os.path.join(os.path.dirname(__file__), "mirrored_paths_check.py")
    done = subprocess.run([sys.executable, script, path], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == set(names)
    for name, r in result.items():
        assert r["kernel_in_graph"], name
        assert r["moved"] > 1e-3, name
        assert r["replica_spread"] == 0.0, (name, r)  # the same kernel on the same inputs
        assert r["diff_to_single"] <= 1e-6, (name, r)  # float32; the same arithmetic up to the all-reduce order
