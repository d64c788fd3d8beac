"""Figures of the lab as PNG files (matplotlib's Agg renderer; no display needed).

Figures are drawn on a bare ``matplotlib.figure.Figure`` rather than through
``pyplot``, so plotting never touches a global backend or leaks open figures.
"""

import os

import numpy as np

from keras_optlab.lab._optional import require


def new_figure(feature, **kwargs):
    """A new ``matplotlib.figure.Figure`` (Agg canvas) with constrained layout.

    Args:
        feature: What draws it, for the message of a missing matplotlib
            (:class:`~keras_optlab.lab.MissingExtraError`).
        **kwargs: Passed to ``Figure`` (``figsize=...``).
    """
    figure_module = require("matplotlib.figure", feature)
    return figure_module.Figure(layout="constrained", **kwargs)


def save(figure, path, dpi=120):
    """Write ``figure`` to ``path`` (a PNG; missing directories are created); return ``path``."""
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
    figure = new_figure("plot_loss_curves", figsize=(11, 4.5))
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
    return save(figure, path)


def draw_surface(axes, surface, points=200, levels=25):
    """Filled contours of a 2-D surface on its window, its minimizer as a star."""
    x, y, z = surface.grid(points)
    if surface.log_levels:
        floor = surface.min_value if surface.min_value is not None else float(z.min())
        shifted = z - floor
        low = max(float(shifted.min()), 1e-6 * float(shifted.max()))
        shifted = np.maximum(shifted, low)
        colors = require("matplotlib.colors", "plots")
        contour = axes.contourf(x, y, shifted, levels=np.geomspace(low, shifted.max(), levels),
                                norm=colors.LogNorm(), cmap="viridis", alpha=0.85)
        axes.contour(x, y, shifted, levels=contour.levels, colors="white", linewidths=0.3, alpha=0.5)
    else:
        contour = axes.contourf(x, y, z, levels=levels, cmap="viridis", alpha=0.85)
        axes.contour(x, y, z, levels=contour.levels, colors="white", linewidths=0.3, alpha=0.5)
    if surface.minimizer is not None:
        axes.plot(*surface.minimizer[:2], marker="*", markersize=14, color="gold", markeredgecolor="black",
                  linestyle="none", label="minimizer", zorder=5)
    axes.plot(*surface.start[:2], marker="o", markersize=7, color="white", markeredgecolor="black",
              linestyle="none", label="start", zorder=5)
    axes.set_xlim(*surface.xlim)
    axes.set_ylim(*surface.ylim)
    axes.set_xlabel("θ₁")
    axes.set_ylabel("θ₂")
    return contour


def _outcome(row):
    if row.diverged:
        return "diverged"
    if row.steps_to_target is not None:
        return f"target in {row.steps_to_target} steps"
    return f"final loss {row.train_loss:.3g}"


LINESTYLES = ("-", "--", "-.", ":")


def draw_paths(axes, surface, rows):
    """Each row's trajectory as a line (with markers for short runs); a path that goes
    more than a window's width outside the window is annotated with how far it went."""
    (xmin, xmax), (ymin, ymax) = surface.xlim, surface.ylim
    width = max(xmax - xmin, ymax - ymin)
    for i, row in enumerate(rows):
        path = row.trajectory
        color = f"C{(i + 1) % 10}"
        lr = "" if row.learning_rate is None or "ε=" in row.name else f", ε={row.learning_rate:g}"
        axes.plot(path[:, 0], path[:, 1], marker="o" if len(path) <= 80 else None, markersize=2.5,
                  linewidth=1.6, linestyle=LINESTYLES[i % len(LINESTYLES)], color=color,
                  label=f"{row.name}{lr}: {_outcome(row)}", zorder=4)
        excess = np.maximum.reduce([xmin - path[:, 0], path[:, 0] - xmax, ymin - path[:, 1], path[:, 1] - ymax])
        if excess.max() > width:
            far = path[np.argmax(excess)]
            axes.annotate(
                f"{row.name} went on to ({far[0]:.3g}, {far[1]:.3g})",
                xy=(np.clip(far[0], xmin, xmax), np.clip(far[1], ymin, ymax)),
                xytext=(0.5 * (xmin + xmax), ymin + 0.8 * (ymax - ymin)),
                arrowprops={"arrowstyle": "->", "color": color, "lw": 1.5}, color=color, fontsize="small",
                ha="center", bbox={"boxstyle": "round", "fc": "white", "alpha": 0.85}, zorder=6,
            )


def draw_trajectories(axes, surface, rows, title=None, legend_loc="best"):
    """Contours of ``surface`` with the trajectories of ``rows`` and a legend."""
    draw_surface(axes, surface)
    draw_paths(axes, surface, rows)
    axes.legend(fontsize="small", loc=legend_loc, framealpha=0.9)
    axes.set_title(title or surface.title, fontsize="medium")


def plot_panels(drawers, path, title=None, panel_size=(6.0, 4.8), dpi=80):
    """Side-by-side panels, each drawn by a callable ``drawer(axes)``, as a PNG."""
    if not drawers:
        raise ValueError("`drawers` is empty: there is nothing to plot.")
    figure = new_figure("plot_panels", figsize=(panel_size[0] * len(drawers), panel_size[1]))
    for axes, drawer in zip(np.atleast_1d(figure.subplots(1, len(drawers))), drawers):
        drawer(axes)
    if title:
        figure.suptitle(title)
    return save(figure, path, dpi=dpi)


