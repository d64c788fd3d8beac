"""Non-zero bias initialization: gate biases and output marginals.

Goodfellow, Bengio & Courville (2016), Sec. 8.4, list the cases where a bias should not
start at zero:

* an output unit — initialize its bias to reproduce the marginal statistics of the
  output (`MarginalBias`): for a softmax, softmax(b) = c, the class frequencies;
* a gate h ∈ [0, 1] that decides whether another unit u takes part (uh ≈ u or uh ≈ 0) —
  set its bias so that h ≈ 1 at initialization, otherwise u never gets the chance to
  learn (`GateBias`); the LSTM forget-gate bias of 1 is the canonical instance
  (Jozefowicz, Zaremba & Sutskever 2015).

References:
    Goodfellow, Bengio & Courville, *Deep Learning*, MIT Press 2016, Sec. 8.4.
    Jozefowicz, Zaremba & Sutskever, "An empirical exploration of recurrent network
    architectures", ICML 2015.
"""

import collections
import functools
import math
import sys

import keras
import numpy as np
from keras import ops

from keras_optlab import _checks
from keras_optlab.initializers import _common

LSTM_GATES = ("input", "forget", "cell", "output")
GRU_GATES = ("update", "reset", "candidate")

# Without `num_classes`, `from_labels` infers C = max(y) + 1; above this it asks for
# `num_classes` instead of silently building a huge bias from one stray label.
MAX_IMPLIED_CLASSES = 2**16


def _float_list(name, values):
    """A non-empty flat list of finite Python floats; entry i is checked as `name[i]`."""
    if isinstance(values, (str, bytes, dict)) or not np.iterable(values):
        raise TypeError(f"`{name}` must be a list of numbers. Received: {name}={values!r}")
    # dtype=object keeps each entry as given (a ragged nesting leaves lists, refused below).
    array = np.asarray(values, dtype=object)
    if array.ndim == 0:  # a set, a generator: iterable but not a sequence
        raise TypeError(f"`{name}` must be a list of numbers. Received: {name}={values!r}")
    if array.ndim > 1:
        raise ValueError(
            f"`{name}` must be a flat list, one number per entry; got shape {array.shape}. "
            f"Received: {name}={values!r}"
        )
    flat = array.tolist()
    if not flat:
        raise ValueError(f"`{name}` must be a non-empty list of numbers. Received: {name}={values!r}")
    return [_checks.number(f"{name}[{i}]", v) for i, v in enumerate(flat)]


# cell: the cell's class name; gates: its gate names; units: units (filters) per gate;
# unit_forget_block: called by the unit_forget_bias closure for a piece of the bias;
# weight_shape: the shape of the bias being built (None on the closure path).
_Context = collections.namedtuple("_Context", "cell gates units unit_forget_block weight_shape")


@functools.cache
def _keras_cells():
    """Keras' recurrent cells and their gate blocks, most specific first.

    `ConvLSTMCell` has no public name; its class is read off a `ConvLSTM1D` (public).
    """
    conv_lstm_cell = type(keras.layers.ConvLSTM1D(1, 1).cell)
    return (
        (keras.layers.LSTMCell, LSTM_GATES, "units"),
        (conv_lstm_cell, LSTM_GATES, "filters"),
        (keras.layers.GRUCell, GRU_GATES, "units"),
        (keras.layers.SimpleRNNCell, ("unit",), "units"),
    )


def _cell_entry(owner):
    for cls, gates, size in _keras_cells():
        if isinstance(owner, cls):
            return gates, getattr(owner, size)
    return None


