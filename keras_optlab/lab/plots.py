"""Figures of the lab as PNG files (matplotlib's Agg renderer; no display needed).

Figures are drawn on a bare ``matplotlib.figure.Figure`` rather than through
``pyplot``, so plotting never touches a global backend or leaks open figures.
"""

import os

from keras_optlab.lab._optional import require


def _figure(feature, **kwargs):
    """A new ``Figure`` (Agg canvas) with constrained layout."""
    figure_module = require("matplotlib.figure", feature)
    return figure_module.Figure(layout="constrained", **kwargs)


def _save(figure, path, dpi=120):
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path


def plot_loss_curves(rows, path, title=None, log_scale=True):
    """Training and validation loss per epoch, one line per optimizer, as a PNG.

    Two panels share the epoch axis and the legend: the training loss (what the
    optimizer minimizes — Goodfellow et al. 2016, Sec. 8.1) and the validation loss
    (what generalizes). Epoch 0 is the common starting point of every entrant.

    Args:
        rows: :class:`~keras_optlab.lab.race.RaceResult` rows (``name``,
            ``loss_history``, ``val_loss_history``, ``problem``).
        path: Where to write the PNG; missing directories are created.
        title: Figure title; defaults to "Optimizer race on <problem>".
        log_scale: Logarithmic loss axis (losses that differ by decades stay readable).

    Returns:
        ``path``.
    """
    if not rows:
        raise ValueError("`rows` is empty: there is nothing to plot.")
    figure = _figure("plot_loss_curves", figsize=(11, 4.5))
    train_axes, val_axes = figure.subplots(1, 2, sharex=True)
    for row in rows:
        epochs = range(len(row.loss_history))
        (line,) = train_axes.plot(epochs, row.loss_history, marker="o", markersize=3, label=row.name)
        val_axes.plot(range(len(row.val_loss_history)), row.val_loss_history, marker="o", markersize=3,
                      color=line.get_color())
    for axes, label in ((train_axes, "Training loss"), (val_axes, "Validation loss")):
        axes.set_title(label)
        axes.set_xlabel("epoch")
        axes.set_ylabel("cross-entropy loss" + (" (log scale)" if log_scale else ""))
        if log_scale:
            axes.set_yscale("log")
        axes.grid(True, which="both", alpha=0.3)
    train_axes.legend(title="optimizer", fontsize="small")
    figure.suptitle(title or f"Optimizer race on {rows[0].problem}")
    return _save(figure, path)
