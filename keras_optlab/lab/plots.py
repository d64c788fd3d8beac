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


# One colour per optimizer in every figure of the lab (matplotlib's tab10 colours, Newton
# black): trajectories, loss curves on the surfaces and on digits all read this table.
OPTIMIZER_COLORS = {
    "SGD": "C0",
    "Momentum": "C1",
    "Nesterov": "C2",
    "AdaGrad": "C3",
    "RMSProp": "C4",
    "NesterovRMSProp": "C5",
    "Adam": "C6",
    "Newton": "black",
}
# Labels that name no optimizer of the table take these, in turn.
OTHER_COLORS = ("C8", "C9", "C7")


def optimizer_of(label):
    """The optimizer a row's label names: the longest key of :data:`OPTIMIZER_COLORS`
    that the label starts with as a whole word (``"SGD, clipnorm=1"`` → ``"SGD"``,
    ``"NesterovRMSProp"`` → ``"NesterovRMSProp"``), or ``None``."""
    for name in sorted(OPTIMIZER_COLORS, key=len, reverse=True):
        if label == name or (label.startswith(name) and not label[len(name)].isalnum()):
            return name
    return None


def _shade(color, amount):
    """``color`` mixed with black (``amount`` > 0) or white (< 0); a colour too dark to
    darken (Newton's black) is lightened instead."""
    colors = require("matplotlib.colors", "plots")
    rgb = np.asarray(colors.to_rgb(color))
    if rgb.max() < 0.2:
        amount = -abs(amount)
    return tuple(float(v) for v in (rgb * (1 - amount) if amount > 0 else rgb + (1 - rgb) * -amount))


# The second, third, ... row of one optimizer in the same plot (SGD and "SGD, clipnorm=1"):
# the optimizer's colour, darker, then lighter.
SHADES = (0.0, 0.45, -0.45, 0.7, -0.7)


def row_colors(rows):
    """The colour of each row: its optimizer's colour from :data:`OPTIMIZER_COLORS`, so an
    optimizer has the same colour in every figure; repeated optimizers in one plot get
    shades of it (:data:`SHADES`), labels of no known optimizer :data:`OTHER_COLORS`."""
    seen, others, colors = {}, {}, []
    for row in rows:
        name = optimizer_of(row.name)
        if name is None:
            others.setdefault(row.name, OTHER_COLORS[len(others) % len(OTHER_COLORS)])
            colors.append(others[row.name])
            continue
        count = seen.get(name, 0)
        seen[name] = count + 1
        base = OPTIMIZER_COLORS[name]
        colors.append(base if count == 0 else _shade(base, SHADES[count % len(SHADES)]))
    return colors


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
    draw_loss_curves(*figure.subplots(1, 2, sharex=True), rows, log_scale)
    figure.suptitle(title or f"Optimizer race on {rows[0].problem}")
    return save(figure, path)


def draw_loss_curves(train_axes, val_axes, rows, log_scale=True):
    """The two panels of :func:`plot_loss_curves` on ``train_axes`` and ``val_axes``."""
    for row, color in zip(rows, row_colors(rows)):
        train_axes.plot(range(len(row.loss_history)), row.loss_history, marker="o", markersize=3, label=row.name,
                        color=color)
        val_axes.plot(range(len(row.val_loss_history)), row.val_loss_history, marker="o", markersize=3, color=color)
    for axes, label in ((train_axes, "Training loss"), (val_axes, "Validation loss")):
        axes.set_title(label)
        axes.set_xlabel("epoch")
        axes.set_ylabel("cross-entropy loss" + (" (log scale)" if log_scale else ""))
        if log_scale:
            axes.set_yscale("log")
        axes.grid(True, which="both", alpha=0.3)
    train_axes.legend(title="optimizer", fontsize="small")


# Contours in greys (low is light), so that every optimizer's colour stands out on them.
SURFACE_CMAP = "Greys"


