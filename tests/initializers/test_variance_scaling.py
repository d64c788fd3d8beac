"""FanInUniform and NormalizedUniform are Keras `VarianceScaling` initializers.

* the values are the ones the hand-written versions drew (pinned below, computed with
  the code before the rebuild on `VarianceScaling`), for kernels and through layers;
* `EinsumDense` and `MultiHeadAttention` hand them their per-axis fans, so their bound
  is the one Keras' own `VarianceScaling` gets there, not the conv-kernel rule's.
"""

import math
import os

import keras
import numpy as np
import pytest

from keras_optlab.initializers import FanInUniform, NormalizedUniform, Scaled, SparseK
from tests.helpers import needs_keras

PER_AXIS_FANS = needs_keras(3, 15, "VarianceScaling's per-axis fans (input_axes, output_axes)")

pytestmark = pytest.mark.backend_agnostic

CLASSES = {"FanInUniform": FanInUniform, "NormalizedUniform": NormalizedUniform, "SparseK": SparseK}

# (class, kwargs, shape, dtype) -> (sum, sum of |w|, first four values), as drawn by the
# code before FanInUniform/NormalizedUniform became VarianceScaling subclasses and
# SparseK took its seed from Keras. Random streams are per backend.
CASES = [
    ("FanInUniform", dict(scale=1.0, seed=1), (6, 4), "float32"),
    ("FanInUniform", dict(scale=0.5, seed=7), (3, 3, 2, 4), "float32"),
    ("FanInUniform", dict(scale=2.0, seed=3), (3, 5, 6), "float64"),
    ("NormalizedUniform", dict(scale=1.0, seed=2), (6, 4), "float32"),
    ("NormalizedUniform", dict(scale=0.3, seed=11), (3, 3, 2, 4), "float32"),
    ("NormalizedUniform", dict(scale=3.0, seed=5), (20, 30), "float64"),
    ("SparseK", dict(k=3, scale=0.7, seed=3), (8, 5), "float32"),
    ("SparseK", dict(k=2, scale=1.0, seed=4), (3, 3, 2, 4), "float64"),
]
PINNED = {
    "tensorflow": [
        (-1.4638608396053314, 4.118355542421341, [0.3090343475341797, -0.032675981521606445, 0.08188745379447937, -0.08769363164901733]),  # noqa: E501
        (-0.19046999141573906, 4.175689529627562, [0.058237023651599884, 0.04058326035737991, -0.10423235595226288, 0.03399137407541275]),  # noqa: E501
        (-1.557066297320333, 23.584858841379845, [0.0695102637070103, -0.2497275755639934, -0.03873626733522173, -0.4838633556819426]),  # noqa: E501
        (2.94439360499382, 7.414733320474625, [0.4662747383117676, 0.3171459436416626, 0.30546724796295166, 0.3324698209762573]),  # noqa: E501
        (0.11154843866825104, 4.1552793979644775, [0.07080855220556259, -0.05386674404144287, 0.08982720226049423, 0.09162085503339767]),  # noqa: E501
        (18.057602486521947, 320.2256327536075, [-0.01075258664258616, 0.5998797485060872, -0.866192496066978, 0.39939874905687467]),  # noqa: E501
        (-0.6557140350341797, 7.125799924135208, [0.0, 0.0, 0.0, 0.0]),
        (2.409510939482099, 6.33073082879549, [0.0, 0.0, 0.0, 0.0]),
    ],
    "jax": [  # with JAX_ENABLE_X64=1
        (0.14185669695143588, 3.842761900770711, [-0.297035276889801, 0.14910922944545746, 0.2498094141483307, -0.21347132325172424]),  # noqa: E501
        (-1.024077833397314, 4.21476017520763, [-0.039901796728372574, -0.05238381400704384, 0.022860394790768623, 0.05335009843111038]),  # noqa: E501
        (-3.24981503442307, 20.806649261172442, [-0.32602770751610205, 0.15181446404091967, -0.21174984015971043, 0.4569121700189381]),  # noqa: E501
        (1.3047471344470978, 9.036754250526428, [0.08972685039043427, 0.5697896480560303, 0.22120113670825958, -0.36700865626335144]),  # noqa: E501
        (0.15124276489950716, 3.5248258465435356, [0.05308065563440323, -0.09913446754217148, 0.011901355348527431, -0.054294612258672714]),  # noqa: E501
        (20.801236998708394, 315.2262045611535, [-0.36355225068609526, 0.05305976737546892, 0.10515921159547452, 0.8090773946629061]),  # noqa: E501
        (-1.365970566868782, 9.625865057110786, [0.0, -0.24417629837989807, 0.0, 0.0]),
        (1.3057994618027184, 6.337730374032699, [0.0, 1.504337073232124, 0.0, 0.0]),
    ],
}


