"""Data-driven choice of initial scales: watch one minibatch, rescale layer by layer.

Goodfellow, Bengio & Courville (2016), Sec. 8.4, give a manual procedure for choosing the
initial weight ranges: look at the magnitude or standard deviation of activations (and
gradients) on a single minibatch; if the weights are too small the activations shrink
as they propagate forward, so repeatedly find the first layer with unacceptably small
activations and increase its weights, until every layer's initial activations are
reasonable. `activation_report` is the "look" and `calibrate` automates the loop, in the
manner of LSUV (Mishkin & Matas 2016): first layer to last, rescale each Dense/Conv
kernel until that layer's linear output has the target standard deviation.

References:
    Goodfellow, Bengio & Courville, *Deep Learning*, MIT Press 2016, Sec. 8.4.
    Mishkin & Matas, "All you need is a good init", ICLR 2016.
"""

import keras
from keras import ops

from keras_optlab import _checks

#: Layers whose kernel `calibrate` rescales (public Keras classes with `kernel` and
#: `activation`).
CALIBRATED_LAYERS = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
)


class Report:
    """Rows of per-layer statistics: prints as a table, indexes as data.

    `report.rows` is a list of dicts (one per layer, keys = `report.columns`);
    `report["dense_1"]` is the row of that layer, `report[0]` the first row.
    """

    def __init__(self, title, columns, rows):
        self.title = title
        self.columns = list(columns)
        self.rows = list(rows)

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, key):
        if isinstance(key, str):
            for row in self.rows:
                if row["layer"] == key:
                    return row
            raise KeyError(f"no layer named {key!r} in this report")
        return self.rows[key]

    def __str__(self):
        def cell(value):
            if isinstance(value, float):
                return f"{value:.4g}"
            return str(value)

        table = [self.columns] + [[cell(row[c]) for c in self.columns] for row in self.rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(self.columns))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join([self.title, *lines])

    __repr__ = __str__


def _built(model, x):
    if not model.built:
        model(x)
    return model


def _input(model):
    """The model's symbolic input in the structure it is called with."""
    if isinstance(model, keras.Sequential):  # Sequential.input is the node's, unset
        return model.inputs[0]
    return model.input


def _values(model, tensors, x):
    """Evaluate symbolic tensors of `model`'s graph on `x` (a sub-model, public API)."""
    return keras.Model(_input(model), tensors)(x, training=False)


def _reported_layers(model):
    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            output = layer.output
        except (AttributeError, ValueError):  # never called, or shared by several calls
            continue
        if isinstance(output, keras.KerasTensor):
            layers.append(layer)
    return layers


def _stats(value):
    value = ops.convert_to_numpy(value).astype("float64")
    return float(value.mean()), float(value.std())


def activation_report(model, x, y=None):
    """Mean and std of every layer's output on the batch `x`, and of its gradient.

    With `y`, the gradient of the model's compiled loss (`model.compute_loss`, the mean
    over the batch plus regularization) with respect to each layer's output is also
    summarized — the second thing the book's Sec. 8.4 says to watch when learning is
    still slow. Gradients use `tf.GradientTape`, so they need the TensorFlow backend.

    Args:
        model: a built Sequential or Functional model (an unbuilt one is called on `x`).
        x: one minibatch of inputs.
        y: its targets, optional; needs `model.compile(loss=...)`.

    Returns:
        `Report` with columns layer, type, mean, std (and grad_mean, grad_std).
    """
    model = _built(model, x)
    layers = _reported_layers(model)
    outputs = [layer.output for layer in layers]
    columns = ["layer", "type", "mean", "std"]
    if y is None:
        values = _values(model, outputs, x)
        grads = None
    else:
        values, grads = _values_and_gradients(model, outputs, x, y)
        columns += ["grad_mean", "grad_std"]
    rows = []
    for i, layer in enumerate(layers):
        mean, std = _stats(values[i])
        row = {"layer": layer.name, "type": type(layer).__name__, "mean": mean, "std": std}
        if grads is not None:
            row["grad_mean"], row["grad_std"] = _stats(grads[i])
        rows.append(row)
    title = f"activation report: {model.name}"
    return Report(title, columns, rows)


