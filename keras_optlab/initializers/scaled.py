"""Dense weight-scale heuristics: the 1/√m and normalized ranges, and `Scaled`.

Goodfellow, Bengio & Courville (2016), Sec. 8.4: a fully connected layer with m inputs
and n outputs may draw W_ij ~ U(−√(1/m), √(1/m)), or use the *normalized
initialization* of Glorot & Bengio (2010), W_ij ~ U(−√(6/(m+n)), √(6/(m+n))), a
compromise between equal activation variance and equal gradient variance across layers,
derived for a chain of matrix multiplications without non-linearities.

This module also holds what every random scheme of `keras_optlab.initializers` shares:
Keras' fan rule (`_fans`) and Keras' seed handling (`_SeededInitializer`).

References:
    Goodfellow, Bengio & Courville, *Deep Learning*, MIT Press 2016, Sec. 8.4.
    Glorot & Bengio, "Understanding the difficulty of training deep feedforward
    neural networks", AISTATS 2010.
"""

import math
import random as python_random

import keras
from keras import ops

_SEED_DOC = """seed: `None`, a Python int or a `keras.random.SeedGenerator`, exactly as in
            Keras' own initializers: an int (or `None`, which draws one int at
            construction) gives the same values on every call; a `SeedGenerator`
            gives new values on every call."""


def _fans(shape):
    """(fan_in, fan_out) by Keras' rule (keras.initializers' `compute_fans`).

    Scalar: (1, 1); vector (n,): (n, n); matrix (in, out): (in, out); a convolution
    kernel (..., in, out): receptive field × in and receptive field × out.
    Keras keeps its helper private, so the rule is restated here.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _check_scale(scale, name="scale"):
    """A positive, finite Python number, else `ValueError` naming the argument."""
    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float))
        or not math.isfinite(scale)
        or scale <= 0
    ):
        raise ValueError(f"`{name}` must be a positive finite number. Received: {name}={scale!r}")
    return float(scale)


class _SeededInitializer(keras.initializers.Initializer):
    """Seed handling of Keras' `RandomInitializer`, through public API only.

    `None` becomes a random int at construction (so an unseeded instance, like Keras',
    returns the same values on every call); a serialized `SeedGenerator` (a dict in a
    config) is deserialized; anything else is rejected.
    """

    def __init__(self, seed=None):
        self._init_seed = seed
        if seed is None:
            # Keras' make_default_seed(), which is private.
            seed = python_random.randint(1, int(1e9))
        elif isinstance(seed, dict):
            seed = keras.saving.deserialize_keras_object(seed)
        if isinstance(seed, bool) or not isinstance(seed, (int, keras.random.SeedGenerator)):
            raise ValueError(
                "`seed` must be None, an int or a keras.random.SeedGenerator. "
                f"Received: seed={seed!r}"
            )
        self.seed = seed

    def get_config(self):
        return {"seed": keras.saving.serialize_keras_object(self._init_seed)}


def _uniform(shape, limit, seed, dtype):
    return keras.random.uniform(shape, minval=-limit, maxval=limit, dtype=dtype, seed=seed)


@keras.saving.register_keras_serializable(package="keras_optlab")
class FanInUniform(_SeededInitializer):
    """W ~ U(−s·√(1/m), s·√(1/m)), m = fan-in (Goodfellow et al. 2016, Sec. 8.4).

    The first heuristic of the book's Sec. 8.4. Each unit's pre-activation then has
    variance s²/3 · Σ x_i² / m, i.e. it does not grow with the number of inputs.

    Args:
        scale: s > 0, multiplies the limit.
        {seed}

    Example:
        >>> layer = keras.layers.Dense(64, kernel_initializer=FanInUniform(seed=0))
    """

    def __init__(self, scale=1.0, seed=None):
        self.scale = _check_scale(scale)
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        fan_in, _ = _fans(shape)
        return _uniform(shape, self.scale * math.sqrt(1.0 / fan_in), self.seed, dtype)

    def get_config(self):
        return {"scale": self.scale, **super().get_config()}


@keras.saving.register_keras_serializable(package="keras_optlab")
class NormalizedUniform(_SeededInitializer):
    """W ~ U(−s·√(6/(m+n)), s·√(6/(m+n))): normalized init (Glorot & Bengio 2010).

    Goodfellow et al. (2016), Sec. 8.4. With s = 1 it equals
    `keras.initializers.GlorotUniform`; `scale` is what a hyperparameter search tunes.

    Args:
        scale: s > 0, multiplies the limit.
        {seed}
    """

    def __init__(self, scale=1.0, seed=None):
        self.scale = _check_scale(scale)
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = _fans(shape)
        limit = self.scale * math.sqrt(6.0 / (fan_in + fan_out))
        return _uniform(shape, limit, self.seed, dtype)

    def get_config(self):
        return {"scale": self.scale, **super().get_config()}


@keras.saving.register_keras_serializable(package="keras_optlab")
class Scaled(keras.initializers.Initializer):
    """Any initializer times a constant: `scale · initializer(shape)`.

    Goodfellow et al. (2016), Sec. 8.4, recommend treating each layer's initial scale as
    a hyperparameter; this wrapper is that knob for any Keras initializer.

    Args:
        initializer: an initializer instance, name or serialized dict.
        scale: positive multiplier.
    """

    def __init__(self, initializer, scale):
        self.initializer = keras.initializers.get(initializer)
        if self.initializer is None:
            raise ValueError(
                f"`initializer` must name an initializer. Received: initializer={initializer!r}"
            )
        self.scale = _check_scale(scale)

    def __call__(self, shape, dtype=None):
        return ops.multiply(self.initializer(shape, dtype=dtype), self.scale)

    def get_config(self):
        return {"initializer": keras.initializers.serialize(self.initializer), "scale": self.scale}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["initializer"] = keras.initializers.deserialize(config["initializer"])
        return cls(**config)


for _cls in (FanInUniform, NormalizedUniform):
    _cls.__doc__ = _cls.__doc__.replace("{seed}", _SEED_DOC)
