"""Dense weight-scale heuristics: the 1/√m and normalized ranges, and `Scaled`.

Goodfellow, Bengio & Courville (2016), Sec. 8.4: a fully connected layer with m inputs
and n outputs may draw W_ij ~ U(−√(1/m), √(1/m)), or use the *normalized
initialization* of Glorot & Bengio (2010), W_ij ~ U(−√(6/(m+n)), √(6/(m+n))), a
compromise between equal activation variance and equal gradient variance across layers,
derived for a chain of matrix multiplications without non-linearities.

Both ranges are instances of Keras' `VarianceScaling` with a uniform distribution
(limit √(3·v/fan)): U(±s·√(1/m)) is v = s²/3 with `mode="fan_in"`, U(±s·√(6/(m+n))) is
v = s² with `mode="fan_avg"`. The two classes here are `VarianceScaling` subclasses, so
Keras computes the fans — including the per-axis fans `EinsumDense` (and so
`MultiHeadAttention`) hands only to `VarianceScaling` initializers.

References:
    Goodfellow, Bengio & Courville, *Deep Learning*, MIT Press 2016, Sec. 8.4.
    Glorot & Bengio, "Understanding the difficulty of training deep feedforward
    neural networks", AISTATS 2010.
"""

import keras
from keras import ops

from keras_optlab import _checks
from keras_optlab.initializers import _common


class _UniformScaling(keras.initializers.VarianceScaling):
    """U(±s·√(c/fan)) as a `keras.initializers.VarianceScaling`, `scale` meaning s.

    Subclasses set `_mode` (Keras' fan mode) and `_variance` (Keras' `scale` for s = 1).

    `self.scale` stays the book's s — the constructor argument, the config entry and what
    callers read — while Keras' `VarianceScaling.__call__` reads `self.scale` as the
    variance factor v. So `__call__` hands the draw to a plain `VarianceScaling` with v
    (`variance_scale`), this instance's resolved seed and its fan axes: the fan rule, the
    seed use and the uniform draw are Keras'.

    `EinsumDense` clones a `VarianceScaling` kernel initializer through
    `from_config({**get_config(), "seed": ..., "input_axes": ..., "output_axes": ...})`;
    `from_config` takes those axes (the constructor keeps its two arguments) and
    `get_config` returns them only once set, so the config of a user's instance is
    `{"scale", "seed"}` as before.
    """

    _mode = None
    _variance = None

    def __init__(self, scale=1.0, seed=None):
        scale = _checks.positive("scale", scale)
        super().__init__(
            scale=self._variance * scale**2,
            mode=self._mode,
            distribution="uniform",
            seed=_common.seed(seed),
        )
        self.scale = scale
        # Keras' per-axis fans (`EinsumDense`) arrived with Keras 3.15; before it the
        # attributes do not exist and no layer sets them.
        self.input_axes = self.output_axes = None

    @property
    def variance_scale(self):
        """Keras' `VarianceScaling(scale=...)` for this s: the variance is this / fan."""
        return self._variance * self.scale**2

    def __call__(self, shape, dtype=None):
        shape, dtype = _common.shape(shape), _common.float_dtype(dtype)
        # The axes only when set: a Keras before 3.15 takes no such arguments.
        axes = {} if self.input_axes is None and self.output_axes is None else {
            "input_axes": self.input_axes, "output_axes": self.output_axes}
        keras_initializer = keras.initializers.VarianceScaling(
            scale=self.variance_scale, mode=self.mode, distribution=self.distribution, seed=self.seed, **axes
        )
        return keras_initializer(shape, dtype=dtype)

    def get_config(self):
        config = {"scale": self.scale, "seed": super().get_config()["seed"]}
        if self.input_axes is not None or self.output_axes is not None:
            config.update(input_axes=self.input_axes, output_axes=self.output_axes)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        input_axes = config.pop("input_axes", None)
        output_axes = config.pop("output_axes", None)
        instance = cls(**config)
        instance.input_axes = _common.axes("input_axes", input_axes)
        instance.output_axes = _common.axes("output_axes", output_axes)
        return instance


