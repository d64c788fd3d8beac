"""Run by tests/accel (``fused`` and ``kernel``) in a fresh process (two logical CPU
devices must be configured before TensorFlow initializes).

``python mirrored_paths_check.py fused|kernel``: under MirroredStrategy each
optimizer's TF fused kernel (``fused``: ``accel.paths("fused")``) or keras_optlab's
own CPU kernel (``kernel``) is in the replica step's graph, and after 5 steps every
replica's weights and slots equal each other and a single-device run on the summed
gradient. Prints one JSON object."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_optlab import accel  # noqa: E402
from tests.accel.drivers import FUSED, KERNEL_OPS  # noqa: E402

PATH = sys.argv[1] if len(sys.argv) > 1 else "fused"
TABLE = FUSED if PATH == "fused" else KERNEL_OPS


def check(name, strategy):
    factory, kernel = TABLE[name]
    with strategy.scope():
        var = keras.Variable(np.linspace(-1, 1, 12).reshape(4, 3), dtype="float32")
        opt = factory()
        opt.build([var])

    @tf.function
    def step(x):
        def replica(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(var.value) * x)
            opt.apply([tape.gradient(loss, var.value)], [var])

        strategy.run(replica, args=(x,))

    ref = keras.Variable(np.linspace(-1, 1, 12).reshape(4, 3), dtype="float32")
    ref_opt = factory()
    ref_opt.build([ref])
    for k in range(5):
        x = tf.constant(np.full((4, 3), 0.1 * (k + 1)), tf.float32)
        g = 2 * (2 * ref.numpy() * x.numpy())  # the all-reduce sums two equal replica gradients
        step(x)
        ref_opt.apply([tf.constant(g)], [ref])
    mirrored = [var] + [v for v in opt.variables if len(v.shape) == 2]
    single = [ref] + [v for v in ref_opt.variables if len(v.shape) == 2]
    spread = max(float(np.abs(a.numpy() - b.numpy()).max()) for m in mirrored for a, b in [m.value.values])
    diff = max(float(np.abs(m.value.values[0].numpy() - s.numpy()).max()) for m, s in zip(mirrored, single))
    types = {op.type for op in step.get_concrete_function(x).graph.get_operations()}
    return {"kernel_in_graph": kernel in types, "replica_spread": spread, "diff_to_single": diff,
            "moved": float(np.abs(ref.numpy() - np.linspace(-1, 1, 12).reshape(4, 3)).max())}


if __name__ == "__main__":
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with accel.paths(PATH):
        print(json.dumps({name: check(name, strategy) for name in sorted(TABLE)}))
