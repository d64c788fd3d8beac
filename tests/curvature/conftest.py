"""The curvature checks run in float64 (floatx too: Keras casts the compiled loss to
floatx, and a float32 loss would cap every comparison at ~1e-7)."""

import pytest

from tests.curvature.exact import float64


@pytest.fixture(autouse=True)
def _float64():
    with float64():
        yield
