"""The TensorFlow fallback fast path: TF's fused training kernels (keras_optlab/accel/tf_fused.py).

On the TF backend SGD, Momentum, Nesterov, AdaGrad and Adam can update through one of
TF's fused kernels per variable (``ResourceApply*``). It is the path on GPU, under XLA,
and on the CPU when keras_optlab's own kernels (test_cpu_paths.py) are off or could not
be built — which is how these tests force it (``accel.paths("fused")``). They check
that the kernel is really in the traced graph, and that it computes the keras.ops rule.

Tolerances. float64: the kernels compute the same operations in the same order as the
keras.ops rule (see each function of tf_fused.py), so the results agree to the last bit here;
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

from keras_optlab import accel  # noqa: E402
from tests.accel.drivers import FUSED, STEPS, UNFUSED, SHAPES, check_mirrored, gradients, run, traced_op_types  # noqa: E402

FUSED_ONLY = ("fused",)  # TF's kernels where one exists, else keras.ops
OPS_ONLY = ("ops",)


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
    types = traced_op_types(factory(), paths=FUSED_ONLY)
    assert types.count(kernel) == len(SHAPES), (kernel, sorted(set(types)))
    assert kernel not in traced_op_types(factory(), paths=OPS_ONLY)


@pytest.mark.parametrize("name", sorted(UNFUSED))
def test_rmsprop_family_has_no_tf_kernel(name):
    """TF has no kernel for the book's one-slot RMSProp: without ours, keras.ops."""
    types = traced_op_types(UNFUSED[name](), paths=FUSED_ONLY)
    assert not any(t.startswith(("ResourceApply", "KerasOptlab>")) for t in types), sorted(set(types))


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(FUSED))
def test_fused_equals_keras_ops_rule(name, dtype, mode):
    factory, _ = FUSED[name]
    grads = gradients(dtype, steps=STEPS if mode != "eager" else 100)
    fused_w, fused_slots = run(factory(), dtype, grads, mode, paths=FUSED_ONLY)
    ops_w, ops_slots = run(factory(), dtype, grads, mode, paths=OPS_ONLY)
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
    for paths in (FUSED_ONLY, OPS_ONLY):
        optimizer = factory()
        table = keras.Variable(np.ones((6, 3)), dtype="float64")
        with accel.paths(*paths):
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
    for paths in (FUSED_ONLY, OPS_ONLY):
        optimizer = factory(**kwargs)
        w, _ = run(optimizer, "float64", grads, "graph", paths=paths)
        assert int(optimizer.skipped_steps.numpy()) == 1 and int(optimizer.iterations.numpy()) == 29
        outs.append(w)
    assert_close(outs[0], outs[1], "float64")


@pytest.mark.slow
def test_fused_kernels_under_mirrored_strategy():
    """Inside ``distribution.extended.update`` the slots' handles are those of the
    replica being updated: every replica ends equal, and equal to one device."""
    check_mirrored("fused", FUSED)
