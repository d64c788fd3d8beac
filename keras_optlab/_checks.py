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
    "data_source",
    "float64_available",
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


def float64_available(name, dtype, backend):
    """``dtype`` unless it is float64 on JAX outside JAX's 64-bit mode.

    There JAX silently stores a float64 variable as float32 (one warning of JAX's), and
    the book's float64 accuracy is lost: a ``ValueError`` naming ``name`` says how to
    turn the mode on. ``dtype`` is a standardized dtype name, ``backend`` Keras' backend
    name; JAX is imported only when the backend is JAX.
    """
    if dtype == "float64" and backend == "jax":
        import jax  # noqa: PLC0415 - only on the JAX backend, which has it

        if not jax.config.jax_enable_x64:
            raise ValueError(
                "float64 on the JAX backend needs JAX's 64-bit mode, which is off: JAX would hold the "
                "values as float32. Set JAX_ENABLE_X64=1 before Python starts, or call "
                "jax.config.update('jax_enable_x64', True) before any JAX array is made. "
                f"Received: {name}={dtype!r}"
            )
    return dtype


def _leaves(value):
    """The leaves of nested dicts, lists and tuples (a model's inputs), in order."""
    if isinstance(value, dict):
        return [leaf for key in value for leaf in _leaves(value[key])]
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def data_source(name, value, *, reiterable=False):
    """What kind of model inputs ``value`` is: ``"arrays"`` or ``"batches"``.

    * ``"arrays"``: an array with a leading sample axis (anything with a ``shape`` of
      rank ≥ 1: a NumPy array, a backend tensor, a DataFrame), or a dict/list/tuple of
      them with the same number of samples (a multi-input model's ``x``, as ``fit``
      takes it). No samples is a ``ValueError``.
    * ``"batches"``: any other iterable (a ``tf.data.Dataset``, a
      ``keras.utils.PyDataset``, a torch ``DataLoader``, a generator). With
      ``reiterable=True`` an iterator (``iter(value) is value``: a generator) is a
      ``TypeError``: one pass would consume it.

    Anything else (a scalar, a string, ``None``) is a ``TypeError``.
    """
    if isinstance(value, (dict, list, tuple)):
        leaves = _leaves(value)
        bad = [leaf for leaf in leaves if len(getattr(leaf, "shape", ()) or ()) == 0]
        if not leaves or bad:
            raise TypeError(
                f"`{name}` must be an array, a dict/list/tuple of arrays with a leading sample axis, or an "
                f"iterable of batches. Received: {name}={shown(value)}"
            )
        lengths = sorted({int(leaf.shape[0]) for leaf in leaves})
        if len(lengths) > 1:
            raise ValueError(
                f"`{name}`'s arrays must have the same number of samples; their leading sizes are {lengths}. "
                f"Received: {name}={shown(value)}"
            )
        if lengths[0] == 0:
            raise ValueError(f"`{name}` holds no samples. Received: {name}={shown(value)}")
        return "arrays"
    if hasattr(value, "shape") and not isinstance(value, (str, bytes)):
        if len(value.shape or ()) == 0:
            raise TypeError(
                f"`{name}` must have a leading sample axis; a scalar has none. Received: {name}={shown(value)}"
            )
        if int(value.shape[0]) == 0:
            raise ValueError(f"`{name}` holds no samples. Received: {name}={shown(value)}")
        return "arrays"
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(
            f"`{name}` must be an array, a dict/list/tuple of arrays, or an iterable of batches (a "
            f"tf.data.Dataset, a keras.utils.PyDataset, a DataLoader). Received: {name}={shown(value)}"
        )
    if reiterable and iter(value) is value:
        raise TypeError(
            f"`{name}` must be iterable more than once (an array, a tf.data.Dataset, a keras.utils.PyDataset, "
            f"a DataLoader); an iterator such as a generator is consumed by one pass. Received: {name}={shown(value)}"
        )
    return "batches"
