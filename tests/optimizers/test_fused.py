"""The TensorFlow fallback fast path: TF's fused training kernels (ResourceApply*).

On the TF backend SGD, Momentum, Nesterov, AdaGrad and Adam can update through one of
TF's fused kernels per variable (``BookOptimizer.fused_update``). It is the path on GPU,
under XLA, and on the CPU when keras_optlab's own kernels (tests/kernels) are off or
could not be built — which is how these tests force it (``fused_path``). They check
that the kernel is really in the traced graph, and that it computes the keras.ops rule.

Tolerances. float64: the kernels compute the same operations in the same order as the
keras.ops rule (see each ``fused_update``), so the results agree to the last bit here;
rtol 1e-12 leaves room for a kernel build that vectorises differently (a few ulp per
step over 200 steps is ~1e-13). float32: the fused kernels may round sqrt/divide
differently in their vectorised loops (Adam here), so each step may differ by a few
ulp of the update plus half an ulp of the weight; over N steps that is bounded by
N·ε₃₂·max|θ| (ε₃₂ = 1.2e-7), which is the atol used.
"""

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow fast path")

tf = pytest.importorskip("tensorflow")

import keras_optlab as ko  # noqa: E402

STEPS = 200

# name -> (factory with large epsilons so their placement matters, the kernel expected)
FUSED = {
    "SGD": (lambda **kw: ko.SGD(learning_rate=0.01, **kw), "ResourceApplyGradientDescent"),
    "Momentum": (lambda **kw: ko.Momentum(learning_rate=0.01, momentum=0.9, **kw), "ResourceApplyKerasMomentum"),
    "Nesterov": (lambda **kw: ko.Nesterov(learning_rate=0.01, momentum=0.9, **kw), "ResourceApplyKerasMomentum"),
    "AdaGrad": (lambda **kw: ko.AdaGrad(learning_rate=0.1, epsilon=0.1, initial_accumulator_value=0.5, **kw), "ResourceApplyAdagradV2"),
    "Adam": (lambda **kw: ko.Adam(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=0.1, **kw), "ResourceApplyAdam"),
}
UNFUSED = {  # RMSProp's only kernel needs a momentum slot the book's algorithm has not
    "RMSProp": lambda: ko.RMSProp(learning_rate=0.001),
    "NesterovRMSProp": lambda: ko.NesterovRMSProp(learning_rate=0.001),
}
SHAPES = [(7, 5), (5,), (3, 3, 2, 4)]


def fused_path(optimizer):
    """The same optimizer with keras_optlab's CPU kernel off: TF's fused kernel."""
    optimizer.kernel_update = None
    return optimizer


def ops_path(optimizer):
    """The same optimizer forced onto the keras.ops rule."""
    optimizer.fused_update = optimizer.kernel_update = None
    return optimizer


def gradients(dtype, steps=STEPS, seed=0, shapes=SHAPES):
    """Gradients whose scales span five decades, as in test_book.py."""
    rng = np.random.default_rng(seed)
    return [
        [tf.constant(rng.normal(size=s) * 10.0 ** rng.uniform(-3, 2), dtype) for s in shapes] for _ in range(steps)
    ]


def run(optimizer, dtype, grads, mode="eager"):
    """(weights, optimizer variables) after applying ``grads`` (one variable per
    gradient, of its shape, from fixed random values) in ``mode``."""
    rng = np.random.default_rng(1)
    variables = [keras.Variable(rng.normal(size=tuple(g.shape)), dtype=dtype) for g in grads[0]]
    optimizer.build(variables)

    def step(g):
        optimizer.apply(g, variables)

    if mode != "eager":
        step = tf.function(step, jit_compile=(mode == "xla"))
    for g in grads:
        step(g)
    return [v.numpy() for v in variables], [v.numpy() for v in optimizer.variables]


def traced_op_types(optimizer, dtype="float32", jit_compile=False, shapes=SHAPES):
    variables = [keras.Variable(np.ones(s), dtype=dtype) for s in shapes]
    optimizer.build(variables)
    fn = tf.function(lambda g: optimizer.apply(g, variables), jit_compile=jit_compile)
    graph = fn.get_concrete_function([tf.TensorSpec(s, dtype) for s in shapes]).graph
    return [op.type for op in graph.get_operations()]