def plot_trajectories(surface, rows, path, title=None, legend_loc="best"):
    """Trajectories of optimizers over a surface's contours, as a PNG.

    The picture of the notes' optimizer figures (Goodfellow et al. 2016, Fig. 8.5 for
    momentum): contours of J, the start, the minimizer, and each optimizer's iterates.

    Args:
        surface: A 2-D :class:`~keras_optlab.lab.surfaces.Surface`.
        rows: :class:`~keras_optlab.lab.racing.RaceResult` rows of runs on it.
        path: Where to write the PNG.
        title: Defaults to the surface's title.
    """
    if not rows:
        raise ValueError("`rows` is empty: there is nothing to plot.")
    return plot_panels([lambda axes: draw_trajectories(axes, surface, rows, title, legend_loc)], path)


def draw_losses(axes, rows, min_value=None):
    """Loss against step, one line per row: J(θ_k) − J(θ*) on a log axis when the
    minimum is known, J otherwise."""
    for i, row in enumerate(rows):
        losses = np.asarray(row.loss_history)
        if min_value is not None:
            losses = np.maximum(losses - min_value, 1e-16)
        axes.plot(np.arange(len(losses)), losses, color=f"C{(i + 1) % 10}", linewidth=1.5, label=row.name)
    if min_value is not None:
        axes.set_yscale("log")
        axes.set_ylabel("J(θ) − J(θ*) (log scale)")
    else:
        axes.set_yscale("symlog", linthresh=1e-2)
        axes.set_ylabel("J(θ) (symlog scale)")
    axes.set_xlabel("step")
    axes.grid(True, which="both", alpha=0.3)


def plot_surface_losses(rows, path, surfaces, title="Optimizer race on the textbook surfaces"):
    """Loss curves of a race over surfaces, one panel per surface, as a PNG.

    Args:
        rows: Race rows (rows of other problems are ignored).
        path: Where to write the PNG.
        surfaces: The surfaces raced, by name (for their minimum values and titles).
    """
    by_problem = {}
    for row in rows:
        if row.problem in surfaces:
            by_problem.setdefault(row.problem, []).append(row)
    if not by_problem:
        raise ValueError("No row of `rows` is a run on one of `surfaces`.")
    columns = min(3, len(by_problem))
    lines = -(-len(by_problem) // columns)
    figure = new_figure("plot_surface_losses", figsize=(4.6 * columns, 3.6 * lines + 0.6))
    panels = np.atleast_1d(figure.subplots(lines, columns, squeeze=False)).ravel()
    for axes, (name, problem_rows) in zip(panels, by_problem.items()):
        draw_losses(axes, problem_rows, surfaces[name].min_value)
        axes.set_title(surfaces[name].title, fontsize="medium")
    for axes in panels[len(by_problem):]:
        axes.set_visible(False)
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(8, len(labels)), fontsize="small")
    figure.suptitle(title)
    return save(figure, path, dpi=80)


def draw_curvature(axes, g_norm_sq, ghg, learning_rates=None, actual_changes=None, title=None):
    """The ill-conditioning picture of Sec. 8.2.1 on ``axes`` (see :func:`plot_curvature`)."""
    critical = 2.0 * g_norm_sq / ghg if ghg > 0 else float("inf")
    top = learning_rates[-1] if learning_rates is not None else (1.5 * critical if np.isfinite(critical) else 1.0)
    eps = np.linspace(0.0, top, 200)
    axes.plot(eps, 0.5 * eps**2 * ghg - eps * g_norm_sq, color="C0", linewidth=2,
              label="predicted ½ε²gᵀHg − εgᵀg (Eq. 8.10)")
    if actual_changes is not None:
        axes.plot(learning_rates, actual_changes, "o", color="C3", markersize=4, label="measured J(θ − εg) − J(θ)")
    axes.axhline(0.0, color="black", linewidth=0.8)
    if np.isfinite(critical) and critical <= top:
        axes.axvline(critical, color="C1", linestyle="--", label=f"critical ε = 2gᵀg/gᵀHg = {critical:.3g}")
        axes.axvline(critical / 2, color="C2", linestyle=":", label=f"best ε = gᵀg/gᵀHg = {critical / 2:.3g}")
    axes.set_xlabel("learning rate ε")
    axes.set_ylabel("change of the cost after one step −εg")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    axes.set_title(title or f"Cost change along −g: gᵀg = {g_norm_sq:.3g}, gᵀHg = {ghg:.3g}", fontsize="medium")


def plot_curvature(g_norm_sq, ghg, path, learning_rates=None, actual_changes=None, title=None):
    """The ill-conditioning picture of Sec. 8.2.1: the change of J after a step −εg.

    Draws the second-order prediction ½ε²gᵀHg − εgᵀg (Eq. 8.10) against ε, marks the
    critical learning rate 2gᵀg/gᵀHg beyond which the step increases the cost and the
    best step gᵀg/gᵀHg, and, when given, the measured changes J(θ − εg) − J(θ).

    Args:
        g_norm_sq: gᵀg.
        ghg: gᵀHg.
        path: Where to write the PNG.
        learning_rates: Increasing ε values of ``actual_changes`` (the last one is the
            end of the ε axis).
        actual_changes: Measured J(θ − εg) − J(θ) at ``learning_rates``.
        title: Panel title.
    """
    return plot_panels(
        [lambda axes: draw_curvature(axes, g_norm_sq, ghg, learning_rates, actual_changes, title)],
        path, panel_size=(6.4, 4.2),
    )


def output_dir(default=os.path.join("runs", "examples")):
    """Where examples write their figures: ``$OPTLAB_OUT`` if set, else ``default``
    (created if missing)."""
    path = os.environ.get("OPTLAB_OUT") or default
    os.makedirs(path, exist_ok=True)
    return path
