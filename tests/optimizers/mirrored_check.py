"""Run by test_distributed.py in a fresh process: two logical CPU devices must be
configured before TensorFlow initializes. Prints one JSON object: case (an optimizer
name, or ``NAME+clip+skip``: tests.helpers.multi_device_case) → ``diff``, max
|weights(MirroredStrategy) − weights(one device)| after two epochs of fit, ``moved``,
and the telemetry of both runs (``single``, ``mirrored``: steps, clipped, skipped)."""

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

# float64, as the JAX DataParallel check: in float32, AdaGrad's per-coordinate scaling
# turns the rounding of a cancelling gradient sum (two half-batch sums vs one batch)
# into 2.8e-6 on one weight of a nearly constant input pixel after 16 steps.
keras.config.set_floatx("float64")

from tests.helpers import LOSS, digits_subset, make_mlp, multi_device_case  # noqa: E402
from tests.optimizers.cases import NAMES, OPTIMIZERS  # noqa: E402


def train(name, kwargs, x, y, initial, strategy=None):
    scope = strategy.scope() if strategy else tf.distribute.get_strategy().scope()
    with scope:
        model = make_mlp()
        model.set_weights(initial)
        model.compile(optimizer=OPTIMIZERS[name](**kwargs), loss=LOSS)
    model.fit(x, y, batch_size=64, epochs=2, shuffle=False, verbose=0)  # 512/64: every batch full
    opt = model.optimizer
    telemetry = {"steps": int(opt.iterations.numpy())}
    if opt.clipped_steps is not None:
        telemetry.update(clipped=int(opt.clipped_steps.numpy()), skipped=int(opt.skipped_steps.numpy()))
    return model.get_weights(), telemetry


def main(cases):
    x, y = digits_subset(512)
    x = x.astype("float64")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    initial = make_mlp().get_weights()
    out = {}
    for case in cases:
        name, kwargs, x_case = multi_device_case(case, x)
        single, seen_1 = train(name, kwargs, x_case, y, initial)
        mirrored, seen_2 = train(name, kwargs, x_case, y, initial, strategy)
        moved = max(float(np.abs(a - b).max()) for a, b in zip(single, initial))
        diff = max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored))
        out[case] = {"diff": diff, "moved": moved, "single": seen_1, "mirrored": seen_2}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:] or NAMES)