def assert_close(a, b, dtype):
    for x, y in zip(a, b):
        if dtype == "float64":
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=0)
        else:
            scale = max(1.0, float(np.max(np.abs(y)))) if np.size(y) else 1.0
            np.testing.assert_allclose(x, y, rtol=0, atol=STEPS * np.finfo(np.float32).eps * scale)


@pytest.mark.parametrize("name", sorted(FUSED))
def test_fused_kernel_is_in_the_graph(name):
    factory, kernel = FUSED[name]
    types = traced_op_types(fused_path(factory()))
    assert types.count(kernel) == len(SHAPES), (kernel, sorted(set(types)))
    assert kernel not in traced_op_types(ops_path(factory()))


@pytest.mark.parametrize("name", sorted(UNFUSED))
def test_rmsprop_family_has_no_tf_kernel(name):
    """TF has no kernel for the book's one-slot RMSProp: without ours, keras.ops."""
    types = traced_op_types(fused_path(UNFUSED[name]()))
    assert not any(t.startswith(("ResourceApply", "BookApply")) for t in types), sorted(set(types))


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(FUSED))
def test_fused_equals_keras_ops_rule(name, dtype, mode):
    factory, _ = FUSED[name]
    grads = gradients(dtype, steps=STEPS if mode != "eager" else 100)
    fused_w, fused_slots = run(fused_path(factory()), dtype, grads, mode)
    ops_w, ops_slots = run(ops_path(factory()), dtype, grads, mode)
    assert_close(fused_w, ops_w, dtype)
    assert_close(fused_slots, ops_slots, dtype)  # slots, iterations, telemetry
    assert not np.allclose(fused_w[0], np.random.default_rng(1).normal(size=SHAPES[0]))  # it moved


@pytest.mark.parametrize("name", sorted(FUSED))
def test_sparse_gradient_through_the_kernel(name):
    """IndexedSlices (embedding rows) are densified first: slots decay everywhere."""
    factory, _ = FUSED[name]
    rng = np.random.default_rng(2)
    grads = [
        tf.IndexedSlices(
            tf.constant(rng.normal(size=(2, 3)), "float64"),
            tf.constant([k % 6, (k + 2) % 6], "int64"),
            dense_shape=tf.constant([6, 3], "int64"),
        )
        for k in range(20)
    ]
    results = []
    for optimizer in (fused_path(factory()), ops_path(factory())):
        table = keras.Variable(np.ones((6, 3)), dtype="float64")
        for grad in grads:
            optimizer.apply([grad], [table])
        assert not np.allclose(table.numpy(), 1.0)
        results.append(table.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", sorted(FUSED))
def test_fused_with_clipping_decay_and_skip(name):
    """The kernel sees the gradient after clipping/weight decay; skip_nonfinite restores."""
    factory, _ = FUSED[name]
    kwargs = dict(global_clipnorm=1.0, weight_decay=0.01, skip_nonfinite=True)
    grads = gradients("float64", steps=30, seed=3)
    grads[10] = [g * np.nan if i == 1 else g for i, g in enumerate(grads[10])]
    outs = []
    for optimizer in (fused_path(factory(**kwargs)), ops_path(factory(**kwargs))):
        w, _ = run(optimizer, "float64", grads, "graph")
        assert int(optimizer.skipped_steps.numpy()) == 1 and int(optimizer.iterations.numpy()) == 29
        outs.append(w)
    assert_close(outs[0], outs[1], "float64")


@pytest.mark.slow
def test_fused_kernels_under_mirrored_strategy():
    """Inside ``distribution.extended.update`` the slots' handles are those of the
    replica being updated: every replica ends equal, and equal to one device."""
    check_mirrored("fused", FUSED)


def check_mirrored(path, names):
    """Run ``mirrored_fused_check.py`` with ``path`` ("fused" or "kernel") in a fresh
    process (2 logical CPUs) and check each optimizer in ``names``."""
    import json
    import os
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "mirrored_fused_check.py")
    done = subprocess.run([sys.executable, script, path], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == set(names)
    for name, r in result.items():
        assert r["kernel_in_graph"], name
        assert r["moved"] > 1e-3, name
        assert r["replica_spread"] == 0.0, (name, r)  # the same kernel on the same inputs
        assert r["diff_to_single"] <= 1e-6, (name, r)  # float32; the same arithmetic up to the all-reduce order
