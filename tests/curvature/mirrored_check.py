"""Run by test_devices.py in a fresh process (two logical CPU devices must be configured
before TensorFlow initializes): the curvature products inside a
``tf.distribute.MirroredStrategy`` scope over two devices against one device
(tests/curvature/device_cases.py). Prints one JSON object: ``diffs`` (case → relative
difference), ``replicas`` (the strategy's), ``replicated`` (how many of the model's
traced product functions run under the strategy: > 0 shows the split happened),
``refused`` (a loss reduced by "sum" on a batch of 37 under two replicas: the message)
and ``even_sum`` (the relative difference of that loss on an even batch of 36)."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_optlab import curvature  # noqa: E402
from keras_optlab.curvature.oracle import model_oracle  # noqa: E402
from tests.curvature import device_cases  # noqa: E402


def main():
    model, x, y, w = device_cases.model_and_data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(6)
    one = device_cases.measurements(model, x, y, w, dataset)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mirrored, _, _, _ = device_cases.model_and_data()
        mirrored.set_weights(model.get_weights())
        several = device_cases.measurements(mirrored, x, y, w, dataset)
    oracle = model_oracle(mirrored)
    replicated = sum(
        1 for f in (oracle.product, oracle._gauss_newton, oracle._fisher, oracle.value_and_gradient)
        for key in f.functions if "replicas" in key
    )
    # Outside the scope, a model made in it still runs on its strategy's replicas.
    outside = curvature.operator(mirrored, x, y, sample_weight=w, batch_size=7).to_dense()
    diffs = device_cases.compare(one, several)
    diffs["hessian outside the scope, batch_size=7"] = float(
        np.abs(outside - one["hessian one batch"]).max() / np.abs(one["hessian one batch"]).max())
    # A loss reduced by "sum": not scaled by Keras, so only equal shares add up.
    summed = keras.losses.MeanSquaredError(reduction="sum")
    model.compile(loss=summed)
    with strategy.scope():
        mirrored.compile(loss=summed)
        try:
            curvature.operator(mirrored, x, y) @ np.ones(26)
            refused = None
        except ValueError as error:
            refused = str(error)
        even = curvature.operator(mirrored, x[:36], y[:36]).to_dense()
    reference = curvature.operator(model, x[:36], y[:36]).to_dense()
    print(json.dumps({
        "diffs": diffs,
        "replicas": strategy.num_replicas_in_sync,
        "replicated": replicated,
        "refused": refused,
        "even_sum": float(np.abs(even - reference).max() / np.abs(reference).max()),
    }))


if __name__ == "__main__":
    main()