@keras.saving.register_keras_serializable(package="keras_optlab")
class FanInUniform(_UniformScaling):
    """W ~ U(−s·√(1/m), s·√(1/m)), m = fan-in (Goodfellow et al. 2016, Sec. 8.4).

    The first heuristic of the book's Sec. 8.4. Each unit's pre-activation then has
    variance s²/3 · Σ x_i² / m, i.e. it does not grow with the number of inputs.

    It is `keras.initializers.VarianceScaling(scale=s²/3, mode="fan_in",
    distribution="uniform")`, so m is Keras' fan-in: the input size of a Dense kernel,
    receptive field × input channels of a convolution, the contracted axes of an
    `EinsumDense` or `MultiHeadAttention` kernel.

    Args:
        scale: s > 0, multiplies the limit.
        {seed}

    Example:
        >>> layer = keras.layers.Dense(64, kernel_initializer=FanInUniform(seed=0))
    """

    _mode = "fan_in"
    _variance = 1.0 / 3.0


@keras.saving.register_keras_serializable(package="keras_optlab")
class NormalizedUniform(_UniformScaling):
    """W ~ U(−s·√(6/(m+n)), s·√(6/(m+n))): normalized init (Glorot & Bengio 2010).

    Goodfellow et al. (2016), Sec. 8.4. With s = 1 it equals
    `keras.initializers.GlorotUniform`; `scale` is what a hyperparameter search tunes.
    It is `keras.initializers.VarianceScaling(scale=s², mode="fan_avg",
    distribution="uniform")`, so m and n are Keras' fans (per axis in `EinsumDense`).

    Args:
        scale: s > 0, multiplies the limit.
        {seed}
    """

    _mode = "fan_avg"
    _variance = 1.0


@keras.saving.register_keras_serializable(package="keras_optlab")
class Scaled(keras.initializers.Initializer):
    """Any initializer times a constant: `scale · initializer(shape)`.

    Goodfellow et al. (2016), Sec. 8.4, recommend treating each layer's initial scale as
    a hyperparameter; this wrapper is that knob for any Keras initializer.

    `Scaled` computes no fans: the wrapped initializer does. It is not itself a
    `VarianceScaling`, so inside an `EinsumDense` or `MultiHeadAttention` the wrapped
    initializer gets Keras' default fans, not the layer's per-axis ones; there,
    `FanInUniform(scale=c·s)` or `NormalizedUniform(scale=c·s)` scale correctly.

    Args:
        initializer: a `keras.initializers.Initializer` instance or class, its name, or
            its serialized dict.
        scale: positive finite multiplier.

    Raises:
        TypeError: `initializer` is not one of those (a layer, a number, `None`), or
            `scale` is not a number.
        ValueError: an unknown initializer name or dict, or `scale` ≤ 0 or not finite;
            at a call, a `dtype` that is not floating point or a bad `shape`.
    """

    def __init__(self, initializer, scale):
        self.initializer = _initializer(initializer)
        self.scale = _checks.positive("scale", scale)

    def __call__(self, shape, dtype=None):
        # A scaled integer weight would be truncated (or come back float): refused.
        shape, dtype = _common.shape(shape), _common.float_dtype(dtype)
        return ops.multiply(self.initializer(shape, dtype=dtype), ops.cast(self.scale, dtype))

    def get_config(self):
        return {"initializer": keras.initializers.serialize(self.initializer), "scale": self.scale}

    @classmethod
    def from_config(cls, config):
        # `initializer` is a serialized dict here, which the constructor's check resolves
        # (and refuses, naming `initializer`, when it is not an initializer's).
        return cls(**config)


def _initializer(identifier):
    """`identifier` resolved by `keras.initializers.get`, which must give an `Initializer`."""
    kind = "an initializer instance or class, its name or its serialized dict"
    is_class = isinstance(identifier, type) and issubclass(identifier, keras.initializers.Initializer)
    if not (isinstance(identifier, (str, dict, keras.initializers.Initializer)) or is_class):
        raise TypeError(f"`initializer` must be {kind}. Received: initializer={identifier!r}")
    try:
        initializer = keras.initializers.get(identifier)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`initializer` names no initializer Keras knows ({error}). "
            f"Received: initializer={identifier!r}"
        ) from None
    if not isinstance(initializer, keras.initializers.Initializer):
        raise TypeError(
            f"`initializer` must resolve to a keras.initializers.Initializer, not "
            f"{type(initializer).__name__}. Received: initializer={identifier!r}"
        )
    return initializer


for _cls in (FanInUniform, NormalizedUniform):
    _cls.__doc__ = _cls.__doc__.replace("{seed}", _common.SEED_DOC)
