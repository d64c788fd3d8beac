"""Run by test_multi_device.py in a fresh process: ``keras.distribution.DataParallel``
on JAX over N virtual CPU devices equals one device, in float64.

XLA's host-device count must be set before JAX is imported, and the backend before
Keras is, so this script sets both itself (``XLA_FLAGS``, ``KERAS_BACKEND=jax``,
``JAX_ENABLE_X64=1``) whatever the parent process runs on.

Usage: ``data_parallel_check.py [--devices N] [CASE ...]`` (4 devices by default); a
case is an optimizer name of tests/optimizers/cases.py, or ``NAME+clip+skip``: the same
optimizer with ``global_clipnorm`` below the gradient norm (it clips) and
``skip_nonfinite=True``, on inputs whose batch 3 holds one NaN (that step is skipped,
each epoch) — see ``tests.helpers.multi_device_case``.

Prints one JSON object: case → ``diff`` (max |weights(DataParallel) − weights(one
device)| after two epochs of fit, 16 full batches), ``moved`` (max |weights − initial|),
``steps``, ``skipped`` and ``clipped`` (the telemetry, one device and DataParallel).
"""

import json
import os
import sys

DEVICES = 4
if "--devices" in sys.argv:
    i = sys.argv.index("--devices")
    DEVICES = int(sys.argv[i + 1])
    del sys.argv[i : i + 2]
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
import numpy as np  # noqa: E402

assert keras.backend.backend() == "jax", keras.backend.backend()
keras.config.set_floatx("float64")

from tests.helpers import LOSS, digits_subset, make_mlp, multi_device_case  # noqa: E402
from tests.optimizers.cases import NAMES, OPTIMIZERS  # noqa: E402

BATCH, EPOCHS = 64, 2  # 512 / 64: every batch full, 16 steps


def train(name, kwargs, x, y, initial, distribution=None):
    def fit():
        model = make_mlp()
        model.set_weights(initial)
        optimizer = OPTIMIZERS[name](**kwargs)
        model.compile(optimizer=optimizer, loss=LOSS)
        model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0)
        assert all(w.dtype == np.float64 for w in model.get_weights())
        # The weights really live on the mesh (replicated), not on one device.
        spread = {len(v.value.sharding.device_set) for v in model.trainable_variables}
        assert spread == {1 if distribution is None else DEVICES}, spread
        telemetry = {
            "steps": int(optimizer.iterations.numpy()),
            "skipped": int(optimizer.skipped_steps.numpy()),
            "clipped": int(optimizer.clipped_steps.numpy()),
        }
        return model.get_weights(), telemetry

    if distribution is None:
        return fit()
    with distribution.scope():
        return fit()


def main(cases):
    devices = jax.devices("cpu")
    assert len(devices) == DEVICES, devices
    distribution = keras.distribution.DataParallel(devices=devices)
    assert distribution.num_model_replicas == DEVICES
    x, y = digits_subset(512)
    x = x.astype("float64")
    initial = make_mlp().get_weights()
    out = {}
    for case in cases:
        name, kwargs, inputs = multi_device_case(case, x)
        single, t1 = train(name, kwargs, inputs, y, initial)
        parallel, t2 = train(name, kwargs, inputs, y, initial, distribution)
        out[case] = {
            "diff": max(float(np.abs(a - b).max()) for a, b in zip(single, parallel)),
            "moved": max(float(np.abs(a - b).max()) for a, b in zip(single, initial)),
            "finite": bool(all(np.isfinite(w).all() for w in single + parallel)),
            "single": t1,
            "parallel": t2,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:] or NAMES)
