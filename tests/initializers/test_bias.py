"""GateBias and MarginalBias: gate layouts through real Keras layers, output marginals."""

import math
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_optlab.initializers import GateBias, MarginalBias, Scaled

MAX_IMPLIED_CLASSES = 2**16  # bias.py: the largest class count from_labels infers without num_classes


def value(initializer, shape, dtype=None):
    return keras.ops.convert_to_numpy(initializer(shape, dtype=dtype)).astype("float64")


def blocks(bias, gates):
    return np.split(keras.ops.convert_to_numpy(bias), gates, axis=-1)


# --- GateBias -------------------------------------------------------------------------


def test_lstm_layout_i_f_c_o_through_keras_lstm():
    units = 5
    layer = keras.layers.LSTM(
        units,
        unit_forget_bias=False,
        bias_initializer=GateBias.lstm(input=0.1, forget=1.0, cell=-0.2, output=0.3),
    )
    layer.build((None, 4, 3))
    for block, expected in zip(blocks(layer.cell.bias, 4), [0.1, 1.0, -0.2, 0.3]):
        np.testing.assert_allclose(block, np.full(units, expected, "float32"))


def test_lstm_gate_order_through_the_recurrence():
    # Zero kernels, zero input, h0 = c0 = 0: c1 = i·tanh(b_c), c2 = f·c1 + i·tanh(b_c)
    # = (f + 1)·c1, h2 = o·tanh(c2), with i, f, o = sigmoid(b_i, b_f, b_o). Distinct values
    # per gate make any other order give another h2.
    b_i, b_f, b_c, b_o = 0.3, 1.7, 0.9, -0.4
    layer = keras.layers.LSTM(
        3,
        unit_forget_bias=False,
        kernel_initializer="zeros",
        recurrent_initializer="zeros",
        bias_initializer=GateBias.lstm(input=b_i, forget=b_f, cell=b_c, output=b_o),
    )
    out = keras.ops.convert_to_numpy(layer(np.zeros((2, 2, 4), "float32")))
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    c2 = (sig(b_f) + 1) * sig(b_i) * math.tanh(b_c)
    np.testing.assert_allclose(out, np.full((2, 3), sig(b_o) * math.tanh(c2)), rtol=1e-6)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_layout_z_r_h_through_keras_gru(reset_after):
    units = 4
    layer = keras.layers.GRU(
        units,
        reset_after=reset_after,
        bias_initializer=GateBias.gru(update=-1.0, reset=0.5, candidate=0.25),
    )
    layer.build((None, 6, 3))
    bias = keras.ops.convert_to_numpy(layer.cell.bias)
    assert bias.shape == ((2, 3 * units) if reset_after else (3 * units,))
    if reset_after:
        np.testing.assert_array_equal(bias[1], 0.0)  # recurrent row
        bias = bias.sum(axis=0)  # rows sum to the requested values
    for block, expected in zip(np.split(bias, 3), [-1.0, 0.5, 0.25]):
        np.testing.assert_allclose(block, np.full(units, expected, "float32"))


def test_gru_update_bias_changes_the_step_as_keras_orders_it():
    # Zero kernels, h0 = 0: the candidate is tanh(b_h) and h1 = (1 - z) * tanh(b_h) with
    # z = sigmoid(b_z) (Keras: h = z * h_prev + (1 - z) * hh). Checks the z and h blocks.
    b_z, b_h = 1.5, 0.8
    layer = keras.layers.GRU(
        3,
        kernel_initializer="zeros",
        recurrent_initializer="zeros",
        bias_initializer=GateBias.gru(update=b_z, candidate=b_h),
    )
    out = keras.ops.convert_to_numpy(layer(np.zeros((2, 1, 4), "float32")))
    expected = (1 - 1 / (1 + math.exp(-b_z))) * math.tanh(b_h)
    np.testing.assert_allclose(out, np.full((2, 3), expected), rtol=1e-6)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("p", [0.05, 0.5, 0.9, 0.999])
