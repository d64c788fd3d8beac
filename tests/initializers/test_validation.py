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

pytestmark = pytest.mark.backend_agnostic

INF, NAN = float("inf"), float("nan")

# (call, exception, the argument named, the value echoed)
BAD = [
    # FanInUniform / NormalizedUniform: scale, seed
    (lambda: FanInUniform(scale="a"), TypeError, "scale", "'a'"),
    (lambda: FanInUniform(scale=None), TypeError, "scale", "None"),
    (lambda: FanInUniform(scale=np.bool_(True)), TypeError, "scale", "np.True_"),
    (lambda: FanInUniform(scale=0), ValueError, "scale", "0"),
    (lambda: FanInUniform(scale=np.float32(-0.5)), ValueError, "scale", "np.float32(-0.5)"),
    (lambda: FanInUniform(scale=INF), ValueError, "scale", "inf"),
    (lambda: NormalizedUniform(scale=NAN), ValueError, "scale", "nan"),
    (lambda: NormalizedUniform(scale=[1.0]), TypeError, "scale", "[1.0]"),
    (lambda: FanInUniform(seed="x"), TypeError, "seed", "'x'"),
    (lambda: FanInUniform(seed=1.5), TypeError, "seed", "1.5"),
    (lambda: NormalizedUniform(seed=True), TypeError, "seed", "True"),
    # SparseK: k, scale, seed
    (lambda: SparseK(k=0), ValueError, "k", "0"),
    (lambda: SparseK(k=np.int64(-2)), ValueError, "k", "np.int64(-2)"),
    (lambda: SparseK(k=3.0), TypeError, "k", "3.0"),
    (lambda: SparseK(k="3"), TypeError, "k", "'3'"),
    (lambda: SparseK(scale="a"), TypeError, "scale", "'a'"),
    (lambda: SparseK(scale=INF), ValueError, "scale", "inf"),
    (lambda: SparseK(scale=-1e-9), ValueError, "scale", "-1e-09"),
    (lambda: SparseK(seed=[1]), TypeError, "seed", "[1]"),
    # Scaled: initializer, scale
    (lambda: Scaled(keras.layers.Dense(3), 2.0), TypeError, "initializer", "<Dense"),
    (lambda: Scaled(None, 2.0), TypeError, "initializer", "None"),
    (lambda: Scaled(3.0, 2.0), TypeError, "initializer", "3.0"),
    (lambda: Scaled(keras.layers.Dense, 2.0), TypeError, "initializer", "<class 'keras"),
    (lambda: Scaled("no_such_initializer", 2.0), ValueError, "initializer", "'no_such_initializer'"),
    (lambda: Scaled("ones", "2"), TypeError, "scale", "'2'"),
    (lambda: Scaled("ones", 0.0), ValueError, "scale", "0.0"),
    (lambda: Scaled("ones", INF), ValueError, "scale", "inf"),
    # GateBias: values, the named gates, open_probability
    (lambda: GateBias("abc"), TypeError, "values", "'abc'"),
    (lambda: GateBias(3.0 + 1j), TypeError, "values", "(3+1j)"),
    (lambda: GateBias([]), ValueError, "values", "[]"),
    (lambda: GateBias([0.0, NAN]), ValueError, "values[1]", "nan"),
    (lambda: GateBias([True]), TypeError, "values[0]", "True"),
    (lambda: GateBias.lstm(forget="1"), TypeError, "forget", "'1'"),
    (lambda: GateBias.lstm(cell=INF), ValueError, "cell", "inf"),
    (lambda: GateBias.gru(reset=None), TypeError, "reset", "None"),
    (lambda: GateBias.gate(np.float64(1.0)), ValueError, "open_probability", "np.float64(1.0)"),
    (lambda: GateBias.gate("0.5"), TypeError, "open_probability", "'0.5'"),
    # MarginalBias: values, link, smoothing, num_classes
    (lambda: MarginalBias([1.0, "b"]), TypeError, "values[1]", "'b'"),
    (lambda: MarginalBias([-INF]), ValueError, "values[0]", "-inf"),
    (lambda: MarginalBias.from_labels([0, 1], link=None), TypeError, "link", "None"),
    (lambda: MarginalBias.from_labels([0, 1], link="relu"), ValueError, "link", "'relu'"),
    (lambda: MarginalBias.from_labels([0, 1], smoothing="1"), TypeError, "smoothing", "'1'"),
    (lambda: MarginalBias.from_labels([0, 1], smoothing=INF), ValueError, "smoothing", "inf"),
    (lambda: MarginalBias.from_labels([0, 1], smoothing=-0.5), ValueError, "smoothing", "-0.5"),
    (lambda: MarginalBias.from_labels([0, 1], num_classes=2.0), TypeError, "num_classes", "2.0"),
    (lambda: MarginalBias.from_labels([0, 1], num_classes=0), ValueError, "num_classes", "0"),
]


@pytest.mark.parametrize("call, error, name, value", BAD, ids=[f"{b[2]}={b[3]}" for b in BAD])
def test_bad_argument_raises_the_contract_error(call, error, name, value):
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error
    message = str(info.value)
    assert f"`{name}`" in message
    assert f"{name}={value}" in message


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
