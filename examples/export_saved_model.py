"""From training to serving: keras_optlab optimizers through `.keras` files and SavedModel.

Trains the lab's digits MLP with keras_optlab's Adam (Alg. 8.7) and a LinearDecay
schedule (Sec. 8.3.1), saves it as a `.keras` file and loads it back — the optimizer,
its schedule and its moment estimates included, so training resumes where it stopped
— then exports a TensorFlow SavedModel (`model.export`) and serves it with
`tf.saved_model.load`, which needs no keras_optlab at all. Prints what matched.

Run: python examples/export_saved_model.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_optlab.lab import build_mlp, load_digits  # noqa: E402
from keras_optlab.lab.plots import output_dir  # noqa: E402
from keras_optlab.optimizers import Adam  # noqa: E402
from keras_optlab.schedules import LinearDecay  # noqa: E402


def main():
    keras.utils.set_random_seed(0)
    x, y, x_val, y_val = load_digits()
    model = build_mlp(64, 10, seed=0)
    model.compile(Adam(LinearDecay(0.003, 0.0003, decay_steps=200)), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    out = output_dir()
    path = os.path.join(out, "digits_adam.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    schedule = loaded.optimizer.get_config()["learning_rate"]
    print(f"saved and loaded {path}: optimizer {type(loaded.optimizer).__module__}.{type(loaded.optimizer).__name__}, "
          f"learning rate {schedule.get('class_name', schedule) if isinstance(schedule, dict) else schedule}")
    print(f"  iterations {int(loaded.optimizer.iterations)} (original {int(model.optimizer.iterations)})")

    # In creation order: slot names carry the model's name, which loading drops. The
    # telemetry `gradient_norm` is NaN until tracked, hence equal_nan.
    def state(optimizer):
        return [keras.ops.convert_to_numpy(v) for v in optimizer.variables]

    before, after = state(model.optimizer), state(loaded.optimizer)
    same = len(before) == len(after) and all(np.array_equal(a, b, equal_nan=True) for a, b in zip(before, after))
    print(f"  {len(before)} optimizer variables (moments, step count) identical after loading: {same}")
    model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    resumed = max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), loaded.get_weights()))
    print(f"  one more epoch from each: max |weight difference| = {resumed:.2e}")

    export_dir = os.path.join(out, "digits_saved_model")
    model.export(export_dir, verbose=False)
    served = tf.saved_model.load(export_dir)
    probabilities = served.serve(tf.constant(x_val))
    gap = float(np.abs(probabilities.numpy() - model.predict(x_val, verbose=0)).max())
    accuracy = float(np.mean(np.argmax(probabilities.numpy(), axis=1) == y_val))
    print(f"exported SavedModel {export_dir}: served max |Δ probability| vs Keras = {gap:.2e}, "
          f"validation accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
