"""Run by test_distributed.py in a fresh process: two logical CPU devices must be
configured before TensorFlow initializes. Prints one JSON object: optimizer name →
max |weights(MirroredStrategy) − weights(one device)| after two epochs of fit."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

from tests.helpers import LOSS, digits_subset, make_mlp  # noqa: E402
from tests.optimizers.cases import NAMES, OPTIMIZERS  # noqa: E402


def train(name, x, y, initial, strategy=None):
    scope = strategy.scope() if strategy else tf.distribute.get_strategy().scope()
    with scope:
        model = make_mlp()
        model.set_weights(initial)
        model.compile(optimizer=OPTIMIZERS[name](), loss=LOSS)
    model.fit(x, y, batch_size=64, epochs=2, shuffle=False, verbose=0)  # 512/64: every batch full
    return model.get_weights(), int(np.asarray(model.optimizer.iterations.numpy()))


def main(names):
    x, y = digits_subset(512)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    initial = make_mlp().get_weights()
    out = {}
    for name in names:
        single, steps_1 = train(name, x, y, initial)
        mirrored, steps_2 = train(name, x, y, initial, strategy)
        assert steps_1 == steps_2 == 16, (steps_1, steps_2)
        moved = max(float(np.abs(a - b).max()) for a, b in zip(single, initial))
        diff = max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored))
        out[name] = {"diff": diff, "moved": moved}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:] or NAMES)
