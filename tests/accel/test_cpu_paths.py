"""keras_optlab's own CPU kernels (keras_optlab.accel.cpu): one pass per step.

On the TensorFlow backend, outside XLA and on the CPU, Momentum, Nesterov, AdaGrad,
RMSProp, NesterovRMSProp and Adam update float32/float64 variables through
``KerasOptlab>BookApply*`` ops built from ``book_kernels.cc``. The book suite
(test_book.py) and the shared suite (test_shared.py: save/resume bit for bit,
skip_nonfinite, EMA, accumulation, mixed precision) run on this path by default;
these tests check that it is the path taken, that it computes exactly the keras.ops
rule, its error messages and copy-on-write (the build, its cache and the fallbacks:
tests/accel/test_cpu_build.py).

Tolerance: none. The kernels compute the keras.ops rule's operations in the same
order on the same dtype-rounded scalars, without FMA contraction; IEEE 754 rounds
+, −, ×, ÷ and √ correctly, vectorised or not. Compared with the rule run eagerly
(where TF's graph optimizer cannot rewrite a/√b into a·rsqrt(b)), every bit agrees.
"""

import shutil

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow CPU kernels")

tf = pytest.importorskip("tensorflow")

import keras_optlab as ko  # noqa: E402
from keras_optlab.accel import cpu  # noqa: E402
from tests.accel import drivers  # noqa: E402
from tests.accel.drivers import KERNEL_OPS  # noqa: E402

HAS_COMPILER = shutil.which(cpu.compiler()) is not None
needs_compiler = pytest.mark.skipif(not HAS_COMPILER, reason="no C++ compiler to build the kernels")

# (1000,) is above the size at which TF's thread pool splits the work into blocks.
SHAPES = [(7, 5), (5,), (3, 3, 2, 4), (100_000,)]
ALL = ("kernel", "fused", "ops")
OPS_ONLY = ("ops",)  # the keras.ops rule: the reference


def gradients(dtype, steps, seed=0):
    return drivers.gradients(dtype, steps, seed, shapes=SHAPES)


def run(optimizer, dtype, grads, mode, paths=ALL):
    """Weights, then every optimizer variable, after the run."""
    weights, optimizer_variables = drivers.run(optimizer, dtype, grads, mode, paths=paths)
    return weights + optimizer_variables


def traced_op_types(optimizer, jit_compile=False, paths=ALL):
    return drivers.traced_op_types(optimizer, jit_compile=jit_compile, shapes=SHAPES, paths=paths)


@pytest.fixture(scope="module", autouse=True)
def built():
    if HAS_COMPILER:
        assert cpu.load() is not None, cpu.status()["error"]


# --------------------------------------------------------------------------- the path


@needs_compiler
@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
def test_kernel_is_in_the_graph(name):
    factory, op = KERNEL_OPS[name]
    types = traced_op_types(factory())
    assert types.count(op) == len(SHAPES), sorted(set(types))
    assert not any(t.startswith("ResourceApply") for t in types)
    assert factory().update_path(keras.Variable(np.ones(3), dtype="float32")) == "kernel"
    assert op not in traced_op_types(factory(), paths=OPS_ONLY)


@needs_compiler
@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
def test_xla_never_gets_the_kernel(name):
    """The kernels have no XLA lowering: a jit_compile=True step uses TF's fused kernel
    or the keras.ops rule."""
    factory, _ = KERNEL_OPS[name]
    types = traced_op_types(factory(), jit_compile=True)
    assert not any(t.startswith("KerasOptlab>") for t in types), sorted(set(types))


@needs_compiler
def test_other_dtypes_and_sgd_keep_tf_kernels():
    """float16 has no kernel of ours; SGD's TF kernel already makes one pass.
    float16 Adam takes the keras.ops rule: TF's ResourceApplyAdam forms its
    scalars in float16 (tests/optimizers/test_low_precision.py)."""
    assert ko.Momentum().update_path(keras.Variable(np.ones(3), dtype="float16")) == "fused"
    assert ko.Adam().update_path(keras.Variable(np.ones(3), dtype="float16")) == "ops"
    assert ko.RMSProp().update_path(keras.Variable(np.ones(3), dtype="float16")) == "ops"
    assert ko.SGD().update_path(keras.Variable(np.ones(3), dtype="float32")) == "fused"


# --------------------------------------------------------------------------- the arithmetic


