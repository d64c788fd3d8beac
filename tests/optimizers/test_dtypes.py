"""Variables of a non-float dtype are refused (issue 13, item 6 leftovers).

Before: ``SGD.apply`` on an int32 variable silently did nothing (the learning rate
cast to int32 is 0) — as Keras' own ``keras.optimizers.SGD`` still does. Now build
(hence apply and fit) raises TypeError naming the variable and its dtype.
"""

import keras
import numpy as np
import pytest

from tests.optimizers.cases import NAMES, OPTIMIZERS

pytestmark = pytest.mark.backend_agnostic


def integer_variable(value, dtype, name=None):
    """A variable of an integer/bool dtype. On PyTorch a trainable one cannot exist
    (torch refuses ``requires_grad`` on a non-float tensor, so Keras' torch Variable
    raises RuntimeError at creation): there it is made non-trainable, which the
    optimizer, handed it explicitly, must refuse all the same."""
    return keras.Variable(value, dtype=dtype, name=name, trainable=keras.backend.backend() != "torch")


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "bool"])
@pytest.mark.parametrize("name", NAMES)
def test_integer_variable_is_refused_at_apply(name, dtype):
    optimizer = OPTIMIZERS[name]()
    good = keras.Variable(np.ones(2), dtype="float32", name="good")
    bad = integer_variable(np.ones(2, dtype), dtype, name="counts")
    with pytest.raises(TypeError) as info:
        optimizer.apply([np.ones(2, "float32"), np.ones(2, dtype)], [good, bad])
    message = str(info.value)
    assert "counts" in message and f"dtype={dtype}" in message, message
    assert not optimizer.built
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(good), 1.0)


@pytest.mark.parametrize("name", NAMES)
def test_integer_variable_is_refused_at_build(name):
    with pytest.raises(TypeError, match="dtype=int32"):
        OPTIMIZERS[name]().build([integer_variable(np.ones(2, "int32"), "int32")])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_float_variables_are_accepted_and_slots_take_their_dtype(name, dtype):
    optimizer = OPTIMIZERS[name]()
    variable = keras.Variable(np.full(3, 0.5), dtype=dtype)
    optimizer.apply([keras.ops.convert_to_tensor(np.full(3, 0.5), dtype)], [variable])
    assert keras.backend.standardize_dtype(variable.dtype) == dtype
    assert float(np.asarray(keras.ops.convert_to_numpy(variable), "float64")[0]) < 0.5
    for slot in optimizer.slots(variable):
        assert keras.backend.standardize_dtype(slot.dtype) == dtype
