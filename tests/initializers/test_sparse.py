"""SparseK: exactly min(k, m) non-zero incoming weights per unit (Martens 2010)."""

import math
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from keras_optlab.initializers import SparseK


def draw(initializer, shape, dtype=None):
    return keras.ops.convert_to_numpy(initializer(shape, dtype=dtype))


def nonzeros_per_unit(kernel):
    return np.count_nonzero(np.reshape(kernel, (-1, kernel.shape[-1])), axis=0)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "shape, k, expected",
    [
        ((100, 30), 15, 15),  # Dense (in, out)
        ((3, 8, 16), 15, 15),  # Conv1D (width, in, out): m = 24
        ((3, 3, 4, 10), 5, 5),  # Conv2D: m = 36
        ((2, 2, 2, 3, 4), 7, 7),  # Conv3D: m = 24
        ((10, 40), 15, 10),  # k > m: dense
        ((15, 6), 15, 15),  # k = m: dense
        ((1, 5), 3, 1),
    ],
)
def test_exactly_min_k_m_per_unit(shape, k, expected):
    kernel = draw(SparseK(k=k, seed=1), shape)
    assert kernel.shape == shape
    np.testing.assert_array_equal(nonzeros_per_unit(kernel), expected)


@pytest.mark.backend_agnostic
def test_k_at_least_fan_in_gives_dense_kernel():
    assert np.all(draw(SparseK(k=100, seed=0), (10, 5)) != 0)


def test_exact_k_through_real_layers():
    init = SparseK(k=4, seed=2)
    dense = keras.layers.Dense(9, kernel_initializer=init)
    dense.build((None, 50))
    conv1d = keras.layers.Conv1D(6, 3, kernel_initializer=init)
    conv1d.build((None, 20, 5))  # kernel (3, 5, 6): m = 15
    conv2d = keras.layers.Conv2D(8, (3, 3), kernel_initializer=init)
    conv2d.build((None, 10, 10, 2))  # kernel (3, 3, 2, 8): m = 18
    lstm = keras.layers.LSTM(5, kernel_initializer=init, recurrent_initializer=init)
    lstm.build((None, 7, 6))  # kernel (6, 20), recurrent kernel (5, 20)
    gru = keras.layers.GRU(3, kernel_initializer=SparseK(k=2, seed=3))
    gru.build((None, 7, 6))  # kernel (6, 9)
    kernels = [
        dense.kernel,
        conv1d.kernel,
        conv2d.kernel,
        lstm.cell.kernel,
        lstm.cell.recurrent_kernel,
    ]
    for kernel in kernels:
        np.testing.assert_array_equal(nonzeros_per_unit(keras.ops.convert_to_numpy(kernel)), 4)
    np.testing.assert_array_equal(nonzeros_per_unit(keras.ops.convert_to_numpy(gru.cell.kernel)), 2)


@pytest.mark.backend_agnostic
def test_values_are_unit_gaussian_times_scale():
    kernel = draw(SparseK(k=200, scale=1.0, seed=4), (1000, 500)).astype("float64")
    values = kernel[kernel != 0]
    assert values.size == 200 * 500
    # N = 1e5 unit-Gaussian draws: the sample variance has relative standard error
    # sqrt(2/N) ≈ 0.45%, the mean standard error 1/sqrt(N) ≈ 0.0032; 3% and 0.02 are
    # both > 6 sigma.
    assert np.var(values) == pytest.approx(1.0, rel=0.03)
    assert abs(values.mean()) < 0.02
    # The shape is Gaussian: Kolmogorov–Smirnov against N(0, 1) would reject a wrong
    # distribution (a uniform of the same variance gives p ≈ 0); false alarm 1e-4.
    assert stats.kstest(values, "norm").pvalue > 1e-4


@pytest.mark.backend_agnostic
def test_scale_multiplies_values_exactly():
    unit = draw(SparseK(k=5, scale=1.0, seed=8), (40, 30))
    scaled = draw(SparseK(k=5, scale=0.3, seed=8), (40, 30))
    np.testing.assert_array_equal(scaled, np.float32(0.3) * unit)


@pytest.mark.backend_agnostic
def test_positions_uniform_over_inputs():
    # Each unit picks k of m inputs uniformly, so every input row is chosen by a unit
    # with probability k/m: row counts over n units are Binomial(n, k/m). A chi-square
    # test of uniform row counts has false-alarm probability 1e-4 at this threshold.
    m, n, k = 50, 2000, 10
    counts = nonzeros_per_unit(draw(SparseK(k=k, seed=5), (m, n)).T)  # per input row
    assert counts.sum() == n * k
    assert stats.chisquare(counts).pvalue > 1e-4


@pytest.mark.backend_agnostic
def test_symmetry_broken_units_differ():
    kernel = draw(SparseK(k=3, seed=6), (20, 64))
    assert len({tuple(col) for col in kernel.T}) == 64
    # Positions differ too, not only values.
    assert len({tuple(col != 0) for col in kernel.T}) > 1


@pytest.mark.backend_agnostic
def test_same_seed_same_kernel_other_seed_other_kernel():
    shape = (30, 12)
    np.testing.assert_array_equal(draw(SparseK(seed=1), shape), draw(SparseK(seed=1), shape))
    assert not np.array_equal(draw(SparseK(seed=1), shape), draw(SparseK(seed=2), shape))
    generator = SparseK(seed=keras.random.SeedGenerator(3))
    assert not np.array_equal(draw(generator, shape), draw(generator, shape))


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_dtype(dtype):
    kernel = SparseK(k=2, seed=0)((6, 4), dtype=dtype)
    assert keras.backend.standardize_dtype(kernel.dtype) == dtype
    np.testing.assert_array_equal(nonzeros_per_unit(keras.ops.convert_to_numpy(kernel)), 2)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("shape", [(), (7,)])
def test_rank_below_two_rejected_naming_shape(shape):
    with pytest.raises(ValueError, match=re.escape(f"shape={shape}")):
        SparseK(k=2)(shape)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"k": 0}, ValueError, "k=0"),
        ({"k": -3}, ValueError, "k=-3"),
        ({"k": 2.5}, TypeError, "k=2.5"),
        ({"k": True}, TypeError, "k=True"),
        ({"scale": 0.0}, ValueError, "scale=0.0"),
        ({"scale": -1}, ValueError, "scale=-1"),
        ({"scale": "a"}, TypeError, "scale='a'"),
        ({"seed": 1.5}, TypeError, "seed=1.5"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        SparseK(**kwargs)


@pytest.mark.backend_agnostic
def test_config_round_trip():
    initializer = SparseK(k=3, scale=0.5, seed=11)
    config = initializer.get_config()
    assert config == {"k": 3, "scale": 0.5, "seed": 11}
    np.testing.assert_array_equal(draw(SparseK(**config), (9, 4)), draw(initializer, (9, 4)))


@pytest.mark.backend_agnostic
@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 7), min_size=2, max_size=4).map(tuple),
    k=st.integers(1, 30),
    scale=st.floats(0.01, 10.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_exact_count_and_determinism(shape, k, scale, seed):
    kernel = draw(SparseK(k=k, scale=scale, seed=seed), shape)
    assert kernel.shape == shape
    np.testing.assert_array_equal(nonzeros_per_unit(kernel), min(k, math.prod(shape[:-1])))
    np.testing.assert_array_equal(kernel, draw(SparseK(k=k, scale=scale, seed=seed), shape))
