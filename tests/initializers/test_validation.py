"""Every argument check of keras_optlab.initializers follows keras_optlab._checks' contract.

TypeError for a wrong type, ValueError for a wrong value, the message names the
argument and echoes the value; NumPy scalars are accepted wherever Python numbers are;
infinity is refused where the math needs a finite number.
"""

import re

import keras
import numpy as np
import pytest

from keras_optlab.initializers import (
    FanInUniform,
    GateBias,
    MarginalBias,
    NormalizedUniform,
    Scaled,
    SparseK,
)
from tests.bad_inputs import initializers as bad_inputs

pytestmark = pytest.mark.backend_agnostic

# The bad-argument rows live in tests/bad_inputs/initializers.py (ROWS), run by
# tests/test_bad_inputs.py. Here each row is held to this area's stricter form: the
# exact exception class (not a subclass) and the argument named in backticks.
ROWS = bad_inputs.ROWS


@pytest.mark.parametrize("row", ROWS, ids=[f"{i}-{row.argument}" for i, row in enumerate(ROWS)])
def test_bad_argument_raises_the_contract_error(row):
    with pytest.raises(row.error) as info:
        row.call()
    assert type(info.value) is row.error
    message = str(info.value)
    assert f"`{row.argument}`" in message, message
    assert row.echo in message, message


# dtype at call time: a weight drawn (or converted) in an integer dtype would be truncated.
DTYPE_CALLS = [
    (FanInUniform(seed=0), (4, 3)),
    (NormalizedUniform(seed=0), (4, 3)),
    (SparseK(k=2, seed=0), (4, 3)),
    (GateBias.lstm(), (8,)),
    (MarginalBias([0.0, 1.0]), (2,)),
]


@pytest.mark.parametrize("initializer, shape", DTYPE_CALLS, ids=[type(i).__name__ for i, _ in DTYPE_CALLS])
@pytest.mark.parametrize(
    "dtype, error", [("int32", ValueError), ("bool", ValueError), ("no_such_dtype", ValueError), (3, TypeError)]
)
def test_non_float_dtype_rejected_naming_dtype(initializer, shape, dtype, error):
    with pytest.raises(error, match=re.escape(f"dtype={dtype!r}")) as info:
        initializer(shape, dtype=dtype)
    assert "`dtype`" in str(info.value)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", np.float32])
def test_float_dtypes_still_accepted(dtype):
    for initializer, shape in DTYPE_CALLS:
        value = initializer(shape, dtype=dtype)
        assert keras.backend.standardize_dtype(value.dtype) == keras.backend.standardize_dtype(dtype)


def test_numpy_scalars_accepted_and_stored_as_python_numbers():
    for initializer in (
        FanInUniform(scale=np.float32(0.5), seed=np.int64(3)),
        NormalizedUniform(scale=np.float64(0.5), seed=np.int32(3)),
        SparseK(k=np.int64(3), scale=np.float32(0.5), seed=np.int64(3)),
        Scaled("ones", np.float32(0.5)),
        Scaled(FanInUniform(seed=3), np.array(0.5)),  # 0-d array
    ):
        config = initializer.get_config()
        assert type(config["scale"]) is float and config["scale"] == 0.5
        if "seed" in config:
            assert type(config["seed"]) is int and config["seed"] == 3
    assert SparseK(k=np.int64(3)).k == 3 and type(SparseK(k=np.int64(3)).k) is int
    # Same values as the Python numbers give.
    for make in (FanInUniform, NormalizedUniform):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(make(scale=np.float32(0.5), seed=np.int64(3))((5, 4))),
            keras.ops.convert_to_numpy(make(scale=0.5, seed=3)((5, 4))),
        )
    gate = GateBias.lstm(input=np.float32(0.5), forget=np.int64(2))
    assert gate.values == [0.5, 2.0, 0.0, 0.0] and all(type(v) is float for v in gate.values)
    assert GateBias.gate(np.float64(0.5)).values == [0.0]
    assert GateBias(np.array([1.0, 2.0], "float32")).values == [1.0, 2.0]
    bias = MarginalBias.from_labels(np.array([0, 1, 1]), num_classes=np.int64(3), smoothing=np.float32(1.0))
    assert len(bias.values) == 3


def test_scaled_accepts_every_initializer_form():
    for identifier in ("ones", keras.initializers.Ones, keras.initializers.Ones(),
                       {"class_name": "Ones", "config": {}}):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(Scaled(identifier, 2.0)((2, 2))), np.full((2, 2), 2.0)
        )