@needs_compiler
@pytest.mark.parametrize("mode", ["eager", "graph"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
def test_kernel_equals_keras_ops_rule_bit_for_bit(name, dtype, mode):
    factory, _ = KERNEL_OPS[name]
    grads = gradients(dtype, steps=60)
    ours = run(factory(), dtype, grads, mode)
    rule = run(factory(), dtype, grads, "eager", paths=OPS_ONLY)
    for a, b in zip(ours, rule):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(ours[0], np.random.default_rng(1).normal(size=SHAPES[0]))  # it moved


@needs_compiler
@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
def test_kernel_with_clipping_decay_ema_and_skip(name):
    """The kernel sees the gradient after clipping and weight decay; a skipped step
    restores everything (the snapshot taken before the kernel writes must survive it)."""
    factory, _ = KERNEL_OPS[name]
    kwargs = dict(global_clipnorm=1.0, weight_decay=0.01, skip_nonfinite=True, use_ema=True)
    grads = gradients("float64", steps=20, seed=3)
    grads[10] = [g * np.nan if i == 1 else g for i, g in enumerate(grads[10])]
    outs = []
    for paths in (ALL, OPS_ONLY):
        optimizer = factory(**kwargs)
        # eager: in a graph, TF's optimizer may reorder the clipping norm's sum
        outs.append(run(optimizer, "float64", grads, "eager", paths=paths))
        assert int(optimizer.skipped_steps.numpy()) == 1 and int(optimizer.iterations.numpy()) == 19
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


@needs_compiler
def test_a_value_read_before_the_update_keeps_its_contents():
    """Copy-on-write: TF hands out the variable's buffer to readers; the kernel must
    not write into a buffer someone still holds."""
    optimizer = ko.Adam(learning_rate=0.1)
    variable = keras.Variable(np.ones((4, 3)), dtype="float32")
    optimizer.build([variable])
    slot = optimizer.slots(variable)[0]  # the first moment
    before_w = tf.convert_to_tensor(variable.value)
    before_s = tf.convert_to_tensor(slot.value)
    optimizer.apply([tf.ones((4, 3))], [variable])
    np.testing.assert_array_equal(before_w.numpy(), 1.0)
    np.testing.assert_array_equal(before_s.numpy(), 0.0)
    assert np.all(variable.numpy() < 1.0) and np.all(slot.numpy() > 0.0)


@needs_compiler
def test_fit_then_save_and_resume_on_the_kernel_path(tmp_path):
    x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    y = x @ np.arange(8, dtype="float32")[:, None]

    def model():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)])
        m.compile(optimizer=ko.Adam(learning_rate=0.01), loss="mse")
        return m

    straight = model()
    straight.fit(x, y, epochs=4, batch_size=16, shuffle=False, verbose=0)
    first = model()
    first.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    first.save(tmp_path / "m.keras")
    resumed = keras.saving.load_model(tmp_path / "m.keras")
    resumed.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert straight.optimizer.update_path(straight.trainable_variables[0]) == "kernel"


@needs_compiler
def test_jit_compiled_fit_falls_back_to_tf_kernels():
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    losses = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        m.compile(optimizer=ko.RMSProp(learning_rate=0.01), loss="mse", jit_compile=jit)
        losses.append(m.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)  # float32: XLA may fuse differently
    assert losses[0][-1] < losses[0][0]


# --------------------------------------------------------------------------- bad input


@needs_compiler
def test_shape_and_dtype_mismatches_are_refused_by_name():
    apply = cpu.op("momentum")
    var = tf.Variable(tf.ones((3, 2)))
    velocity = tf.Variable(tf.zeros((3, 2)))
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"KerasOptlab>BookApplyMomentum.*shape \[3,2\].*gradient has shape \[6\]",
    ):
        apply(var=var.handle, velocity=velocity.handle, grad=tf.ones(6), lr=0.1, momentum=0.9)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"holds float.*gradient is double"):
        apply(
            var=var.handle, velocity=velocity.handle, grad=tf.ones((3, 2), tf.float64),
            lr=tf.constant(0.1, tf.float64), momentum=tf.constant(0.9, tf.float64),
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="distinct"):
        apply(var=var.handle, velocity=var.handle, grad=tf.ones((3, 2)), lr=0.1, momentum=0.9)
    np.testing.assert_array_equal(var.numpy(), 1.0)  # nothing was written


# --------------------------------------------------------------------------- distribution
# (the build, its cache and the fallbacks: tests/accel/test_cpu_build.py)


@needs_compiler
@pytest.mark.slow
def test_kernels_under_mirrored_strategy():
    drivers.check_mirrored("kernel", KERNEL_OPS)