def draw(initializer, shape, dtype=None):
    return keras.ops.convert_to_numpy(initializer(shape, dtype=dtype)).astype("float64")


def pinned():
    backend = keras.backend.backend()
    if backend not in PINNED:
        pytest.skip(f"no values pinned for backend {backend}")
    if backend == "jax" and os.environ.get("JAX_ENABLE_X64", "").lower() not in ("1", "true"):
        pytest.skip("the JAX values were pinned with JAX_ENABLE_X64=1")
    return PINNED[backend]


def assert_pinned(w, expected, dtype):
    total, absolute, first = expected
    if dtype == "float32":
        # float32 draws are bit-identical to the old code's.
        np.testing.assert_array_equal(w.reshape(-1)[:4], np.float32(first))
        rtol = 1e-12
    else:
        # float64: the limit is computed as sqrt(3·v/fan) instead of s·sqrt(c/fan), which
        # may differ in the last bit (JAX keeps it in float64); 1 ulp ≈ 1e-16.
        np.testing.assert_allclose(w.reshape(-1)[:4], first, rtol=1e-14, atol=1e-300)
        rtol = 1e-13
    np.testing.assert_allclose([w.sum(), np.abs(w).sum()], [total, absolute], rtol=rtol)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c[0]}{c[2]}{c[3]}" for c in CASES])
def test_same_seed_same_values_as_before(index):
    name, kwargs, shape, dtype = CASES[index]
    expected = pinned()[index]
    assert_pinned(draw(CLASSES[name](**kwargs), shape, dtype), expected, dtype)


def test_same_values_as_before_through_dense_and_conv():
    values = pinned()
    dense = keras.layers.Dense(4, kernel_initializer=FanInUniform(seed=1))
    dense.build((None, 6))
    conv = keras.layers.Conv2D(4, 3, kernel_initializer=NormalizedUniform(scale=0.3, seed=11))
    conv.build((None, 8, 8, 2))
    for layer, expected in ((dense, values[0]), (conv, values[4])):
        w = keras.ops.convert_to_numpy(layer.kernel).astype("float64")
        assert_pinned(w, expected, "float32")


@pytest.mark.parametrize(
    "cls, keras_kwargs",
    [
        (FanInUniform, lambda s: dict(scale=s**2 / 3, mode="fan_in")),
        (NormalizedUniform, lambda s: dict(scale=s**2, mode="fan_avg")),
    ],
)
@pytest.mark.parametrize("shape", [(6, 4), (3, 3, 2, 4), (5,), ()])
def test_is_keras_variance_scaling(cls, keras_kwargs, shape):
    ours = cls(scale=1.5, seed=3)
    assert isinstance(ours, keras.initializers.VarianceScaling)
    assert ours.scale == 1.5  # the book's s, as before; Keras' factor is variance_scale
    assert ours.variance_scale == pytest.approx(keras_kwargs(1.5)["scale"], rel=1e-15)
    theirs = keras.initializers.VarianceScaling(distribution="uniform", seed=3, **keras_kwargs(1.5))
    np.testing.assert_allclose(draw(ours, shape), draw(theirs, shape), rtol=1e-6)


def einsum_kernel(initializer):
    layer = keras.layers.EinsumDense("ab,bcd->acd", output_shape=(8, 32), kernel_initializer=initializer)
    layer.build((None, 32))
    return keras.ops.convert_to_numpy(layer.kernel).astype("float64")


def attention_kernels(initializer):
    layer = keras.layers.MultiHeadAttention(num_heads=8, key_dim=32, kernel_initializer=initializer)
    x = np.zeros((2, 3, 32), "float32")
    layer(x, x)
    dense = (layer.query_dense, layer.key_dense, layer.value_dense, layer.output_dense)
    return [keras.ops.convert_to_numpy(d.kernel).astype("float64") for d in dense]


