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

import math

import keras
import numpy as np
from keras import ops

from keras_optlab import _checks
from keras_optlab.initializers import _common


def _float_list(name, values):
    """A non-empty list of finite Python floats; entry i is checked as `name[i]`."""
    if isinstance(values, (str, bytes)) or not np.iterable(values):
        raise TypeError(f"`{name}` must be a list of numbers. Received: {name}={values!r}")
    # dtype=object keeps each entry as given (a ragged nesting leaves lists, refused below).
    flat = np.asarray(values, dtype=object).reshape(-1).tolist()
    if not flat:
        raise ValueError(f"`{name}` must be a non-empty list of numbers. Received: {name}={values!r}")
    return [_checks.number(f"{name}[{i}]", v) for i, v in enumerate(flat)]


def _logit(name, p):
    p = _checks.number(name, p, low=0.0, high=1.0, low_open=True, high_open=True)
    return math.log(p) - math.log1p(-p)


@keras.saving.register_keras_serializable(package="keras_optlab")
class GateBias(keras.initializers.Initializer):
    """A constant per gate block, in Keras' gate order.

    A bias of length G·units is cut into G equal blocks and block g is filled with
    `values[g]`. Keras' orders (keras/src/layers/rnn/lstm.py, gru.py):

    * LSTM, `(4·units,)`: input i, forget f, cell c, output o — use `GateBias.lstm()`
      with `keras.layers.LSTM(..., unit_forget_bias=False)` (otherwise Keras replaces
      the bias initializer with its own zeros-plus-one-for-f);
    * GRU, `(3·units,)`: update z, reset r, candidate h — `GateBias.gru()`. With
      `reset_after=True` (Keras' default) the bias is `(2, 3·units)`: row 0 is added to
      the input projection, row 1 to the recurrent one. The values go in row 0 and row 1
      is zero, so the rows sum to the requested value and the candidate's value is not
      multiplied by the reset gate;
    * a Dense layer of sigmoid gates: `GateBias.gate(p)`, b = logit(p), so each gate
      starts open with probability p.

    Goodfellow et al. (2016), Sec. 8.4: a gate should start mostly open so the unit it
    controls can learn; Jozefowicz et al. (2015) found a forget bias of 1 closes most of
    the gap between the LSTM and other architectures.

    Args:
        values: one number per gate, in the layer's gate order.

    Raises:
        TypeError: a value that is not a number.
        ValueError: no values or a non-finite one; at a call, a length not divisible by
            the number of gates, a shape that is neither `(G·units,)` nor the GRU
            `(2, G·units)` layout, or a `dtype` that is not floating point.
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
        shape = tuple(int(d) for d in shape)
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
            num_classes: C for integer labels; default max(y) + 1.
            smoothing: α ≥ 0, pseudo-count added to every class (Laplace's rule for
                α = 1) so that an empty class gets a finite bias; with α = 0 a class
                that never occurs (or, for sigmoid, a column that is constant) raises.
        """
        link = _checks.one_of("link", link, ("softmax", "sigmoid"))
        smoothing = _checks.number("smoothing", smoothing, low=0.0)
        num_classes = _checks.integer("num_classes", num_classes, low=1, allow_none=True)
        y = np.asarray(y)
        if y.size == 0:
            raise ValueError(f"`y` is empty. Received: y with shape {y.shape}")
        if link == "softmax":
            counts = _class_counts(y, num_classes)
            total, classes = counts.sum(), counts.size
            p = (counts + smoothing) / (total + classes * smoothing)
        else:
            y = y.astype("float64").reshape(len(y), -1)
            if np.any((y < 0) | (y > 1)) or not np.all(np.isfinite(y)):
                bad = y[(y < 0) | (y > 1) | ~np.isfinite(y)][0]
                raise ValueError(f"sigmoid labels `y` must lie in [0, 1]. Received: y value {bad}")
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
        """Bias equal to the mean of each target column (linear output, squared error)."""
        y = np.asarray(y, dtype="float64")
        if y.size == 0 or y.ndim == 0:
            raise ValueError(f"`y` must be a non-empty array. Received: y with shape {y.shape}")
        return cls(y.reshape(len(y), -1).mean(axis=0).tolist())

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        dtype = _common.float_dtype(dtype)
        if shape != (len(self.values),):
            raise ValueError(
                f"MarginalBias holds {len(self.values)} values and serves a bias of shape "
                f"({len(self.values)},). Received: shape={shape}"
            )
        return ops.convert_to_tensor(np.asarray(self.values), dtype=dtype)

    def get_config(self):
        return {"values": list(self.values)}


def _class_counts(y, num_classes):
    """Per-class label counts for integer ids `(N,)`/`(N, 1)` or one-hot/soft `(N, C)`."""
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot or soft labels
        y = y.astype("float64")
        if np.any(y < 0) or not np.all(np.isfinite(y)):
            raise ValueError(
                "one-hot labels `y` must be finite and >= 0. Received: a negative or "
                "non-finite value"
            )
        if num_classes is not None and num_classes != y.shape[1]:
            raise ValueError(
                f"`num_classes`={num_classes} does not match the {y.shape[1]} label columns "
                f"of `y`. Received: num_classes={num_classes!r}"
            )
        return y.sum(axis=0)
    y = y.reshape(-1)
    if not np.all(np.isfinite(y.astype("float64"))) or np.any(y != np.round(y)):
        raise ValueError(
            f"softmax labels `y` must be integer class ids. Received: y values like {y[:5]}"
        )
    y = y.astype("int64")
    if num_classes is None:
        num_classes = int(y.max()) + 1
    bad = y[(y < 0) | (y >= num_classes)]
    if bad.size:
        raise ValueError(
            f"labels `y` out of range [0, {num_classes}). Received: y value {int(bad[0])}"
        )
    return np.bincount(y, minlength=num_classes).astype("float64")