def test_gate_open_probability_on_dense(p):
    layer = keras.layers.Dense(6, activation="sigmoid", kernel_initializer="zeros",
                               bias_initializer=GateBias.gate(p))
    out = keras.ops.convert_to_numpy(layer(np.ones((3, 2), "float32")))
    np.testing.assert_allclose(out, p, rtol=1e-5)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "make, shape, message",
    [
        (lambda: GateBias.lstm(), (10,), "shape=(10,)"),  # 10 not divisible by 4
        (lambda: GateBias.gru(), (2, 10), "shape=(2, 10)"),
        (lambda: GateBias([1.0, 2.0]), (3, 4), "shape=(3, 4)"),  # rank 2 but not (2, n)
        (lambda: GateBias([1.0]), (2, 2, 2), "shape=(2, 2, 2)"),
        (lambda: GateBias([1.0]), (), "shape=()"),
    ],
)
def test_gate_bias_bad_shapes(make, shape, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()(shape)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "p, error",
    [
        (0, ValueError),
        (1, ValueError),
        (1.5, ValueError),
        (-0.1, ValueError),
        (float("nan"), ValueError),
        ("0.5", TypeError),
        (None, TypeError),
    ],
)
def test_gate_bad_open_probability(p, error):
    with pytest.raises(error, match=re.escape(f"open_probability={p!r}")):
        GateBias.gate(p)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "values, error, message",
    [
        ([], ValueError, "values=[]"),
        ([1.0, float("inf")], ValueError, "values[1]=inf"),
        ("abc", TypeError, "values='abc'"),
        ([[1.0], [2.0, 3.0]], TypeError, "values[0]=[1.0]"),  # ragged
        ([1.0, None], TypeError, "values[1]=None"),
    ],
)
def test_gate_bias_bad_values(values, error, message):
    with pytest.raises(error, match=re.escape(message)):
        GateBias(values)


@pytest.mark.backend_agnostic
@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.floats(-5, 5), min_size=1, max_size=4),
    units=st.integers(1, 6),
    two_rows=st.booleans(),
)
def test_property_gate_blocks(values, units, two_rows):
    gates = len(values)
    shape = (2, gates * units) if two_rows else (gates * units,)
    bias = value(GateBias(values), shape)
    assert bias.shape == shape
    total = bias.sum(axis=0) if two_rows else bias
    np.testing.assert_allclose(total, np.repeat(np.float32(values), units))


# --- MarginalBias ---------------------------------------------------------------------


def entropy(p):
    p = np.asarray(p, "float64")
    return float(-(p * np.log(p)).sum())


def zero_kernel_output_model(units, activation, bias_initializer, loss, inputs=3):
    model = keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(units, activation=activation, kernel_initializer="zeros",
                               bias_initializer=bias_initializer),
        ]
    )
    model.compile(loss=loss)
    return model


def test_softmax_predictions_are_class_frequencies_and_loss_is_entropy():
    rng = np.random.default_rng(0)
    prior = np.array([0.6, 0.25, 0.1, 0.05])
    y = rng.choice(4, size=2000, p=prior)
    freq = np.bincount(y, minlength=4) / len(y)
    x = rng.normal(size=(2000, 3)).astype("float32")
    model = zero_kernel_output_model(
        4, "softmax", MarginalBias.from_labels(y, smoothing=0), "sparse_categorical_crossentropy"
    )
    np.testing.assert_allclose(model.predict(x[:5], verbose=0), np.tile(freq, (5, 1)), rtol=1e-5)
    # Cross-entropy of the empirical labels under the predicted marginal = its entropy.
    assert model.evaluate(x, y, verbose=0) == pytest.approx(entropy(freq), rel=1e-5)
    # Zero bias (Keras' default) starts at log C instead, which is larger.
    assert entropy(freq) < math.log(4) - 0.1


