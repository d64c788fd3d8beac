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
import numpy as np
from keras import ops

from keras_optlab import _batches, _checks, _keras_hooks
from keras_optlab.curvature.autodiff import for_backend

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
            if value is None:
                return "missing"
            if isinstance(value, float):
                return f"{value:.4g}"
            return str(value)

        table = [self.columns] + [[cell(row[c]) for c in self.columns] for row in self.rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(self.columns))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join([self.title, *lines])

    __repr__ = __str__


def _describe(model):
    return f"{type(model).__name__}(name={model.name!r})"


def _graph_model(model, x):
    """A Sequential or Functional ``model`` with its graph (an unbuilt Sequential is called
    on ``x``), ``x`` checked against its inputs. Subclassed models are refused: the layers'
    inputs, which calibration needs, are read from the graph."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model (Sequential or Functional). Received: model={model!r}")
    n = _batches.batch("x", x)
    if not model.built and isinstance(model, keras.Sequential):
        model(x)
    try:
        inputs = _batches.model_inputs(model)
        model.outputs  # noqa: B018 - raises AttributeError on a subclassed model
    except (AttributeError, ValueError):
        raise ValueError(
            "`model` must be a Sequential or Functional model: each layer's input is read from "
            "its graph, which a subclassed model does not have (rebuild it with the Functional "
            f"API). Received: model={_describe(model)}, a subclassed keras.Model"
        ) from None
    _batches.match_inputs("x", model, x, inputs)
    return model, n


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


def _finite_stats(value, what, layer, model):
    """Mean and std of ``value``, refusing NaN/inf: no statistic of a failed computation."""
    value = ops.convert_to_numpy(value).astype("float64")
    nan, inf = int(np.isnan(value).sum()), int(np.isinf(value).sum())
    if nan or inf:
        raise ValueError(
            f"Layer {layer.name!r} gives a non-finite {what} on the finite `x` ({nan} NaN and {inf} "
            "infinite values): the weights of `model` hold NaN/inf, or its values overflow. "
            f"Received: model={_describe(model)}"
        )
    return float(value.mean()), float(value.std())


def activation_report(model, x, y=None):
    """Mean and std of every layer's output on the batch `x`, and of its gradient.

    With `y`, the gradient of the model's compiled loss (`model.compute_loss`, the mean
    over the batch plus regularization) with respect to each layer's output is also
    summarized — the second thing the book's Sec. 8.4 says to watch when learning is
    still slow. Gradients run on TensorFlow, JAX and PyTorch
    (:mod:`keras_optlab.curvature.autodiff`).

    The loss is taken as a function of the model's *outputs as returned*: for a softmax
    or sigmoid output, Keras' cross-entropies would otherwise read the logits hidden on
    that tensor and bypass it, and its gradient would not exist. So the last row's
    gradient is dL/dp for the probabilities p (for the cross-entropy, −1/(N·p) at the
    true class), the loss Keras computes from p (with its clipping epsilon); the rows
    before it are the same as training's up to that epsilon. A layer the loss does not
    depend on (behind a `stop_gradient`, or an output the loss ignores) has no gradient:
    its grad_mean and grad_std are None, printed as "missing" — never zeros.

    Args:
        model: a built Sequential or Functional model (an unbuilt Sequential is called
            on `x`); a subclassed model is refused (its layers' outputs are not in a graph).
        x: one minibatch of inputs: at least one sample, finite, matching the model's input.
        y: its targets, optional, as many samples as `x`, finite; needs
            `model.compile(loss=...)`.

    Returns:
        `Report` with columns layer, type, mean, std (and grad_mean, grad_std).

    Raises:
        TypeError: `model` not a keras.Model, `x` or `y` not arrays of numbers.
        ValueError: a subclassed `model`, an empty `x`, NaN/inf in `x` or `y`, `x` not
            matching the model's input, `y` of another length, a model without a
            compiled loss (with `y`), or a layer whose output or gradient is NaN/inf on
            `x` (no statistics of a failed computation are reported).
    """
    model, n = _graph_model(model, x)
    if y is not None:
        _batches.same_length("y", _batches.batch("y", y), "x", n)
    layers = _reported_layers(model)
    outputs = [layer.output for layer in layers]
    columns = ["layer", "type", "mean", "std"]
    if y is None:
        values = _values(model, outputs, x)
        grads = None
    else:
        values, grads = _values_and_gradients(model, layers, outputs, x, y)
        columns += ["grad_mean", "grad_std"]
    rows = []
    for i, layer in enumerate(layers):
        mean, std = _finite_stats(values[i], "output", layer, model)
        row = {"layer": layer.name, "type": type(layer).__name__, "mean": mean, "std": std}
        if grads is not None:
            if grads[i] is None:  # not on the loss's path: missing, not zero
                row["grad_mean"] = row["grad_std"] = None
            else:
                row["grad_mean"], row["grad_std"] = _finite_stats(grads[i], "gradient", layer, model)
        rows.append(row)
    title = f"activation report: {model.name}"
    return Report(title, columns, rows)


def _values_and_gradients(model, layers, outputs, x, y):
    autodiff = for_backend("keras_optlab.calibration.activation_report(..., y=...)")
    if not getattr(model, "compiled", False) or model.loss is None:
        raise ValueError(
            "activation_report(..., y=...) uses the model's compiled loss: call "
            f"model.compile(loss=...) first. Received: model {model.name!r} without a loss"
        )
    values = _values(model, outputs, x)

    def loss_of(offsets):
        # Each reported layer's output plus a zero offset: the loss's gradient with
        # respect to the offsets is its gradient with respect to the outputs. The
        # prediction is a fresh tensor too (Keras' TF backend attaches a softmax's or
        # sigmoid's logits to its output, and its cross-entropies read those, off the
        # output's path).
        with _keras_hooks.tapped(layers, offsets):
            y_pred = model(x, training=False)
        return model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)

    grads = autodiff.tensor_gradients(loss_of, [keras.ops.zeros_like(v) for v in values])
    return values, grads


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
        model: a built Sequential or Functional model with at least one layer of
            `CALIBRATED_LAYERS` (an unbuilt Sequential is called on `x`); a subclassed
            model is refused (the layers' inputs are read from the graph).
        x: one minibatch of inputs: at least one sample, finite, matching the model's input.
        target_std: positive, the wanted std of each linear output.
        tolerance: positive, allowed relative deviation from `target_std`.
        max_iterations: positive int, rescaling steps per layer.

    Returns:
        `Report` with, per calibrated layer: initial_std, final_std, scale (the total
        factor applied to the kernel), iterations and converged.

    Raises:
        TypeError: an argument of the wrong type (`max_iterations=2.5`, `model=42`).
        ValueError: an argument out of range; a subclassed `model` or one with nothing
            to calibrate; an empty `x`, NaN/inf in `x`, or `x` not matching the model's
            input; a layer whose linear output is constant on `x` (no rescaling of its
            kernel can change its std) or not finite (NaN weights, overflow). On such
            a layer error every kernel is restored to its value before the call.
    """
    target_std = _checks.positive("target_std", target_std)
    tolerance = _checks.positive("tolerance", tolerance)
    max_iterations = _checks.integer("max_iterations", max_iterations, low=1)
    model, _ = _graph_model(model, x)
    layers = [layer for layer in _reported_layers(model) if isinstance(layer, CALIBRATED_LAYERS)]
    if not layers:
        kinds = [type(layer).__name__ for layer in _reported_layers(model)]
        raise ValueError(
            "`model` has no Dense or Conv layer of its own to calibrate (layers inside a nested "
            f"model are not visited). Received: model={_describe(model)} with layers {kinds}"
        )
    # A failure half way (a layer that is constant or overflows) leaves the model as it was.
    originals = [ops.convert_to_numpy(layer.kernel) for layer in layers]
    try:
        rows = [_calibrate_layer(model, layer, x, target_std, tolerance, max_iterations) for layer in layers]
    except BaseException:
        for layer, kernel in zip(layers, originals):
            layer.kernel.assign(kernel)
        raise
    columns = ["layer", "type", "initial_std", "final_std", "scale", "iterations", "converged"]
    title = f"calibrate: {model.name}, target std {target_std:g} ± {tolerance:g} (relative)"
    return Report(title, columns, rows)


def _calibrate_layer(model, layer, x, target_std, tolerance, max_iterations):
    layer_input = _values(model, layer.input, x)
    std = initial = _finite_stats(_linear_output(layer, layer_input), "linear output", layer, model)[1]
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
        std = _finite_stats(_linear_output(layer, layer_input), "linear output", layer, model)[1]
    return {
        "layer": layer.name,
        "type": type(layer).__name__,
        "initial_std": initial,
        "final_std": std,
        "scale": scale,
        "iterations": iterations,
        "converged": bool(abs(std / target_std - 1.0) <= tolerance),
    }
