"""Sparse initialization: exactly k non-zero incoming weights per unit (Martens 2010).

Goodfellow, Bengio & Courville (2016), Sec. 8.4: "each unit is initialized to have
exactly k non-zero weights. The idea is to keep the total amount of input to the unit
independent of the number of inputs m without making the magnitude of individual weight
elements shrink with m", which also makes units more diverse at initialization; the
price is a strong prior on the weights that got large values.

PyTorch's `torch.nn.init.sparse_` zeroes a *fraction* of each column; this scheme fixes
the count k, as the book and Martens do.

References:
    Goodfellow, Bengio & Courville, *Deep Learning*, MIT Press 2016, Sec. 8.4.
    Martens, "Deep learning via Hessian-free optimization", ICML 2010, Sec. 5.
"""

import keras
from keras import ops

from keras_optlab import _checks
from keras_optlab.initializers import _common


class _Seeded(keras.initializers.Initializer):
    """Keras' seed handling through public API: a `RandomNormal`'s.

    `keras.initializers.RandomNormal` is a `RandomInitializer` (private base class):
    `None` becomes one random int at construction (so an unseeded instance returns the
    same values on every call), a serialized `SeedGenerator` dict is deserialized, and
    `get_config()["seed"]` serializes the seed as given. Asking one for its resolved
    seed, rather than restating that logic, keeps it Keras'.
    """

    def __init__(self, seed=None):
        self._keras_seeded = keras.initializers.RandomNormal(seed=_common.seed(seed))
        self.seed = self._keras_seeded.seed

    def get_config(self):
        return {"seed": self._keras_seeded.get_config()["seed"]}


@keras.saving.register_keras_serializable(package="keras_optlab")
class SparseK(_Seeded):
    """Every output unit gets exactly min(k, m) non-zero incoming weights.

    The last axis indexes the output units; all other axes are its inputs, so
    m = prod(shape[:-1]): Dense `(in, out)`, Conv `(..., in, out)` (receptive field ×
    input channels, Keras' fan-in) and recurrent kernels `(in, gates·units)` (each gate
    column is a unit). Positions are uniform without replacement, independently per
    unit (the ranks of i.i.d. uniform noise down each column). When k ≥ m the kernel is
    dense.

    Values: `scale · N(0, 1)`, exactly. Martens (2010) draws the non-zero weights from a
    unit Gaussian with k = 15 — the point of the scheme is that individual weights do
    *not* shrink with m — so the defaults reproduce his choice and `scale` is the one
    knob; for inputs with second moment E[x²] the pre-activation variance is
    k · scale² · E[x²], independent of m. A Gaussian draw of exactly 0.0 (rare, but
    possible in floating point) would silently lose a non-zero, so such a draw is
    replaced by the smallest positive normal float times `scale`.

    Args:
        k: positive integer, non-zeros per unit (Martens: 15).
        scale: positive finite number, multiplies the unit-Gaussian values.
        {seed}

    Raises:
        TypeError: k not an integer, scale not a number, seed not a seed.
        ValueError: k < 1, scale ≤ 0 or not finite, a shape of rank < 2 (no units to
            make sparse), or a `dtype` that is not floating point.
    """

    def __init__(self, k=15, scale=1.0, seed=None):
        self.k = _checks.integer("k", k, low=1)
        self.scale = _checks.positive("scale", scale)
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        dtype = _common.float_dtype(dtype)
        shape = _common.shape(shape)
        if len(shape) < 2:
            raise ValueError(
                "SparseK needs a kernel of rank >= 2 (inputs..., units): a shape of "
                f"rank {len(shape)} has no units to make sparse. Received: shape={shape}"
            )
        # m = Keras' fan-in, prod(shape[:-1]) for rank >= 2 (Dense, Conv, recurrent).
        m, n = _common.fans(shape)[0], shape[-1]
        k = min(self.k, m)
        # Two independent streams from one seed: an int seed restarts its own generator
        # on every call (same seed -> same kernel), a SeedGenerator advances.
        seed = self.seed
        if isinstance(seed, int):
            seed = keras.random.SeedGenerator(seed)
        noise = keras.random.uniform((m, n), seed=seed)
        # rank of each entry in its column; ranks are a permutation even with ties.
        rank = ops.argsort(ops.argsort(noise, axis=0), axis=0)
        keep = ops.less(rank, k)
        values = keras.random.normal((m, n), dtype=dtype, seed=seed)
        tiny = 2.0**-14 if dtype == "float16" else 2.0**-126  # smallest normal
        values = ops.where(ops.equal(values, 0), ops.cast(tiny, dtype), values)
        values = ops.multiply(values, ops.cast(self.scale, dtype))
        kernel = ops.where(keep, values, ops.zeros_like(values))
        return ops.reshape(kernel, shape)

    def get_config(self):
        return {"k": self.k, "scale": self.scale, **super().get_config()}


SparseK.__doc__ = SparseK.__doc__.replace("{seed}", _common.SEED_DOC)
