"""Run by test_devices.py in a fresh process: the curvature products under
``keras.distribution.DataParallel`` on JAX over 4 virtual CPU devices against one device
(tests/curvature/device_cases.py), float64.

XLA's host-device count must be set before JAX is imported, and the backend before
Keras is, so this script sets both itself (``XLA_FLAGS``, ``KERAS_BACKEND=jax``,
``JAX_ENABLE_X64=1``) whatever the parent process runs on (as
tests/optimizers/data_parallel_check.py does). Prints one JSON object: ``diffs`` (case →
relative difference), ``devices`` (of the mesh), ``variable_devices`` (the devices each
trainable variable of the distributed model lives on) and ``batch_devices`` (those of a
batch of 8 as the products lay it out: > 1 shows the split happened).
"""

import json
import os
import sys

DEVICES = 4
flag = f"--xla_force_host_platform_device_count={DEVICES}"
os.environ["XLA_FLAGS"] = " ".join(
    [f for f in os.environ.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f] + [flag]
)
os.environ["KERAS_BACKEND"] = "jax"
os.environ["JAX_ENABLE_X64"] = "1"
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax  # noqa: E402
import keras  # noqa: E402

from keras_optlab.curvature import devices  # noqa: E402
from tests.curvature import device_cases  # noqa: E402


def main():
    assert keras.backend.backend() == "jax", keras.backend.backend()
    model, x, y, w = device_cases.model_and_data()
    one = device_cases.measurements(model, x, y, w)
    distribution = keras.distribution.DataParallel(devices=jax.devices("cpu"))
    with distribution.scope():
        parallel, _, _, _ = device_cases.model_and_data()
        parallel.set_weights(model.get_weights())
        several = device_cases.measurements(parallel, x, y, w)
        laid_out = devices.jax_laid_out(distribution, keras.ops.convert_to_tensor(x[:8]), None, None)[0]
    print(json.dumps({
        "diffs": device_cases.compare(one, several),
        "devices": len(jax.devices("cpu")),
        "variable_devices": sorted({len(v.value.sharding.device_set) for v in parallel.trainable_variables}),
        "batch_devices": len(laid_out.sharding.device_set),
    }))


if __name__ == "__main__":
    main()
