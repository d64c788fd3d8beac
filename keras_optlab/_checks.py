"""Every argument check of keras_optlab, in one place.

The contract, the same for every public function and constructor:

* a value of the wrong *type* raises ``TypeError``, a value of the right type but
  outside what the math allows raises ``ValueError``;
* every message names the argument and echoes the value received
  (``... Received: epsilon=inf``);
* NumPy scalars (``np.float32(0.5)``, ``np.int64(3)``) and 0-d arrays are accepted
  wherever a Python number is, and come back as Python numbers;
* infinity is refused unless the caller says the math allows it (``finite=False``),
  NaN always.

This module imports nothing of keras_optlab (and not Keras or TensorFlow), so every
layer of the package can use it without an import cycle.
"""

import inspect
import numbers

import numpy as np

__all__ = [
    "KerasContractTypeError",
    "boolean",
    "integer",
    "learning_rate",
    "number",
    "one_of",
    "positive",
    "shown",
    "unit_interval",
]


class KerasContractTypeError(TypeError, ValueError):
    """A wrong *type* for an argument whose Keras counterpart raises ``ValueError`` for it
    (an initializer's ``seed``: Keras' ``RandomInitializer`` raises ``ValueError`` for
    ``seed="abc"``). Both contracts hold: ``except TypeError`` (ours) and
    ``except ValueError`` (Keras' own tests) catch it."""


def shown(value, limit=80):
    """``repr(value)`` as a message echoes it: cut to ``limit`` characters (a long list,
    a model's repr), ending in "..." when cut."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _received(name, value):
    return f"Received: {name}={value!r}"


def _scalar(value):
    """A 0-d NumPy array as its scalar; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def _range_text(low, high, low_open, high_open):
    lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
    return f"{lo}, {hi}"


def number(name, value, *, low=None, high=None, low_open=False, high_open=False, finite=True, allow_none=False):
    """``float(value)`` if ``value`` is a real number in the stated range.

    Args:
        name: The argument's name, for the message.
        value: What the caller passed.
        low, high: Bounds (``None``: unbounded on that side).
        low_open, high_open: Whether the bound itself is excluded.
        finite: Refuse ±inf (default). NaN is always refused.
        allow_none: Return ``None`` for ``None``.
    """
    if value is None and allow_none:
        return None
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number. {_received(name, value)}")
    result = float(value)
    if result != result:
        raise ValueError(f"`{name}` must not be NaN. {_received(name, value)}")
    if finite and result in (float("inf"), float("-inf")):
        raise ValueError(f"`{name}` must be finite. {_received(name, value)}")
    bad_low = low is not None and (result <= low if low_open else result < low)
    bad_high = high is not None and (result >= high if high_open else result > high)
    if bad_low or bad_high:
        raise ValueError(
            f"`{name}` must be in {_range_text(low, high, low_open, high_open)}. {_received(name, value)}"
        )
    return result


def positive(name, value, *, allow_none=False, finite=True):
    """A real number > 0 (finite unless ``finite=False``)."""
    return number(name, value, low=0.0, low_open=True, allow_none=allow_none, finite=finite)


def unit_interval(name, value):
    """A decay or momentum coefficient in [0, 1)."""
    return number(name, value, low=0.0, high=1.0, high_open=True)


def integer(name, value, *, low=None, high=None, allow_none=False):
    """``int(value)`` if ``value`` is an integer (not a bool, not a float) in [low, high]."""
    if value is None and allow_none:
        return None
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        bound = "" if low is None else f" >= {low}"
        raise TypeError(f"`{name}` must be an integer{bound}. {_received(name, value)}")
    result = int(value)
    if (low is not None and result < low) or (high is not None and result > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"`{name}` must be an integer in [{lo}, {hi}]. {_received(name, value)}")
    return result


def boolean(name, value):
    """``bool(value)`` for a Python or NumPy bool; anything else is a ``TypeError``."""
    value = _scalar(value)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a bool. {_received(name, value)}")
    return bool(value)


def one_of(name, value, choices):
    """``value`` if it is one of the strings ``choices``."""
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a string, one of {sorted(choices)}. {_received(name, value)}")
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {sorted(choices)}. {_received(name, value)}")
    return value


def learning_rate(value, name="learning_rate"):
    """A finite float ≥ 0, a ``keras.optimizers.schedules.LearningRateSchedule``, or a
    function of the step.

    A class is callable but is not a schedule (``SGD(str)`` would fail only at the
    first step, deep inside the trace): classes are refused here.
    """
    if inspect.isclass(value):
        raise TypeError(
            f"`{name}` must be a float, a LearningRateSchedule instance or a function of the "
            f"step, not a class. {_received(name, value)}"
        )
    if callable(value):
        return value
    return number(name, value, low=0.0)
