"""The curvature report of a saved model (``optlab curvature``): Sec. 8.2.1 in numbers.

For a ``.keras`` model and a batch, measures what Goodfellow et al. (2016), Sec. 8.2.1,
says decides whether a gradient step helps: gᵀg, gᵀHg, the critical learning rate
2gᵀg/gᵀHg, the top Hessian eigenvalues (and the step 2/λmax beyond which plain gradient
descent is unstable along the sharpest direction), and the actual change of the loss
J(θ − εg) − J(θ) against its second-order prediction ½ε²gᵀHg − εgᵀg (Eq. 8.10).
TensorFlow, JAX and PyTorch backends (the curvature module's).
"""

import numbers
import os

import numpy as np

from keras_optlab import _batches


def load_batch(path, x_key="x", y_key="y", batch_size=None):
    """``(x, y)`` from an ``.npz`` file, the first ``batch_size`` samples if given.

    Raises ``FileNotFoundError`` for a missing file, ``ValueError`` for a file that is
    not an ``.npz``, a missing key, empty arrays or ``x`` and ``y`` of different lengths.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`data` must be an existing .npz file. Received: data={path!r} (no such file)")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"`data` must be an .npz file of arrays. Received: data={path!r} ({error})") from error
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"`data` must be an .npz file of arrays, not a single .npy array. Received: data={path!r}")
    with data:
        for name, key in (("x_key", x_key), ("y_key", y_key)):
            if key not in data.files:
                raise ValueError(f"`{name}` must name an array of {path}, one of {sorted(data.files)}. "
                                 f"Received: {name}={key!r}")
        x, y = data[x_key], data[y_key]
    if batch_size is not None:
        x, y = x[:batch_size], y[:batch_size]
    check_batch(x, y)
    return x, y


def check_batch(x, y, model=None):
    """Refuse a batch the curvature report cannot use: empty, non-finite, ``x`` and ``y``
    of different lengths, or (given ``model``) arrays the model's inputs do not take."""
    n = _batches.batch("x", x)
    _batches.same_length("y", _batches.batch("y", y), "x", n)
    if model is not None:
        check_inputs(model, x)


def check_inputs(model, x):
    """Refuse inputs ``x`` that ``model``'s inputs do not take (count, shape after the batch axis).

    A :class:`keras_optlab.SecondOrder` declares no inputs of its own: it is checked
    against the model it wraps (its public ``model``). Another model without declared
    inputs (a subclassed one) is called on the first sample, and a failure of that call
    is the ``ValueError``.
    """
    from keras_optlab.second_order import SecondOrder

    inner = model
    while isinstance(inner, SecondOrder):
        inner = inner.model
    if hasattr(inner, "inputs"):
        _batches.match_inputs("x", inner, x)
        return
    import keras

    try:
        model(keras.tree.map_structure(lambda array: array[:1], x), training=False)
    except Exception as error:  # whatever the model's own call raises on inputs it does not take
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(f"`x` must be inputs that `model` takes; calling it on the first sample failed "
                         f"({type(error).__name__}: {first}). Received: x with shape "
                         f"{keras.tree.map_structure(np.shape, x)}") from error


def check_compiled(model, path=None):
    """Refuse a model without a compiled loss: its curvature is that of the loss ``fit``
    minimizes (``ValueError`` naming ``model``, and echoing ``path``, the file it was
    loaded from, if given)."""
    if not getattr(model, "compiled", False) or getattr(model, "loss", None) is None:
        received = f"model={path!r} ({model.name!r}" if path is not None else f"model {model.name!r} ("
        raise ValueError(f"`model` must be compiled with a loss (`model.compile(loss=...)` before `model.save`): "
                         f"the curvature is that of the loss `fit` minimizes. Received: {received} has no compiled "
                         "loss)")


def num_parameters(model):
    """The number of trainable parameters of ``model`` (the size of its Hessian's side)."""
    return int(sum(int(np.prod(variable.shape)) for variable in model.trainable_variables))


