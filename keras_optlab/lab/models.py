"""The one digits MLP builder of keras_optlab.

The race (:func:`~keras_optlab.lab.racing.build_mlp`), the initialization search
(:mod:`keras_optlab.lab.init_search`), the examples and the tests all build their
multilayer perceptrons on digits (64 features, 10 classes) here; they differ only in
widths, activation, output and how the kernels start.
"""

import keras

from keras_optlab import _checks


def _kernel_factory(kernel_initializer, seed):
    """Layer index → kernel initializer (see :func:`digits_mlp`)."""
    if kernel_initializer is None:
        return lambda i: keras.initializers.GlorotUniform(seed=seed + i)
    if isinstance(kernel_initializer, (str, dict, keras.initializers.Initializer)):
        return lambda i: kernel_initializer
    if callable(kernel_initializer):
        return kernel_initializer
    raise TypeError(
        "`kernel_initializer` must be None, an initializer (instance, name or config) or a "
        f"function of the layer index. Received: kernel_initializer={kernel_initializer!r}"
    )


def digits_mlp(
    hidden_units=(64,),
    activation="relu",
    *,
    seed=0,
    kernel_initializer=None,
    output_activation="softmax",
    input_dim=64,
    num_classes=10,
    name="mlp",
):
    """An uncompiled ``keras.Sequential`` MLP: ``input_dim`` → ``hidden_units`` → ``num_classes``.

    Layers are named ``hidden_0``, ``hidden_1``, ... and ``output``; biases start at zero.

    Args:
        hidden_units: Widths of the hidden layers (a sequence of positive ints; empty:
            a linear model of the inputs).
        activation: Activation of the hidden layers ("relu", "tanh", ...).
        seed: Int; seeds the default kernels (below).
        kernel_initializer: How the kernel of layer ``i`` starts (``i = 0, 1, ...``;
            the output layer is the last, ``i = len(hidden_units)``):

            * ``None`` (default): ``keras.initializers.GlorotUniform(seed=seed + i)`` —
              Keras' default scheme, one seeded draw per layer (the draws
              ``keras_optlab.tuning.InitSearch(seed=seed)`` rescales);
            * an initializer instance, name or config: the same for every layer, as when
              Keras is handed one object for several layers (an instance with an int
              seed draws the same values for layers of the same shape; a name gives
              each layer a fresh unseeded initializer, drawn from Keras' global seed —
              ``keras.utils.set_random_seed`` first);
            * a function ``i -> initializer``.
        output_activation: "softmax" (probabilities; the default), or ``None`` for
            logits (use a loss with ``from_logits=True``).
        input_dim, num_classes: Positive ints (digits: 64 and 10).
        name: The model's name.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: a width, ``input_dim`` or ``num_classes`` below 1.
    """
    if isinstance(hidden_units, (str, bytes)) or not hasattr(hidden_units, "__iter__"):
        raise TypeError(f"`hidden_units` must be a sequence of positive ints. Received: hidden_units={hidden_units!r}")
    hidden_units = [_checks.integer("hidden_units", units, low=1) for units in hidden_units]
    seed = _checks.integer("seed", seed)
    input_dim = _checks.integer("input_dim", input_dim, low=1)
    num_classes = _checks.integer("num_classes", num_classes, low=1)
    kernel = _kernel_factory(kernel_initializer, seed)
    layers = [keras.Input((input_dim,))]
    for i, units in enumerate(hidden_units):
        layers.append(keras.layers.Dense(units, activation=activation, kernel_initializer=kernel(i), name=f"hidden_{i}"))
    layers.append(
        keras.layers.Dense(num_classes, activation=output_activation, kernel_initializer=kernel(len(hidden_units)),
                           name="output")
    )
    return keras.Sequential(layers, name=name)