def test_tiny_weights_start_near_the_entropy():
    rng = np.random.default_rng(1)
    y = rng.choice(3, size=1000, p=[0.7, 0.2, 0.1])
    freq = np.bincount(y) / len(y)
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(
                3,
                activation="softmax",
                kernel_initializer=keras.initializers.RandomNormal(stddev=1e-4, seed=0),
                bias_initializer=MarginalBias.from_labels(y, smoothing=0),
            ),
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy")
    x = rng.normal(size=(1000, 5)).astype("float32")
    # Logits move by ~|x|·1e-4·sqrt(5) ≈ 5e-4, so the loss moves by about that much.
    assert model.evaluate(x, y, verbose=0) == pytest.approx(entropy(freq), abs=2e-3)


def test_one_hot_and_integer_labels_agree():
    y = np.array([0, 2, 2, 1, 2, 0])
    a = MarginalBias.from_labels(y)
    b = MarginalBias.from_labels(keras.utils.to_categorical(y, 3))
    np.testing.assert_allclose(a.values, b.values)
    np.testing.assert_allclose(MarginalBias.from_labels(y[:, None]).values, a.values)


def test_smoothing_gives_empty_class_a_finite_bias():
    y = np.array([0, 0, 0, 1])
    bias = MarginalBias.from_labels(y, num_classes=3, smoothing=1.0)
    p = np.exp(bias.values) / np.exp(bias.values).sum()
    np.testing.assert_allclose(p, np.array([4, 2, 1]) / 7)  # (n_c + 1)/(N + C)
    with pytest.raises(ValueError, match="smoothing=0"):
        MarginalBias.from_labels(y, num_classes=3, smoothing=0)


def test_sigmoid_multilabel_rates_and_loss():
    rng = np.random.default_rng(2)
    rates = np.array([0.5, 0.1, 0.02])
    y = (rng.random((3000, 3)) < rates).astype("float32")
    observed = y.mean(axis=0)
    model = zero_kernel_output_model(
        3,
        "sigmoid",
        MarginalBias.from_labels(y, link="sigmoid", smoothing=0),
        "binary_crossentropy",
    )
    x = rng.normal(size=(3000, 3)).astype("float32")
    predictions = model.predict(x[:4], verbose=0)
    np.testing.assert_allclose(predictions, np.tile(observed, (4, 1)), rtol=1e-5)
    binary_entropy = np.mean([entropy([r, 1 - r]) for r in observed])
    # Keras clips probabilities at 1e-7 in binary cross-entropy: agreement to 1e-4.
    assert model.evaluate(x, y, verbose=0) == pytest.approx(binary_entropy, rel=1e-4)


def test_sigmoid_binary_vector():
    y = np.array([1, 0, 0, 0])
    (b,) = MarginalBias.from_labels(y, link="sigmoid", smoothing=0).values
    assert 1 / (1 + math.exp(-b)) == pytest.approx(0.25)


