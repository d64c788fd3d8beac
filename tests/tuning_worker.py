"""One process of the distributed search test (tests/test_tuning.py): chief or worker.

Keras Tuner reads its role from KERASTUNER_TUNER_ID / _ORACLE_IP / _ORACLE_PORT; every
process runs this same script, the way the distributed mode is meant to be used.

    python tests/tuning_worker.py DIRECTORY MAX_TRIALS REPORT.json
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_optlab.tuning import search_init  # noqa: E402


def main(directory, max_trials, report_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2, activation="softmax")]
    )
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    result = search_init(
        model, x, y, validation_data=(x, y), max_trials=int(max_trials), epochs=1, batch_size=32,
        directory=directory, project_name="distributed", verbose=0,
    )
    report = {"role": result.role, "tuner_id": os.environ.get("KERASTUNER_TUNER_ID")}
    if result.role == "chief":
        # The chief trained nothing itself: its best model is loaded from the checkpoint a
        # worker wrote into the shared directory.
        report["trials"] = result.trials
        report["best_hyperparameters"] = result.best_hyperparameters.values
        report["prediction_shape"] = list(result.best_model.predict(x[:3], verbose=0).shape)
    with open(report_path, "w", encoding="utf-8") as file:
        json.dump(report, file)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