def measured_changes(model, x, y, learning_rates, batch_size=None):
    """J(θ − εg) − J(θ) for each ε, with g = ∇J at the model's weights (restored after);
    J the mean loss over all of ``x`` (computed ``batch_size`` samples at a time, or all
    at once for ``None``)."""
    from keras_optlab.curvature import operator

    op = operator(model, x, y, batch_size=batch_size)
    loss, g = op.loss_and_gradient()
    weights = [v.numpy() if hasattr(v, "numpy") else np.asarray(v) for v in model.trainable_variables]
    grads = op.split(g)
    changes = []
    try:
        for eps in learning_rates:
            for variable, w, step in zip(model.trainable_variables, weights, grads):
                variable.assign((w - eps * step).astype(w.dtype))
            changes.append(op.loss_and_gradient()[0] - loss)
    finally:
        for variable, w in zip(model.trainable_variables, weights):
            variable.assign(w)
    return np.asarray(changes)


def curvature_report(model, x, y, out, k=3, learning_rate=None, points=16, batch_size=None):
    """Measure, print-ready, and draw DIR/curvature.png; returns ``(report_dict, markdown)``.

    ``learning_rate`` defaults to the model's compiled optimizer's constant rate, if any.
    Every figure is of the mean loss over all of ``x``; ``batch_size`` computes it that
    many samples at a time (memory: one batch; ``None``: all at once).
    """
    from keras_optlab.curvature import gradient_curvature, top_eigenvalues
    from keras_optlab.lab.plots import plot_curvature

    check_batch(x, y, model)
    if learning_rate is None and getattr(model, "optimizer", None) is not None:
        value = model.optimizer.get_config().get("learning_rate")
        learning_rate = float(value) if isinstance(value, numbers.Real) else None
    report = gradient_curvature(model, x, y, learning_rate=learning_rate, batch_size=batch_size)
    # Lanczos finds at most as many Ritz values as it takes steps (capped at n inside).
    eigenvalues = top_eigenvalues(model, x, y, k=k, max_iterations=max(100, 2 * k), batch_size=batch_size)
    report["top_eigenvalues"] = [float(v) for v in eigenvalues]
    report["stable_learning_rate"] = 2.0 / eigenvalues[0] if eigenvalues[0] > 0 else float("inf")
    critical = report["critical_learning_rate"]
    top = 1.5 * critical if np.isfinite(critical) else 2.0 * (learning_rate or 1.0)
    rates = np.linspace(0.0, top, points)
    changes = measured_changes(model, x, y, rates, batch_size)
    os.makedirs(out, exist_ok=True)
    figure = plot_curvature(report["g_norm_sq"], report["gHg"], os.path.join(out, "curvature.png"), rates, changes,
                            title=f"{model.name}: one step −εg on {len(x)} samples"
                            + (f" (batches of {batch_size})" if batch_size else ""))
    report["figure"] = figure
    lines = [
        "| quantity | value |", "|---|---:|",
        f"| loss J(θ) | {report['loss']:.6g} |",
        f"| gᵀg | {report['g_norm_sq']:.6g} |",
        f"| gᵀHg | {report['gHg']:.6g} |",
        f"| critical learning rate 2gᵀg/gᵀHg | {critical:.6g} |",
        f"| top Hessian eigenvalues | {', '.join(f'{v:.6g}' for v in report['top_eigenvalues'])} |",
        f"| 2/λmax | {report['stable_learning_rate']:.6g} |",
    ]
    if learning_rate is not None:
        lines.append(f"| predicted change ½ε²gᵀHg − εgᵀg at ε = {learning_rate:g} | {report['predicted_change']:.6g} |")
        verdict = "increases" if report["predicted_change"] > 0 else "decreases"
        lines.append(f"| a step of ε = {learning_rate:g} along −g (second order) | {verdict} the loss |")
    markdown = "\n".join(lines)
    with open(os.path.join(out, "curvature.md"), "w", encoding="utf-8") as file:
        file.write(f"# Curvature of {model.name}\n\nGoodfellow et al. 2016, Sec. 8.2.1, Eq. 8.10.\n\n{markdown}\n\n"
                   "![curvature](curvature.png)\n")
    return report, markdown