def test_from_targets_mean_per_output_and_loss_is_variance():
    rng = np.random.default_rng(3)
    y = rng.normal(loc=[3.0, -1.0], scale=[2.0, 0.5], size=(500, 2)).astype("float32")
    initializer = MarginalBias.from_targets(y)
    np.testing.assert_allclose(initializer.values, y.mean(axis=0), rtol=1e-5)
    model = zero_kernel_output_model(2, None, initializer, "mse")
    x = rng.normal(size=(500, 3)).astype("float32")
    assert model.evaluate(x, y, verbose=0) == pytest.approx(y.var(axis=0).mean(), rel=1e-4)
    np.testing.assert_allclose(MarginalBias.from_targets(np.arange(4.0)).values, [1.5])


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: MarginalBias.from_labels([0, 1, 5], num_classes=3), "y[2]=5"),
        (lambda: MarginalBias.from_labels([0, -1, 1]), "y[1]=-1"),
        (lambda: MarginalBias.from_labels([0.5, 1.0]), "y[0]=0.5"),
        (lambda: MarginalBias.from_labels([0, 1], link="tanh"), "link='tanh'"),
        (lambda: MarginalBias.from_labels([0, 2.0], link="sigmoid"), "y[1, 0]=2.0"),
        (lambda: MarginalBias.from_labels([], link="softmax"), "`y` is empty"),
        (lambda: MarginalBias.from_labels([0, 1], smoothing=-1), "smoothing=-1"),
        (lambda: MarginalBias.from_labels([0, 1], num_classes=0), "num_classes=0"),
        (lambda: MarginalBias.from_labels(np.eye(3), num_classes=4), "num_classes=4"),
        (lambda: MarginalBias.from_labels([1, 1], link="sigmoid", smoothing=0), "smoothing=0"),
        (lambda: MarginalBias.from_targets([]), "non-empty"),
        (lambda: MarginalBias([0.0, 1.0])((3,)), "shape=(3,)"),
        (lambda: MarginalBias([0.0, 1.0])((1, 2)), "shape=(1, 2)"),
        (lambda: MarginalBias([]), "values=[]"),
    ],
)
def test_marginal_bias_bad_inputs(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "initializer",
    [GateBias.lstm(forget=1.5), GateBias.gate(0.8), MarginalBias.from_labels([0, 1, 1, 2])],
)
def test_config_round_trip_holds_plain_values(initializer):
    config = initializer.get_config()
    assert list(config) == ["values"]
    assert all(type(v) is float for v in config["values"])
    clone = type(initializer)(**config)
    n = 4 * len(config["values"]) if isinstance(initializer, GateBias) else len(config["values"])
    np.testing.assert_array_equal(value(clone, (n,)), value(initializer, (n,)))


@pytest.mark.backend_agnostic
def test_dtype():
    for initializer, shape in ((GateBias.gru(), (2, 6)), (MarginalBias([1.0, 2.0]), (2,))):
        for dtype in ("float32", "float64"):
            assert keras.backend.standardize_dtype(initializer(shape, dtype=dtype).dtype) == dtype


