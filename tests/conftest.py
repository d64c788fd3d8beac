"""Shared test set-up: every test is seeded (Keras Tuner's habit)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield


def pytest_collection_modifyitems(config, items):
    """Under a non-TensorFlow backend run only the backend-agnostic tests (not those of
    them marked tensorflow_only: one test of a backend-agnostic module)."""
    if keras.backend.backend() == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"needs TensorFlow; backend is {keras.backend.backend()}")
    for item in items:
        if "backend_agnostic" not in item.keywords or "tensorflow_only" in item.keywords:
            item.add_marker(skip)