def _building_context(max_depth=64):
    """The Keras recurrent cell whose bias a `GateBias` is drawing, if there is one.

    A bias initializer sees only a shape, and a shape does not tell an LSTM's
    `(4·units,)` from a 3-gate layout of another size, nor (with `unit_forget_bias=True`,
    Keras' default) the `(units,)` and `(2·units,)` pieces Keras asks for from a whole
    bias. So this looks up the Python stack (`sys._getframe`, read-only) for:

    * the closure named `bias_initializer` that `LSTMCell.build` / `ConvLSTMCell.build`
      define when `unit_forget_bias=True`: it concatenates `init((units,))`,
      `ones((units,))` and `init((2·units,))` (keras/src/layers/rnn/lstm.py). It is
      the initializer's direct caller even when Keras defers the variable's
      initialization, and its `self` is the cell;
      A wrapping initializer's `__call__` (`Scaled`) between the two is refused there:
      Keras' ones for the forget block would escape the wrapper;
    * otherwise the nearest `keras.layers.Layer.add_weight` frame: when its `self` is a
      Keras LSTM, ConvLSTM, GRU or SimpleRNN cell and the weight is named "bias", the
      call is for that cell's bias. The search stops at the first `add_weight`, so a
      Dense inside a custom cell is not mistaken for the cell.

    This reads Keras' implementation, not its API: tests/initializers/test_bias.py pins
    both paths on every LSTM/ConvLSTM/GRU/SimpleRNN layout, so a Keras release that
    changes them fails there. When nothing is found (a Dense layer, a custom cell, a
    variable initialized later outside its cell's `build`) the result is `None` and
    only the divisibility of the shape is checked.
    """
    add_weight = keras.layers.Layer.add_weight.__code__
    frame = sys._getframe(2)
    wrapper = None
    for _ in range(max_depth):
        if frame is None:
            return None
        code = frame.f_code
        if code.co_name == "__call__" and wrapper is None:
            owner = frame.f_locals.get("self")
            if isinstance(owner, keras.initializers.Initializer):
                wrapper = owner  # e.g. Scaled(GateBias...): it changes our values
        if code.co_name == "bias_initializer":
            owner = frame.f_locals.get("self")
            entry = _cell_entry(owner)
            if entry is not None and entry[0] == LSTM_GATES and getattr(owner, "unit_forget_bias", False):
                if wrapper is not None:
                    raise ValueError(
                        f"GateBias wrapped in {type(wrapper).__name__} cannot serve "
                        f"{type(owner).__name__} with `unit_forget_bias`=True: Keras puts "
                        "ones in the forget block outside the wrapper, so the wrapper "
                        "would act on every gate but forget; pass unit_forget_bias=False. "
                        "Received: unit_forget_bias=True"
                    )
                return _Context(type(owner).__name__, entry[0], entry[1], True, None)
        if code is add_weight:
            local = frame.f_locals
            entry = _cell_entry(local.get("self"))
            if entry is None or local.get("name") != "bias":
                return None
            weight_shape = local.get("shape")
            weight_shape = None if weight_shape is None else tuple(weight_shape)
            return _Context(type(local["self"]).__name__, entry[0], entry[1], False, weight_shape)
        frame = frame.f_back
    return None


def _logit(name, p):
    p = _checks.number(name, p, low=0.0, high=1.0, low_open=True, high_open=True)
    return math.log(p) - math.log1p(-p)