@settings(max_examples=25, deadline=None)
@given(
    counts=st.lists(st.integers(0, 50), min_size=2, max_size=8).filter(lambda c: sum(c) > 0),
    smoothing=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_property_softmax_of_bias_is_smoothed_frequency(counts, smoothing):
    y = np.repeat(np.arange(len(counts)), counts)
    b = np.array(MarginalBias.from_labels(y, num_classes=len(counts), smoothing=smoothing).values)
    p = np.exp(b - b.max())
    expected = (np.array(counts) + smoothing) / (sum(counts) + len(counts) * smoothing)
    np.testing.assert_allclose(p / p.sum(), expected, rtol=1e-12)


# --- GateBias inside Keras' cells: the gate count and unit_forget_bias -----------------
# Keras' LSTMCell/ConvLSTMCell with unit_forget_bias=True (the default) call the bias
# initializer for the pieces (units,) and (2*units,) and put ones in the forget block
# (keras/src/layers/rnn/lstm.py); GateBias finds the cell it serves (bias.py's
# _building_context), so these tests also pin that lookup to this Keras release.

LSTM_VALUES = dict(input=0.5, forget=1.0, cell=-0.25, output=2.0)


def gate_blocks(layer, gates):
    bias = keras.ops.convert_to_numpy(layer.cell.bias).astype("float64")
    if bias.ndim == 2:  # GRU reset_after: the rows add up
        bias = bias.sum(axis=0)
    return np.split(bias, gates)


def assert_blocks_exact(layer, expected):
    blocks_ = gate_blocks(layer, len(expected))
    for block, want in zip(blocks_, expected):
        np.testing.assert_array_equal(block, np.full(block.size, np.float32(want)))


def lstm_like(kind, units, bias_initializer, unit_forget_bias):
    if kind == "LSTM":
        layer = keras.layers.LSTM(units, unit_forget_bias=unit_forget_bias, bias_initializer=bias_initializer)
        layer.build((None, 3, 2))
    else:
        layer = keras.layers.ConvLSTM1D(units, 3, unit_forget_bias=unit_forget_bias,
                                        bias_initializer=bias_initializer)
        layer.build((None, 2, 5, 3))
    return layer


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("kind", ["LSTM", "ConvLSTM1D"])
@pytest.mark.parametrize("unit_forget_bias", [True, False])
def test_lstm_gate_values_exact_for_both_unit_forget_bias(kind, unit_forget_bias):
    # Before: unit_forget_bias=True gave i, f, c, o means 0.25·(...) mixes, not the values.
    layer = lstm_like(kind, 32, GateBias.lstm(**LSTM_VALUES), unit_forget_bias)
    assert_blocks_exact(layer, [0.5, 1.0, -0.25, 2.0])


@pytest.mark.backend_agnostic
def test_lstm_default_forget_one_on_default_layer():
    layer = keras.layers.LSTM(32, bias_initializer=GateBias.lstm(forget=1.0))
    layer.build((None, 3, 2))
    assert_blocks_exact(layer, [0.0, 1.0, 0.0, 0.0])  # was [0.25, 1.0, 0.5, 0.0] in means


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("kind", ["LSTM", "ConvLSTM1D"])
def test_forget_other_than_one_refused_under_unit_forget_bias(kind):
    with pytest.raises(ValueError, match=re.escape("forget=2.0")) as info:
        lstm_like(kind, 32, GateBias.lstm(forget=2.0), True)
    assert "unit_forget_bias=False" in str(info.value)
    # The documented way: forget = 2 exactly.
    assert_blocks_exact(lstm_like(kind, 32, GateBias.lstm(forget=2.0), False), [0.0, 2.0, 0.0, 0.0])


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("unit_forget_bias", [True, False])
def test_three_values_on_an_lstm_refused(unit_forget_bias):
    # LSTM(6): 24 divides by 3, so the shape alone accepted a wrong layout.
    with pytest.raises(ValueError, match=re.escape("values=[0.0, 1.0, 0.0]")) as info:
        lstm_like("LSTM", 6, GateBias([0, 1, 0]), unit_forget_bias)
    assert "`values`" in str(info.value) and "shape=(" in str(info.value)
    with pytest.raises(ValueError, match=re.escape("values=[0.0, 0.0, 0.0]")):
        lstm_like("LSTM", 6, GateBias.gru(), unit_forget_bias)
    with pytest.raises(ValueError, match=re.escape("values=[0.0]")):
        lstm_like("LSTM", 8, GateBias.gate(0.5), unit_forget_bias)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_takes_three_values_exactly(reset_after):
    layer = keras.layers.GRU(8, reset_after=reset_after, bias_initializer=GateBias.gru(update=-1.0, reset=0.5,
                                                                                       candidate=0.25))
    layer.build((None, 3, 2))
    assert_blocks_exact(layer, [-1.0, 0.5, 0.25])
    # GateBias.lstm() on GRU(6): 18 = 2·(9) would not divide, but GRU(12) (36 = 4·9) would.
    with pytest.raises(ValueError, match=re.escape("values=[0.0, 1.0, 0.0, 0.0]")):
        keras.layers.GRU(12, reset_after=reset_after, bias_initializer=GateBias.lstm()).build((None, 3, 2))


@pytest.mark.backend_agnostic
def test_simple_rnn_has_one_block_and_dense_any():
    with pytest.raises(ValueError, match=re.escape("values=[0.0, 1.0, 0.0, 0.0]")):
        keras.layers.SimpleRNN(8, bias_initializer=GateBias.lstm()).build((None, 3, 2))
    rnn = keras.layers.SimpleRNN(8, bias_initializer=GateBias.gate(0.5))
    rnn.build((None, 3, 2))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(rnn.cell.bias), np.zeros(8, "float32"))
    # A Dense layer has no known gate count: G blocks of a divisible length, as asked.
    dense = keras.layers.Dense(8, bias_initializer=GateBias.lstm(**LSTM_VALUES))
    dense.build((None, 3))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(dense.bias),
                                  np.repeat(np.float32([0.5, 1.0, -0.25, 2.0]), 2))


