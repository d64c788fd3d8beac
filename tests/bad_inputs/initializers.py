"""Bad inputs: initializers (see tests/bad_inputs/__init__.py).

The first rows are the former BAD table of tests/initializers/test_validation.py; the
rest come from issue 13: gate counts and unit_forget_bias in Keras' cells, MarginalBias'
labels and targets, shapes and dtypes at a call, and `from_config` with bad values.
"""

import keras
import numpy as np

from keras_optlab.initializers import (
    FanInUniform,
    GateBias,
    MarginalBias,
    NormalizedUniform,
    Scaled,
    SparseK,
)
from keras_optlab._checks import KerasContractTypeError as SeedTypeError  # a TypeError and a ValueError, as Keras
from tests.bad_inputs import Bad

INF, NAN = float("inf"), float("nan")


def _lstm(units, bias_initializer, unit_forget_bias=True):
    layer = keras.layers.LSTM(units, unit_forget_bias=unit_forget_bias, bias_initializer=bias_initializer)
    return layer.build((None, 3, 2))


def _cell(layer_cls, units, bias_initializer, **kwargs):
    return layer_cls(units, bias_initializer=bias_initializer, **kwargs).build((None, 3, 2))


ROWS = [
    # FanInUniform / NormalizedUniform: scale, seed
    Bad(lambda: FanInUniform(scale="a"), TypeError, "scale", "scale='a'"),
    Bad(lambda: FanInUniform(scale=None), TypeError, "scale", "scale=None"),
    # A NumPy scalar is echoed by its repr, which NumPy 2 writes np.float32(-0.5) and 1.26 -0.5.
    Bad(lambda: FanInUniform(scale=np.bool_(True)), TypeError, "scale", f"scale={np.bool_(True)!r}"),
    Bad(lambda: FanInUniform(scale=0), ValueError, "scale", "scale=0"),
    Bad(lambda: FanInUniform(scale=np.float32(-0.5)), ValueError, "scale", f"scale={np.float32(-0.5)!r}"),
    Bad(lambda: FanInUniform(scale=INF), ValueError, "scale", "scale=inf"),
    Bad(lambda: NormalizedUniform(scale=NAN), ValueError, "scale", "scale=nan"),
    Bad(lambda: NormalizedUniform(scale=[1.0]), TypeError, "scale", "scale=[1.0]"),
    Bad(lambda: FanInUniform(seed="x"), SeedTypeError, "seed", "seed='x'"),
    Bad(lambda: FanInUniform(seed=1.5), SeedTypeError, "seed", "seed=1.5"),
    Bad(lambda: NormalizedUniform(seed=True), SeedTypeError, "seed", "seed=True"),
    # SparseK: k, scale, seed
    Bad(lambda: SparseK(k=0), ValueError, "k", "k=0"),
    Bad(lambda: SparseK(k=np.int64(-2)), ValueError, "k", f"k={np.int64(-2)!r}"),
    Bad(lambda: SparseK(k=3.0), TypeError, "k", "k=3.0"),
    Bad(lambda: SparseK(k="3"), TypeError, "k", "k='3'"),
    Bad(lambda: SparseK(scale="a"), TypeError, "scale", "scale='a'"),
    Bad(lambda: SparseK(scale=INF), ValueError, "scale", "scale=inf"),
    Bad(lambda: SparseK(scale=-1e-9), ValueError, "scale", "scale=-1e-09"),
    Bad(lambda: SparseK(seed=[1]), SeedTypeError, "seed", "seed=[1]"),
    # Scaled: initializer, scale
    Bad(lambda: Scaled(keras.layers.Dense(3), 2.0), TypeError, "initializer", "initializer=<Dense"),
    Bad(lambda: Scaled(None, 2.0), TypeError, "initializer", "initializer=None"),
    Bad(lambda: Scaled(3.0, 2.0), TypeError, "initializer", "initializer=3.0"),
    Bad(lambda: Scaled(keras.layers.Dense, 2.0), TypeError, "initializer", "initializer=<class 'keras"),
    Bad(lambda: Scaled("no_such_initializer", 2.0), ValueError, "initializer", "initializer='no_such_initializer'"),
    Bad(lambda: Scaled("ones", "2"), TypeError, "scale", "scale='2'"),
    Bad(lambda: Scaled("ones", 0.0), ValueError, "scale", "scale=0.0"),
    Bad(lambda: Scaled("ones", INF), ValueError, "scale", "scale=inf"),
    # GateBias: values, the named gates, open_probability
    Bad(lambda: GateBias("abc"), TypeError, "values", "values='abc'"),
    Bad(lambda: GateBias(3.0 + 1j), TypeError, "values", "values=(3+1j)"),
    Bad(lambda: GateBias([]), ValueError, "values", "values=[]"),
    Bad(lambda: GateBias([0.0, NAN]), ValueError, "values[1]", "values[1]=nan"),
    Bad(lambda: GateBias([True]), TypeError, "values[0]", "values[0]=True"),
    Bad(lambda: GateBias.lstm(forget="1"), TypeError, "forget", "forget='1'"),
    Bad(lambda: GateBias.lstm(cell=INF), ValueError, "cell", "cell=inf"),
    Bad(lambda: GateBias.gru(reset=None), TypeError, "reset", "reset=None"),
    Bad(lambda: GateBias.gate(np.float64(1.0)), ValueError, "open_probability", f"open_probability={np.float64(1.0)!r}"),
    Bad(lambda: GateBias.gate("0.5"), TypeError, "open_probability", "open_probability='0.5'"),
    # MarginalBias: values, link, smoothing, num_classes
    Bad(lambda: MarginalBias([1.0, "b"]), TypeError, "values[1]", "values[1]='b'"),
    Bad(lambda: MarginalBias([-INF]), ValueError, "values[0]", "values[0]=-inf"),
    Bad(lambda: MarginalBias.from_labels([0, 1], link=None), TypeError, "link", "link=None"),
    Bad(lambda: MarginalBias.from_labels([0, 1], link="relu"), ValueError, "link", "link='relu'"),
    Bad(lambda: MarginalBias.from_labels([0, 1], smoothing="1"), TypeError, "smoothing", "smoothing='1'"),
    Bad(lambda: MarginalBias.from_labels([0, 1], smoothing=INF), ValueError, "smoothing", "smoothing=inf"),
    Bad(lambda: MarginalBias.from_labels([0, 1], smoothing=-0.5), ValueError, "smoothing", "smoothing=-0.5"),
    Bad(lambda: MarginalBias.from_labels([0, 1], num_classes=2.0), TypeError, "num_classes", "num_classes=2.0"),
    Bad(lambda: MarginalBias.from_labels([0, 1], num_classes=0), ValueError, "num_classes", "num_classes=0"),
    # --- issue 13 -------------------------------------------------------------------
    # GateBias in Keras' cells: the gate count, and unit_forget_bias=True.
    Bad(lambda: _lstm(6, GateBias([0, 1, 0]), False), ValueError, "values", "values=[0.0, 1.0, 0.0], shape=(24,)"),
    Bad(lambda: _lstm(6, GateBias([0, 1, 0]), True), ValueError, "values", "values=[0.0, 1.0, 0.0], shape=(6,)"),
    Bad(lambda: _lstm(8, GateBias.gru()), ValueError, "values", "values=[0.0, 0.0, 0.0]"),
    Bad(lambda: _lstm(32, GateBias.lstm(forget=2.0)), ValueError, "forget", "forget=2.0, shape=(32,)"),
    Bad(lambda: _lstm(8, GateBias([0, 0.5, 0, 0])), ValueError, "forget", "forget=0.5"),
    Bad(lambda: keras.layers.ConvLSTM1D(4, 3, bias_initializer=GateBias.lstm(forget=3.0)).build((None, 2, 5, 3)),
        ValueError, "forget", "forget=3.0"),
    Bad(lambda: _lstm(8, Scaled(GateBias.lstm(), 2.0)), ValueError, "unit_forget_bias", "unit_forget_bias=True"),
    Bad(lambda: _cell(keras.layers.GRU, 12, GateBias.lstm()), ValueError, "values",
        "values=[0.0, 1.0, 0.0, 0.0], shape=(2, 36)"),
    Bad(lambda: _cell(keras.layers.GRU, 12, GateBias.lstm(), reset_after=False), ValueError, "values",
        "values=[0.0, 1.0, 0.0, 0.0], shape=(36,)"),
    Bad(lambda: _cell(keras.layers.SimpleRNN, 8, GateBias.lstm()), ValueError, "values", "shape=(8,)"),
    Bad(lambda: GateBias([[0, 1], [0, 1]]), ValueError, "values", "values=[[0, 1], [0, 1]]"),
    Bad(lambda: GateBias({1.0, 2.0}), TypeError, "values", "values={1.0, 2.0}"),
    Bad(lambda: MarginalBias(np.zeros((2, 2))), ValueError, "values", "values=array("),
    # MarginalBias.from_labels: y and the class count.
    Bad(lambda: MarginalBias.from_labels([0, 10**8]), ValueError, "num_classes", "num_classes=None"),
    Bad(lambda: MarginalBias.from_labels(["cat", "dog"]), TypeError, "y", "y[0]='cat'"),
    Bad(lambda: MarginalBias.from_labels([0, 1 + 2j]), TypeError, "y", "y[0]=0j"),
    Bad(lambda: MarginalBias.from_labels([True, False]), TypeError, "y", "y[0]=True"),
    Bad(lambda: MarginalBias.from_labels([0, -3]), ValueError, "y", "y[1]=-3"),
    Bad(lambda: MarginalBias.from_labels([0, 1.5]), ValueError, "y", "y[1]=1.5"),
    Bad(lambda: MarginalBias.from_labels([0, NAN]), ValueError, "y", "y[1]=nan"),
    Bad(lambda: MarginalBias.from_labels([0, 1, 5], num_classes=3), ValueError, "y", "y[2]=5"),
    Bad(lambda: MarginalBias.from_labels(np.zeros((2, 3, 4))), ValueError, "y", "y with shape (2, 3, 4)"),
    Bad(lambda: MarginalBias.from_labels(3), ValueError, "y", "y with shape ()"),
    Bad(lambda: MarginalBias.from_labels([[3, 5, 1], [2, 2, 0]]), ValueError, "y", "y[0, 0]=3"),
    Bad(lambda: MarginalBias.from_labels([[1, 1, 0], [0, 1, 0]]), ValueError, "y", "y[0] summing to 2.0"),
    Bad(lambda: MarginalBias.from_labels([[0, 1], [2, 0]], link="sigmoid"), ValueError, "y", "y[1, 0]=2.0"),
    Bad(lambda: MarginalBias.from_labels([[0, 1], [1, 0]], link="sigmoid", num_classes=3), ValueError,
        "num_classes", "num_classes=3"),
    # MarginalBias.from_targets: y, not `values`.
    Bad(lambda: MarginalBias.from_targets([1.0, NAN]), ValueError, "y", "y[1]=nan"),
    Bad(lambda: MarginalBias.from_targets([[1.0, 2.0], [INF, 0.0]]), ValueError, "y", "y[1, 0]=inf"),
    Bad(lambda: MarginalBias.from_targets(["a"]), TypeError, "y", "y[0]='a'"),
    Bad(lambda: MarginalBias.from_targets([True, False]), TypeError, "y", "y[0]=True"),
    Bad(lambda: MarginalBias.from_targets([]), ValueError, "y", "y with shape (0,)"),
    Bad(lambda: MarginalBias.from_targets(np.ones((2, 2, 2))), ValueError, "y", "y with shape (2, 2, 2)"),
    # At a call: dtype and shape.
    Bad(lambda: SparseK(seed=0)((4, 3), dtype="int32"), ValueError, "dtype", "dtype='int32'"),
    Bad(lambda: Scaled("ones", 2.0)((2, 2), dtype="int32"), ValueError, "dtype", "dtype='int32'"),
    Bad(lambda: Scaled(FanInUniform(seed=0), 2.0)((2, 2), dtype="bool"), ValueError, "dtype", "dtype='bool'"),
    Bad(lambda: GateBias.lstm()((8,), dtype=3), TypeError, "dtype", "dtype=3"),
    Bad(lambda: SparseK(seed=0)((3, 3.5)), TypeError, "shape", "shape=(3, 3.5)"),
    Bad(lambda: FanInUniform(seed=0)((3, -2)), ValueError, "shape", "shape=(3, -2)"),
    Bad(lambda: NormalizedUniform(seed=0)(5), TypeError, "shape", "shape=5"),
    Bad(lambda: FanInUniform(seed=0)((3, None)), TypeError, "shape", "shape=(3, None)"),
    Bad(lambda: GateBias.lstm()((8.0,)), TypeError, "shape", "shape=(8.0,)"),
    Bad(lambda: MarginalBias([0.0, 1.0])("2"), TypeError, "shape", "shape='2'"),
    Bad(lambda: Scaled("ones", 2.0)((2, -1)), ValueError, "shape", "shape=(2, -1)"),
    # from_config with bad values.
    Bad(lambda: FanInUniform.from_config({"scale": -1.0, "seed": 0}), ValueError, "scale", "scale=-1.0"),
    Bad(lambda: NormalizedUniform.from_config({"scale": 1.0, "seed": 0, "input_axes": "x"}), TypeError,
        "input_axes", "input_axes='x'"),
    Bad(lambda: FanInUniform.from_config({"scale": 1.0, "seed": 0, "output_axes": [1.5]}), TypeError,
        "output_axes", "output_axes=[1.5]"),
    Bad(lambda: SparseK.from_config({"k": 0, "scale": 1.0, "seed": 0}), ValueError, "k", "k=0"),
    Bad(lambda: SparseK.from_config({"k": 3, "scale": 1.0, "seed": {"bogus": 1}}), ValueError, "seed",
        "seed={'bogus': 1}"),
    Bad(lambda: FanInUniform.from_config({"scale": 1.0, "seed": {"class_name": "Ones", "config": {}}}), ValueError,
        "seed", "seed={'class_name': 'Ones'"),
    Bad(lambda: Scaled.from_config({"initializer": 3.0, "scale": 2.0}), TypeError, "initializer", "initializer=3.0"),
    Bad(lambda: Scaled.from_config({"initializer": {"class_name": "Nope", "config": {}}, "scale": 2.0}), ValueError,
        "initializer", "initializer={'class_name': 'Nope'"),
    Bad(lambda: Scaled.from_config({"initializer": "ones", "scale": NAN}), ValueError, "scale", "scale=nan"),
    Bad(lambda: GateBias.from_config({"values": [0.0, "1"]}), TypeError, "values[1]", "values[1]='1'"),
    Bad(lambda: MarginalBias.from_config({"values": [NAN]}), ValueError, "values[0]", "values[0]=nan"),
]
