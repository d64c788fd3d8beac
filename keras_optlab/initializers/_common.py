"""What the random schemes of `keras_optlab.initializers` share (Goodfellow et al. 2016, Sec. 8.4).

* `seed`: the one check of a `seed` argument before Keras' own seed handling
  (`keras.initializers.VarianceScaling`, a `RandomInitializer`) takes it;
* `fans`: Keras' fan rule, for the schemes that are not a `VarianceScaling`;
* `float_dtype`: the dtype a weight is drawn in, refused unless floating point;
* `shape`: the weight shape an initializer is called with, a tuple of integers >= 0;
* `axes`: `VarianceScaling`'s `input_axes` / `output_axes` (from a config).

Argument values are checked by `keras_optlab._checks`, so every initializer follows the
package's contract (TypeError for a wrong type, ValueError for a wrong value, the
argument named and its value echoed, NumPy scalars accepted).
"""

import math
import numbers

import keras
import numpy as np

from keras_optlab import _checks

SEED_DOC = """seed: `None`, an int or a `keras.random.SeedGenerator`, exactly as in
            Keras' own initializers: an int (or `None`, which draws one int at
            construction) gives the same values on every call; a `SeedGenerator`
            gives new values on every call."""


def seed(value):
    """`value` as Keras' `RandomInitializer` takes it: `None`, a Python int, a
    `SeedGenerator` or its serialized dict (what `get_config` holds).

    A NumPy integer becomes a Python int (Keras refuses it); a bool, a float or a string
    is a `_checks.KerasContractTypeError` naming `seed`: a `TypeError` by our rule and a
    `ValueError`, which is what Keras raises for those (Keras takes `True` as the int 1;
    a bool seed is refused here).
    """
    if value is None or isinstance(value, keras.random.SeedGenerator):
        return value
    if isinstance(value, dict):
        # A config's serialized SeedGenerator: refused here, not at the first draw.
        try:
            generator = keras.saving.deserialize_keras_object(value)
        except Exception:  # noqa: BLE001 - any failure means "not a serialized SeedGenerator"
            generator = None
        if not isinstance(generator, keras.random.SeedGenerator):
            raise ValueError(
                "`seed` given as a dict must be a serialized keras.random.SeedGenerator. "
                f"Received: seed={value!r}"
            ) from None
        return value
    try:
        return _checks.integer("seed", value)
    except TypeError:
        raise _checks.KerasContractTypeError(
            "`seed` must be None, an integer or a keras.random.SeedGenerator. "
            f"Received: seed={value!r}"
        ) from None


def fans(shape):
    """(fan_in, fan_out) of a weight shape by Keras' rule.

    Scalar: (1, 1); vector (n,): (n, n); matrix (in, out): (in, out); a convolution
    kernel (..., in, out): receptive field × in and receptive field × out.

    `keras.initializers.VarianceScaling` applies this rule (and per-axis fans an
    `EinsumDense` passes it) itself, so `FanInUniform` and `NormalizedUniform` do not
    call this. Keras' helper (`compute_fans` in keras/src/initializers/
    random_initializers.py) is private, so the rule is restated here, once, for the
    schemes that are not a `VarianceScaling` (`SparseK`); tests pin it to Keras'.
    """
    shape = tuple(int(d) for d in shape)
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def float_dtype(dtype):
    """The standardized dtype (`None`: Keras' floatx), or a `ValueError` naming `dtype`
    unless it is floating point: a weight drawn in an integer dtype would be truncated."""
    if isinstance(dtype, (bool, numbers.Number)):
        raise TypeError(f"`dtype` must be a dtype or its name. Received: dtype={dtype!r}")
    try:
        standard = keras.backend.standardize_dtype(dtype)
    except (TypeError, ValueError):
        raise ValueError(f"`dtype` is not a dtype Keras knows. Received: dtype={dtype!r}") from None
    if not keras.backend.is_float_dtype(standard):
        raise ValueError(
            f"`dtype` must be a floating-point dtype (float16, bfloat16, float32, float64). "
            f"Received: dtype={dtype!r}"
        )
    return _checks.float64_available("dtype", standard, keras.backend.backend())


def shape(value):
    """`value` as a tuple of Python ints >= 0, or an error naming `shape`.

    Keras calls an initializer with a tuple of ints; a list, a `TensorShape` and NumPy
    integers are accepted too. A float (3.5 would be truncated), `None` (an unknown
    dimension), a negative size or a bare int is refused here rather than deep inside a
    backend's random op.
    """
    received = f"Received: shape={value!r}"
    if isinstance(value, (str, bytes)) or not np.iterable(value):
        raise TypeError(f"`shape` must be a tuple of integers. {received}")
    dims = list(value)
    for d in dims:
        d = d[()] if isinstance(d, np.ndarray) and d.ndim == 0 else d
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
            raise TypeError(f"`shape` must be a tuple of integers (no None, no floats). {received}")
        if d < 0:
            raise ValueError(f"`shape` must hold sizes >= 0. {received}")
    return tuple(int(d) for d in dims)


def axes(name, value):
    """`None` or a list of ints: `VarianceScaling`'s `input_axes` / `output_axes`."""
    if value is None:
        return None
    received = f"Received: {name}={value!r}"
    if isinstance(value, (str, bytes, dict)) or not np.iterable(value):
        raise TypeError(f"`{name}` must be None or a list of integer axes. {received}")
    result = []
    for a in value:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, numbers.Integral):
            raise TypeError(f"`{name}` must be None or a list of integer axes. {received}")
        result.append(int(a))
    return result