@pytest.mark.backend_agnostic
def test_scaled_gate_bias_under_unit_forget_bias():
    # Keras' ones escape the wrapper: Scaled(GateBias.lstm(), 2) would give forget = 1.
    with pytest.raises(ValueError, match=re.escape("unit_forget_bias=True")):
        lstm_like("LSTM", 8, Scaled(GateBias.lstm(input=0.5), 2.0), True)
    layer = lstm_like("LSTM", 8, Scaled(GateBias.lstm(input=0.5), 2.0), False)
    assert_blocks_exact(layer, [1.0, 2.0, 0.0, 0.0])


class _Outer(keras.layers.Layer):
    """Builds its LSTM lazily inside call(): on JAX the bias is initialized later."""

    def __init__(self, unit_forget_bias, **kwargs):
        super().__init__(**kwargs)
        self.lstm = keras.layers.LSTM(8, unit_forget_bias=unit_forget_bias,
                                      bias_initializer=GateBias.lstm(**LSTM_VALUES))

    def call(self, x):
        return self.lstm(x)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("unit_forget_bias", [True, False])
def test_lstm_inside_layers_and_wrappers(unit_forget_bias):
    inputs = keras.Input((3, 2))
    outer = _Outer(unit_forget_bias)
    keras.Model(inputs, outer(inputs))
    assert_blocks_exact(outer.lstm, [0.5, 1.0, -0.25, 2.0])
    stacked = keras.layers.RNN([keras.layers.LSTMCell(4, unit_forget_bias=unit_forget_bias,
                                                      bias_initializer=GateBias.lstm(**LSTM_VALUES))])
    stacked.build((None, 3, 2))
    for block, want in zip(np.split(keras.ops.convert_to_numpy(stacked.cell.cells[0].bias), 4),
                           [0.5, 1.0, -0.25, 2.0]):
        np.testing.assert_array_equal(block, np.float32(want))
    bidirectional = keras.layers.Bidirectional(
        keras.layers.LSTM(4, unit_forget_bias=unit_forget_bias, bias_initializer=GateBias.lstm(**LSTM_VALUES)))
    bidirectional.build((None, 3, 2))
    for layer in (bidirectional.forward_layer, bidirectional.backward_layer):
        assert_blocks_exact(layer, [0.5, 1.0, -0.25, 2.0])


# --- MarginalBias: the class count ------------------------------------------------------


@pytest.mark.backend_agnostic
def test_implied_class_count_bounded_num_classes_explicit():
    bias = MarginalBias.from_labels([0, MAX_IMPLIED_CLASSES - 1])  # 2**16 classes: accepted
    assert len(bias.values) == MAX_IMPLIED_CLASSES
    with pytest.raises(ValueError, match=re.escape("num_classes=None")):
        MarginalBias.from_labels([0, MAX_IMPLIED_CLASSES])
    bias = MarginalBias.from_labels([0, 69_999], num_classes=70_000)  # explicit: as asked
    assert len(bias.values) == 70_000


@pytest.mark.backend_agnostic
def test_soft_labels_must_be_distributions():
    y = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]])
    p = np.exp(MarginalBias.from_labels(y, smoothing=0).values)
    np.testing.assert_allclose(p / p.sum(), y.mean(axis=0), rtol=1e-12)
    # Integer ids of shape (N, T) were read as soft labels, silently.
    with pytest.raises(ValueError, match=re.escape("y[0, 0]=3")):
        MarginalBias.from_labels(np.array([[3, 5, 1], [2, 2, 0]]))
    with pytest.raises(ValueError, match=re.escape("y[0] summing to 2.0")):
        MarginalBias.from_labels(np.array([[1, 1, 0], [0, 1, 0]]))


@pytest.mark.backend_agnostic
def test_sigmoid_accepts_bool_targets():
    bias = MarginalBias.from_labels(np.array([True, False, False, False]), link="sigmoid", smoothing=0)
    assert 1 / (1 + math.exp(-bias.values[0])) == pytest.approx(0.25)