def draw_surface(axes, surface, points=200, levels=25):
    """Filled contours of a 2-D surface on its window (:data:`SURFACE_CMAP`), its
    minimizer as a star."""
    x, y, z = surface.grid(points)
    if surface.log_levels:
        floor = surface.min_value if surface.min_value is not None else float(z.min())
        shifted = z - floor
        low = max(float(shifted.min()), 1e-6 * float(shifted.max()))
        shifted = np.maximum(shifted, low)
        colors = require("matplotlib.colors", "plots")
        contour = axes.contourf(x, y, shifted, levels=np.geomspace(low, shifted.max(), levels),
                                norm=colors.LogNorm(), cmap=SURFACE_CMAP, alpha=0.5)
        axes.contour(x, y, shifted, levels=contour.levels, colors="white", linewidths=0.4, alpha=0.8)
    else:
        contour = axes.contourf(x, y, z, levels=levels, cmap=SURFACE_CMAP, alpha=0.5)
        axes.contour(x, y, z, levels=contour.levels, colors="white", linewidths=0.4, alpha=0.8)
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


def steps_text(count):
    """``"1 step"``, ``"24 steps"``."""
    return f"{count} step" if count == 1 else f"{count} steps"


def _outcome(row):
    if row.diverged:
        return "diverged"
    if row.steps_to_target is not None:
        return f"target in {steps_text(row.steps_to_target)}"
    return f"final loss {row.train_loss:.3g}"


def _path_label(row):
    """``"<name>, ε=<lr>[, α=<momentum>]: <outcome>"``; what the name already says is not
    repeated."""
    settings = []
    if row.learning_rate is not None and "ε=" not in row.name:
        settings.append(f"ε={row.learning_rate:g}")
    if getattr(row, "momentum", None) is not None and "α=" not in row.name:
        settings.append(f"α={row.momentum:g}")
    return ", ".join([row.name, *settings]) + f": {_outcome(row)}"


LINESTYLES = ("-", "--", "-.", ":")


def draw_paths(axes, surface, rows):
    """Each row's trajectory as a line (with markers for short runs) in its optimizer's
    colour (:func:`row_colors`). A path that goes more than a window's width outside the
    window says how far it went in its legend entry ("went on to (x, y)"): notes drawn
    in the axes would cover the paths and each other."""
    (xmin, xmax), (ymin, ymax) = surface.xlim, surface.ylim
    width = max(xmax - xmin, ymax - ymin)
    for i, (row, color) in enumerate(zip(rows, row_colors(rows))):
        path = row.trajectory
        label = _path_label(row)
        excess = np.maximum.reduce([xmin - path[:, 0], path[:, 0] - xmax, ymin - path[:, 1], path[:, 1] - ymax])
        if excess.max() > width:
            far = path[np.argmax(excess)]
            label += f"\n    went on to ({far[0]:.3g}, {far[1]:.3g})"
        axes.plot(path[:, 0], path[:, 1], marker="o" if len(path) <= 80 else None, markersize=2.5,
                  linewidth=1.6, linestyle=LINESTYLES[i % len(LINESTYLES)], color=color, label=label, zorder=4)


def draw_legend(axes, loc="outside", **kwargs):
    """The legend of ``axes`` where it covers no path or curve: ``"outside"`` (the
    default) below the axes, ``"right"`` to their right, in one column; any other value
    is matplotlib's ``loc``, inside."""
    entries = len(axes.get_legend_handles_labels()[1])
    if loc == "right":
        return axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), framealpha=0.9, **kwargs)
    if loc != "outside":
        return axes.legend(fontsize="small", loc=loc, framealpha=0.9, **kwargs)
    return axes.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.13),
                       ncols=1 if entries <= 4 else 2, framealpha=0.9, **kwargs)


def draw_trajectories(axes, surface, rows, title=None, legend_loc="outside"):
    """Contours of ``surface`` with the trajectories of ``rows`` and a legend (below the
    axes by default, see :func:`draw_legend`)."""
    draw_surface(axes, surface)
    draw_paths(axes, surface, rows)
    draw_legend(axes, legend_loc)
    axes.set_title(title or surface.title, fontsize="medium")


