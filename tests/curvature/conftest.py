"""The curvature checks run in float64 (floatx too: Keras casts the compiled loss to
floatx, and a float32 loss would cap every comparison at ~1e-7)."""

import keras
import pytest


@pytest.fixture(autouse=True)
def _float64():
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(previous)