# EinsumDense "ab,bcd->acd" on 32 features: kernel (32, 8, 32), fan-in 32 (the contracted
# axis b), fan-out 8·32 = 256. The conv-kernel rule would take fan-in 8·32 = 256 and
# fan-out 32·32 = 1024. MultiHeadAttention: query/key/value kernels are that same
# einsum; the output kernel (8, 32, 32) contracts heads × key_dim, fan-in 256, fan-out 32.
EINSUM_FANS = (32, 256)
OUTPUT_FANS = (256, 32)


def bound(cls, fans, scale=1.0):
    m, n = fans
    return scale * (math.sqrt(1 / m) if cls is FanInUniform else math.sqrt(6 / (m + n)))


@PER_AXIS_FANS
@pytest.mark.parametrize("cls", [FanInUniform, NormalizedUniform])
def test_einsum_dense_gets_per_axis_fans(cls):
    w = einsum_kernel(cls(scale=0.8, seed=0))
    assert w.shape == (32, 8, 32)
    limit = bound(cls, EINSUM_FANS, 0.8)
    # 8192 uniform draws on [-L, L]: max|W| > L(1 - 1e-3) but with probability 0.999^8192
    # ≈ 3e-4; the conv rule's bound is at most 0.51·L, far below.
    assert limit * (1 - 1e-3) < np.abs(w).max() <= limit * (1 + 2**-23)
    assert bound(cls, (256, 1024), 0.8) < 0.51 * limit
    # Exactly what Keras' own VarianceScaling draws in that layer.
    keras_kwargs = dict(scale=0.64 / 3, mode="fan_in") if cls is FanInUniform else dict(scale=0.64, mode="fan_avg")
    theirs = einsum_kernel(keras.initializers.VarianceScaling(distribution="uniform", seed=0, **keras_kwargs))
    np.testing.assert_allclose(w, theirs, rtol=1e-6)


@PER_AXIS_FANS
@pytest.mark.parametrize("cls", [FanInUniform, NormalizedUniform])
def test_multi_head_attention_gets_per_axis_fans(cls):
    *qkv, output = attention_kernels(cls(seed=1))
    for w in qkv:
        assert w.shape == (32, 8, 32)
        limit = bound(cls, EINSUM_FANS)
        assert limit * (1 - 1e-3) < np.abs(w).max() <= limit * (1 + 2**-23)
    assert output.shape == (8, 32, 32)
    limit = bound(cls, OUTPUT_FANS)
    assert limit * (1 - 1e-3) < np.abs(output).max() <= limit * (1 + 2**-23)


@PER_AXIS_FANS
@pytest.mark.parametrize("cls", [FanInUniform, NormalizedUniform])
def test_einsum_clone_config_round_trips_and_user_config_is_unchanged(cls):
    initializer = cls(scale=2.0, seed=4)
    layer = keras.layers.EinsumDense("ab,bcd->acd", output_shape=(8, 32), kernel_initializer=initializer)
    layer.build((None, 32))
    # The layer keeps (and serializes) the user's initializer, config {"scale", "seed"}.
    assert layer.get_config()["kernel_initializer"]["config"] == {"scale": 2.0, "seed": 4}
    assert initializer.input_axes is None and initializer.output_axes is None
    # Keras' clone (what EinsumDense builds with) carries the axes and round-trips them.
    clone = cls.from_config({**initializer.get_config(), "input_axes": [0], "output_axes": [1, 2]})
    assert clone.get_config() == {"scale": 2.0, "seed": 4, "input_axes": [0], "output_axes": [1, 2]}
    again = keras.initializers.deserialize(keras.initializers.serialize(clone))
    assert (again.input_axes, again.output_axes) == ([0], [1, 2])
    np.testing.assert_array_equal(draw(again, (32, 8, 32)), draw(clone, (32, 8, 32)))
    np.testing.assert_array_equal(draw(clone, (32, 8, 32)), keras.ops.convert_to_numpy(layer.kernel))


def test_unseeded_attention_sublayers_differ():
    # MultiHeadAttention clones an unseeded initializer per sublayer from its config
    # (seed None), so each clone draws its own seed: query and key kernels differ.
    query, key, *_ = attention_kernels(FanInUniform())
    assert not np.array_equal(query, key)


def test_scaled_in_einsum_gets_keras_default_fans():
    # Documented limitation: Scaled is no VarianceScaling, so the wrapped one sees the
    # conv-kernel rule (fan-in 256) in an EinsumDense.
    w = einsum_kernel(Scaled(FanInUniform(seed=0), 1.0))
    assert np.abs(w).max() <= bound(FanInUniform, (256, 1024)) * (1 + 2**-23)