def plot_panels(drawers, path, title=None, panel_size=(6.0, 5.4), dpi=80):
    """Side-by-side panels, each drawn by a callable ``drawer(axes)``, as a PNG."""
    if not drawers:
        raise ValueError("`drawers` is empty: there is nothing to plot.")
    figure = new_figure("plot_panels", figsize=(panel_size[0] * len(drawers), panel_size[1]))
    for axes, drawer in zip(np.atleast_1d(figure.subplots(1, len(drawers))), drawers):
        drawer(axes)
    if title:
        figure.suptitle(title)
    return save(figure, path, dpi=dpi)


def plot_trajectories(surface, rows, path, title=None, legend_loc="right"):
    """Trajectories of optimizers over a surface's contours, as a PNG.

    The picture of the notes' optimizer figures (Goodfellow et al. 2016, Fig. 8.5 for
    momentum): contours of J, the start, the minimizer, and each optimizer's iterates.

    Args:
        surface: A 2-D :class:`~keras_optlab.lab.surfaces.Surface`.
        rows: :class:`~keras_optlab.lab.racing.RaceResult` rows of runs on it.
        path: Where to write the PNG.
        title: Defaults to the surface's title.
        legend_loc: ``"right"`` (to the right of the axes), ``"outside"`` (below) or a
            matplotlib ``loc`` (see :func:`draw_legend`).
    """
    if not rows:
        raise ValueError("`rows` is empty: there is nothing to plot.")
    size = (10.0, 5.4) if legend_loc == "right" else (6.0, 5.4)
    return plot_panels([lambda axes: draw_trajectories(axes, surface, rows, title, legend_loc)], path,
                       panel_size=size)


# A loss axis shows at most this many times the starting gap J(θ₀) − J(θ*) (common to
# every entrant): a run that climbs beyond, or diverges, would flatten every other curve.
LOSS_HEADROOM = 100.0


def draw_losses(axes, rows, min_value=None):
    """Loss against step, one line per row in its optimizer's colour: J(θ_k) − J(θ*) on a
    log axis when the minimum is known, J otherwise.

    With a known minimum the axis stops at :data:`LOSS_HEADROOM` times the largest
    starting gap; a diverged run is drawn up to its last finite loss, marked × at the step
    where it stopped (clipped to the axis) and named in a "diverged" note (only there:
    without a minimum, running off is escaping).
    """
    top, diverged = None, []
    if min_value is not None:
        starts = [row.loss_history[0] - min_value for row in rows if len(row.loss_history)]
        top = LOSS_HEADROOM * max(max(starts, default=1.0), 1e-16)
    for row, color in zip(rows, row_colors(rows)):
        losses = np.asarray(row.loss_history, dtype=np.float64)
        if min_value is not None:
            losses = np.maximum(losses - min_value, 1e-16)
        axes.plot(np.arange(len(losses)), losses, color=color, linewidth=1.5, label=row.name)
        # Without a minimum (the saddle) running off is the goal, not a failure.
        if getattr(row, "diverged", False) and min_value is not None and len(losses):
            last = losses[-1] if top is None else min(losses[-1], top)
            axes.plot([len(losses) - 1], [last], marker="x", markersize=9, markeredgewidth=2, color=color,
                      linestyle="none", clip_on=False, zorder=5)
            diverged.append(row.name)
    if min_value is not None:
        axes.set_yscale("log")
        axes.set_ylabel("J(θ) − J(θ*) (log scale)")
        bottom, auto_top = axes.get_ylim()
        axes.set_ylim(bottom, max(min(auto_top, top), 10 * bottom))
    else:
        axes.set_yscale("symlog", linthresh=1e-2)
        axes.set_ylabel("J(θ) (symlog scale)")
    if diverged:
        axes.text(0.98, 0.97, "× diverged: " + ", ".join(diverged), transform=axes.transAxes, ha="right",
                  va="top", fontsize="small", bbox={"boxstyle": "round", "fc": "white", "alpha": 0.85}, zorder=6)
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
