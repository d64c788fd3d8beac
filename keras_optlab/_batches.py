"""Checks of the data batches users pass (``x``, ``y``, ``validation_data``), shared by
:mod:`keras_optlab.calibration`, :mod:`keras_optlab.tuning` and the lab's curvature
report: the NumPy side of :mod:`keras_optlab._checks` (which imports no Keras).

Each raises ``TypeError`` for something that is not an array of numbers and
``ValueError`` for an empty, non-finite or mismatched batch, naming the argument and
echoing shapes and counts (never the data).
"""

import keras
import numpy as np
from keras import ops


def leaves(name, value):
    """The arrays of a batch (one array, or a list/tuple/dict of them) as NumPy arrays."""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(
            f"`{name}` must be an array or a tensor (or a list or dict of them). Received: {name}={value!r}"
        )
    arrays = []
    for leaf in keras.tree.flatten(value):
        try:
            array = np.asarray(ops.convert_to_numpy(leaf) if ops.is_tensor(leaf) else leaf)
        except (TypeError, ValueError):
            array = None
        if array is None or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise TypeError(
                f"`{name}` must be an array or a tensor of numbers (or a list or dict of them). "
                f"Received: {name}={leaf!r}"
            )
        arrays.append(array)
    if not arrays:
        raise ValueError(f"`{name}` must hold at least one array. Received: {name}={value!r}")
    return arrays


def batch(name, value):
    """Check one minibatch ``value``: arrays of numbers, at least one sample, all finite,
    one length. Returns the number of samples.

    The message echoes the shape (or the count of non-finite entries), not the data.
    """
    arrays = leaves(name, value)
    lengths = set()
    for array in arrays:
        if array.ndim == 0 or array.shape[0] == 0:
            raise ValueError(
                f"`{name}` must hold at least one sample (a batch axis of length >= 1). "
                f"Received: {name} with shape {array.shape}"
            )
        if np.issubdtype(array.dtype, np.inexact):
            nan = int(np.isnan(array).sum())
            inf = int(np.isinf(array).sum())
            if nan or inf:
                raise ValueError(
                    f"`{name}` must be finite: it holds {nan} NaN and {inf} infinite values. "
                    f"Received: {name} with shape {array.shape}"
                )
        lengths.add(array.shape[0])
    if len(lengths) > 1:
        shapes = [array.shape for array in arrays]
        raise ValueError(f"The arrays of `{name}` must have one length. Received: {name} with shapes {shapes}")
    return lengths.pop()


def same_length(name, n, other, n_other):
    if n != n_other:
        raise ValueError(
            f"`{name}` must have as many samples as `{other}` ({n_other}). Received: {name} with {n} samples"
        )


def match_inputs(name, model, x, inputs=None):
    """Refuse a batch ``x`` (named ``name``) whose arrays do not fit the inputs of ``model``:
    one array per input (a dict is left to Keras' matching by name), the same shape
    after the batch axis where the input's is known."""
    if isinstance(x, dict):
        return
    inputs = model_inputs(model) if inputs is None else inputs
    arrays = leaves(name, x)
    if len(arrays) != len(inputs):
        raise ValueError(
            f"`{name}` must hold one array per input of `model` ({len(inputs)}). "
            f"Received: {name} with {len(arrays)} arrays"
        )
    for array, tensor in zip(arrays, inputs):
        expected = tuple(tensor.shape)[1:]
        if len(expected) != array.ndim - 1 or any(
            e is not None and e != a for e, a in zip(expected, array.shape[1:])
        ):
            raise ValueError(
                f"`{name}` must match the input shape of `model`, {(None, *expected)}. "
                f"Received: {name} with shape {array.shape}"
            )


def model_inputs(model):
    if isinstance(model, keras.Sequential):
        return list(model.inputs)
    inputs = model.inputs
    if inputs is None:
        raise AttributeError("no inputs")
    return list(inputs)