@keras.saving.register_keras_serializable(package="keras_optlab")
class GateBias(keras.initializers.Initializer):
    """A constant per gate block, in Keras' gate order.

    A bias of length G·units is cut into G equal blocks and block g is filled with
    `values[g]`. Keras' orders (keras/src/layers/rnn/lstm.py, gru.py):

    * LSTM (and ConvLSTM), `(4·units,)`: input i, forget f, cell c, output o —
      `GateBias.lstm()`. With `unit_forget_bias=False` every block is ours. With
      Keras' default `unit_forget_bias=True` Keras asks the initializer for the pieces
      `(units,)` (i) and `(2·units,)` (c, o) and puts 1 in the forget block itself:
      GateBias serves those pieces, so i, c, o are as asked and f = 1; a forget value
      other than 1 (which Keras would silently drop) is a `ValueError` telling to pass
      `unit_forget_bias=False`;
    * GRU, `(3·units,)`: update z, reset r, candidate h — `GateBias.gru()`. With
      `reset_after=True` (Keras' default) the bias is `(2, 3·units)`: row 0 is added to
      the input projection, row 1 to the recurrent one. The values go in row 0 and row 1
      is zero, so the rows sum to the requested value and the candidate's value is not
      multiplied by the reset gate;
    * a Dense layer of sigmoid gates: `GateBias.gate(p)`, b = logit(p), so each gate
      starts open with probability p.

    Inside a Keras LSTM, ConvLSTM, GRU or SimpleRNN cell the number of values must be
    that cell's number of gate blocks (4, 4, 3, 1): `GateBias([0, 1, 0])` on an
    `LSTM(6)` (24 = 3·8) is refused, naming `values` and echoing the shape. Elsewhere
    (Dense, custom cells) only divisibility can be checked. How the cell is found:
    `_building_context`.

    Goodfellow et al. (2016), Sec. 8.4: a gate should start mostly open so the unit it
    controls can learn; Jozefowicz et al. (2015) found a forget bias of 1 closes most of
    the gap between the LSTM and other architectures.

    Args:
        values: one number per gate, in the layer's gate order.

    Raises:
        TypeError: a value that is not a number.
        ValueError: no values, a nested list or a non-finite value; at a call, a length
            not divisible by the number of gates, a value count that is not the Keras
            cell's gate count, forget ≠ 1 under `unit_forget_bias=True`, a shape that
            is neither `(G·units,)` nor the GRU `(2, G·units)` layout, or a `dtype`
            that is not floating point.
    """

    def __init__(self, values):
        self.values = _float_list("values", values)

    @classmethod
    def lstm(cls, input=0.0, forget=1.0, cell=0.0, output=0.0):
        """LSTM bias, blocks i, f, c, o. Default forget = 1 (Jozefowicz et al. 2015)."""
        gates = dict(input=input, forget=forget, cell=cell, output=output)
        return cls([_checks.number(name, v) for name, v in gates.items()])

    @classmethod
    def gru(cls, update=0.0, reset=0.0, candidate=0.0):
        """GRU bias, blocks z, r, h; works for `reset_after` True and False."""
        gates = dict(update=update, reset=reset, candidate=candidate)
        return cls([_checks.number(name, v) for name, v in gates.items()])

    @classmethod
    def gate(cls, open_probability):
        """A layer of single sigmoid gates that start open with this probability."""
        return cls([_logit("open_probability", open_probability)])

    def __call__(self, shape, dtype=None):
        dtype = _common.float_dtype(dtype)
        shape = _common.shape(shape)
        context = _building_context()
        if context is not None:
            self._check_gates(context, shape)
            if context.unit_forget_block:
                return ops.convert_to_tensor(self._unit_forget_block(context, shape), dtype=dtype)
        gates = len(self.values)
        gru_reset_after = len(shape) == 2 and shape[0] == 2
        if len(shape) != 1 and not gru_reset_after:
            raise ValueError(
                "GateBias serves a bias vector (G*units,) or the GRU reset_after layout "
                f"(2, G*units). Received: shape={shape}"
            )
        if shape[-1] % gates:
            raise ValueError(
                f"The bias length {shape[-1]} is not divisible by the number of gates "
                f"{gates} (values={self.values}). Received: shape={shape}"
            )
        row = np.repeat(np.asarray(self.values), shape[-1] // gates)
        if gru_reset_after:
            row = np.stack([row, np.zeros_like(row)])
        return ops.convert_to_tensor(row, dtype=dtype)

    def _check_gates(self, context, shape):
        """The cell being built has len(context.gates) gate blocks: so must `values`."""
        if len(self.values) != len(context.gates):
            names = ", ".join(context.gates)
            maker = {LSTM_GATES: "GateBias.lstm(...)", GRU_GATES: "GateBias.gru(...)"}.get(
                context.gates, "GateBias.gate(p) or keras.initializers.Constant"
            )
            raise ValueError(
                f"`values` holds {len(self.values)} gate value(s), but the bias of the "
                f"{context.cell} being built has {len(context.gates)} gate block(s) "
                f"({names}); use {maker}. Received: values={self.values}, shape={shape}"
            )
        if (
            not context.unit_forget_block
            and context.weight_shape is not None
            and context.weight_shape != shape
        ):
            raise ValueError(
                f"GateBias was asked for a piece {shape} of the {context.cell} bias of shape "
                f"{context.weight_shape}, a layout it does not know; build the layer with "
                f"unit_forget_bias=False. Received: shape={shape}"
            )

    def _unit_forget_block(self, context, shape):
        """One of the pieces Keras' `unit_forget_bias=True` asks for: (units,) = input,
        (2·units,) = cell and output; Keras itself puts ones in the forget block."""
        forget = self.values[1]
        if forget != 1.0:
            raise ValueError(
                f"`forget` (values[1]) is {forget!r}, but {context.cell} with "
                "unit_forget_bias=True (Keras' default for LSTM and ConvLSTM) sets the "
                "forget-gate bias to 1.0 itself and asks the bias initializer only for "
                "the input, cell and output blocks; pass unit_forget_bias=False to the "
                f"layer. Received: forget={forget!r}, shape={shape}"
            )
        units = context.units
        i, _, c, o = self.values
        if shape == (units,):
            return np.full(units, i)
        if shape == (2 * units,):
            return np.repeat(np.asarray([c, o]), units)
        raise ValueError(
            f"{context.cell} with unit_forget_bias=True asked GateBias for a bias piece "
            f"{shape}, neither ({units},) nor ({2 * units},); pass unit_forget_bias=False. "
            f"Received: shape={shape}"
        )

    def get_config(self):
        return {"values": list(self.values)}


@keras.saving.register_keras_serializable(package="keras_optlab")
class MarginalBias(keras.initializers.Initializer):
    """An output bias that reproduces the marginal statistics of the targets.

    Goodfellow et al. (2016), Sec. 8.4: "If a bias is for an output unit, then it is
    often beneficial to initialize the bias to obtain the right marginal statistics of
    the output." With the output kernel near zero the network's first predictions are
    then the marginals, and its first loss is the entropy of the marginal instead of
    log(C) or worse — the model does not spend its first steps learning the prior.

    Build it from data with `from_labels` (softmax or sigmoid outputs) or `from_targets`
    (linear outputs); the computed values are stored in the config as a list.

    Args:
        values: one bias per output unit.

    Raises:
        TypeError: a value that is not a number.
        ValueError: no values or a non-finite one; at a call, a shape that is not
            `(len(values),)` or a `dtype` that is not floating point.
    """

    def __init__(self, values):
        self.values = _float_list("values", values)

    @classmethod
    def from_labels(cls, y, link="softmax", num_classes=None, smoothing=1.0):
        """Bias whose link reproduces the label frequencies.

        * `link="softmax"`: y holds integer class ids (shape `(N,)` or `(N, 1)`) or
          one-hot / soft labels `(N, C)`. With count n_c of N labels,
          p_c = (n_c + α)/(N + Cα) and b_c = log p_c, so softmax(b) = p.
        * `link="sigmoid"`: y holds 0/1 (or soft) targets, `(N,)` for one output or
          `(N, C)` multi-label; p_j = (Σ y_j + α)/(N + 2α), b_j = logit(p_j).

        Args:
            y: the training labels (array-like).
            link: "softmax" or "sigmoid", the output activation.
            num_classes: C, as in `keras.utils.to_categorical`; default max(y) + 1
                for integer labels (refused above `MAX_IMPLIED_CLASSES` = 2**16:
                pass it), the column count for one-hot or sigmoid labels, which it
                must then equal.
            smoothing: α ≥ 0, pseudo-count added to every class (Laplace's rule for
                α = 1) so that an empty class gets a finite bias; with α = 0 a class
                that never occurs (or, for sigmoid, a column that is constant) raises.

        Raises:
            TypeError: `y` holds strings, complex numbers or objects (or bools, for
                softmax); a wrong type of `link`, `num_classes` or `smoothing`.
            ValueError: `y` empty, of rank > 2, with a NaN/inf entry, a negative,
                non-integer or out-of-range class id, one-hot rows that do not sum to 1,
                a sigmoid label outside [0, 1], a largest label implying more than 2**16
                classes without `num_classes`; a bad `link`, `num_classes`, `smoothing`.
        """
        link = _checks.one_of("link", link, ("softmax", "sigmoid"))
        smoothing = _checks.number("smoothing", smoothing, low=0.0)
        num_classes = _checks.integer("num_classes", num_classes, low=1, allow_none=True)
        y = _targets("y", y, allow_bool=link == "sigmoid")
        if link == "softmax":
            counts = _class_counts(y, num_classes)
            total, classes = counts.sum(), counts.size
            p = (counts + smoothing) / (total + classes * smoothing)
        else:
            y = y.astype("float64").reshape(len(y), -1)
            if num_classes is not None and num_classes != y.shape[1]:
                raise ValueError(
                    f"`num_classes`={num_classes} does not match the {y.shape[1]} output "
                    f"column(s) of `y`. Received: num_classes={num_classes!r}"
                )
            _refuse_first("y", y, (y < 0) | (y > 1), "sigmoid labels `y` must lie in [0, 1]")
            p = (y.sum(axis=0) + smoothing) / (len(y) + 2 * smoothing)
        if np.any(p <= 0) or (link == "sigmoid" and np.any(p >= 1)):
            raise ValueError(
                "A class never occurs (or always occurs) in `y`, so its bias would be "
                f"infinite; use smoothing > 0. Received: smoothing={smoothing!r}"
            )
        b = np.log(p) if link == "softmax" else np.log(p) - np.log1p(-p)
        return cls(b.tolist())

    @classmethod
    def from_targets(cls, y):
        """Bias equal to the mean of each target column (linear output, squared error).

        Args:
            y: the training targets, `(N,)` for one output or `(N, C)`: real, finite.
        """
        y = _targets("y", y, allow_bool=False)
        return cls(y.astype("float64").reshape(len(y), -1).mean(axis=0).tolist())

    def __call__(self, shape, dtype=None):
        shape = _common.shape(shape)
        dtype = _common.float_dtype(dtype)
        if shape != (len(self.values),):
            raise ValueError(
                f"MarginalBias holds {len(self.values)} values and serves a bias of shape "
                f"({len(self.values)},). Received: shape={shape}"
            )
        return ops.convert_to_tensor(np.asarray(self.values), dtype=dtype)

    def get_config(self):
        return {"values": list(self.values)}


def _targets(name, y, *, allow_bool):
    """`y` as a finite real NumPy array of shape `(N,)` or `(N, C)`, N >= 1.

    A string, complex or object entry is a `TypeError` naming `name` (NumPy's own
    "could not convert string to float" names nothing); bools only where 0/1 targets
    mean something (`allow_bool`: sigmoid labels); NaN/inf, no rows, or a rank other
    than 1 or 2 are a `ValueError` echoing the shape or the first bad entry.
    """
    try:
        array = np.asarray(y)
    except ValueError:  # ragged nesting
        raise TypeError(f"`{name}` must be an array of numbers. Received: {name}={y!r}") from None
    kinds = "biuf" if allow_bool else "iuf"
    if array.dtype.kind not in kinds:
        bad = array.reshape(-1)[0] if array.size else array
        what = "numbers (integers or floats)" if not allow_bool else "numbers or bools"
        hint = ""
        if array.dtype.kind == "b":
            hint = " (class ids: cast with y.astype(int); 0/1 targets: link='sigmoid')"
        raise TypeError(
            f"`{name}` must hold {what}, not {array.dtype}{hint}. "
            f"Received: {name}[0]={_item(bad)!r}"
        )
    if array.ndim not in (1, 2) or len(array) == 0:
        rank = "is empty" if array.ndim in (1, 2) else f"has rank {array.ndim}"
        raise ValueError(
            f"`{name}` {rank}: it must be a non-empty array of shape (N,) or (N, C). "
            f"Received: {name} with shape {array.shape}"
        )
    if array.dtype.kind == "f":
        _refuse_first(name, array, ~np.isfinite(array), f"`{name}` must be finite")
    return array


def _item(value):
    """A NumPy scalar as the Python value a user typed (`'cat'`, `nan`, `5`)."""
    return value.item() if isinstance(value, np.generic) else value


def _refuse_first(name, array, bad, message):
    """A `ValueError` echoing the first entry of `array` where `bad` holds, as y[i] or y[i, j]."""
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = ", ".join(str(i) for i in index)
        raise ValueError(f"{message}. Received: {name}[{where}]={_item(array[index])!r}")


def _class_counts(y, num_classes):
    """Per-class label counts for integer ids `(N,)`/`(N, 1)` or one-hot/soft `(N, C)`."""
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot or soft labels
        y = y.astype("float64")
        layout = (
            "2-D `y` with C > 1 columns is read as one-hot or soft labels, each row in "
            "[0, 1] summing to 1 (for integer class ids of shape (N, T) pass "
            "y.reshape(-1); for multi-label 0/1 targets use link='sigmoid')"
        )
        _refuse_first("y", y, (y < 0) | (y > 1), layout)
        row_sums = y.sum(axis=1)
        off = np.abs(row_sums - 1.0) > 1e-3
        if np.any(off):
            row = int(np.argmax(off))
            raise ValueError(f"{layout}. Received: y[{row}] summing to {float(row_sums[row])!r}")
        if num_classes is not None and num_classes != y.shape[1]:
            raise ValueError(
                f"`num_classes`={num_classes} does not match the {y.shape[1]} label columns "
                f"of `y`. Received: num_classes={num_classes!r}"
            )
        return y.sum(axis=0)
    y = y.reshape(-1)
    if y.dtype.kind == "f":
        _refuse_first("y", y, y != np.round(y), "softmax labels `y` must be integer class ids")
    y = y.astype("int64")
    _refuse_first("y", y, y < 0, "softmax labels `y` must be class ids >= 0")
    if num_classes is None:
        implied = int(y.max()) + 1
        if implied > MAX_IMPLIED_CLASSES:
            raise ValueError(
                f"`y`'s largest label {implied - 1} implies {implied} classes (more than "
                f"{MAX_IMPLIED_CLASSES}); pass `num_classes` to say how many there are. "
                f"Received: y max={implied - 1}, num_classes=None"
            )
        num_classes = implied
    _refuse_first(
        "y", y, y >= num_classes, f"labels `y` must lie in [0, {num_classes}) (num_classes={num_classes})"
    )
    return np.bincount(y, minlength=num_classes).astype("float64")