def _values_and_gradients(model, outputs, x, y):
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "activation_report(..., y=...) takes gradients with tf.GradientTape and needs "
            f"the TensorFlow backend. Received: backend={keras.backend.backend()!r}"
        )
    if not getattr(model, "compiled", False) or model.loss is None:
        raise ValueError(
            "activation_report(..., y=...) uses the model's compiled loss: call "
            f"model.compile(loss=...) first. Received: model {model.name!r} without a loss"
        )
    import tensorflow as tf

    predictions = list(model.outputs)
    probe = keras.Model(_input(model), outputs + predictions)
    x_tensor = tf.nest.map_structure(tf.convert_to_tensor, x)
    with tf.GradientTape() as tape:
        # Watching the input puts every intermediate on the tape, even a layer that has
        # no trainable variable upstream.
        tape.watch(tf.nest.flatten(x_tensor))
        values = probe(x_tensor, training=False)
        y_pred = values[len(outputs):]
        y_pred = y_pred[0] if len(y_pred) == 1 else y_pred
        loss = model.compute_loss(x=x_tensor, y=y, y_pred=y_pred, training=False)
    grads = tape.gradient(loss, values[: len(outputs)])
    grads = [ops.zeros_like(v) if g is None else g for v, g in zip(values, grads)]
    return values[: len(outputs)], grads


def _linear_output(layer, layer_input):
    """The layer's output with its fused activation removed (kernel · input + bias)."""
    activation = layer.activation
    layer.activation = keras.activations.linear
    try:
        return layer(layer_input, training=False)
    finally:
        layer.activation = activation


def calibrate(model, x, target_std=1.0, tolerance=0.1, max_iterations=10):
    """Rescale Dense/Conv kernels, first to last, until each linear output has `target_std`.

    For each layer in `CALIBRATED_LAYERS`, in model order: compute its input on `x`
    (through the already calibrated layers before it), then its linear output z (before
    the fused activation, if any); while |std(z)/target_std − 1| > tolerance, multiply
    the kernel by target_std/std(z) (std over every entry of z). Without a bias one step
    is exact; the bias, which is not rescaled, is why the loop repeats. This is the
    procedure of Goodfellow et al. (2016), Sec. 8.4 — raise the weights of the first
    layer whose activations are too small, then the next — with the LSUV update rule
    (Mishkin & Matas 2016). Layers whose std cannot reach the target within
    `max_iterations` (e.g. a large bias) are reported with `converged=False`. Only the
    model's own layers are visited: layers inside a nested model are left as they are.

    Args:
        model: a built Sequential or Functional model (an unbuilt one is called on `x`).
        x: one minibatch of inputs.
        target_std: positive, the wanted std of each linear output.
        tolerance: positive, allowed relative deviation from `target_std`.
        max_iterations: positive int, rescaling steps per layer.

    Returns:
        `Report` with, per calibrated layer: initial_std, final_std, scale (the total
        factor applied to the kernel), iterations and converged.

    Raises:
        TypeError: an argument of the wrong type (`max_iterations=2.5`).
        ValueError: an argument out of range, or a layer whose linear output is
            constant on `x` (no rescaling of its kernel can change its std).
    """
    target_std = _checks.positive("target_std", target_std)
    tolerance = _checks.positive("tolerance", tolerance)
    max_iterations = _checks.integer("max_iterations", max_iterations, low=1)
    model = _built(model, x)
    rows = []
    for layer in _reported_layers(model):
        if not isinstance(layer, CALIBRATED_LAYERS):
            continue
        layer_input = _values(model, layer.input, x)
        std = initial = _stats(_linear_output(layer, layer_input))[1]
        scale, iterations = 1.0, 0
        while abs(std / target_std - 1.0) > tolerance and iterations < max_iterations:
            if std == 0.0:
                raise ValueError(
                    f"Layer {layer.name!r} has a constant linear output on `x` (std 0): "
                    "rescaling its kernel cannot change that. Received: a zero kernel or "
                    "zero inputs"
                )
            factor = target_std / std
            layer.kernel.assign(ops.multiply(layer.kernel, ops.cast(factor, layer.kernel.dtype)))
            scale *= factor
            iterations += 1
            std = _stats(_linear_output(layer, layer_input))[1]
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "initial_std": initial,
                "final_std": std,
                "scale": scale,
                "iterations": iterations,
                "converged": bool(abs(std / target_std - 1.0) <= tolerance),
            }
        )
    columns = ["layer", "type", "initial_std", "final_std", "scale", "iterations", "converged"]
    title = f"calibrate: {model.name}, target std {target_std:g} ± {tolerance:g} (relative)"
    return Report(title, columns, rows)
