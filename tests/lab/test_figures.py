"""keras_optlab.lab.plots and figures: what a reader sees, as numbers.

The momentum picture shows what its caption says, one colour per optimizer in every
plot, legends and notes that cover nothing, loss axes that a diverged run cannot flatten.
"""

import numpy as np
from keras_optlab.lab import RaceResult, race, surfaces
from keras_optlab.lab import plots
from keras_optlab.lab.figures import MOMENTUM_STEPS, MOMENTUM_VALLEY, momentum_race


def _axes(columns=1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = plots.new_figure("tests", figsize=(6.0 * columns, 5.4))
    FigureCanvasAgg(figure)  # draw() lays the figure out as savefig would
    return figure, figure.subplots(1, columns)


def _surface_row(name, trajectory, losses, diverged=False, steps_to_target=None):
    trajectory = np.asarray(trajectory, dtype=np.float64)
    return RaceResult(name, "quadratic", 0.1, losses[-1], None, None, 0.1, list(losses), None,
                      trajectory=trajectory, steps_to_target=steps_to_target, diverged=diverged)


# ----------------------------------------------------------------- the momentum figure


def _steep_coordinate(trajectory):
    """θ along H's top eigenvector: the across-valley coordinate."""
    hessian = surfaces.quadratic_hessian(MOMENTUM_VALLEY["condition_number"], angle=MOMENTUM_VALLEY["angle"])
    _, vectors = np.linalg.eigh(hessian)
    return trajectory @ vectors[:, -1]


def test_momentum_figure_averages_the_zigzag_away():
    surface, (sgd, momentum) = momentum_race()
    assert sgd.name == "SGD" and momentum.momentum == 0.9  # the book's α (Sec. 8.3.2)
    across = {row.name: np.abs(np.diff(_steep_coordinate(row.trajectory))).sum() for row in (sgd, momentum)}
    # Total distance travelled across the valley: SGD 47.5, Momentum 6.9.
    assert across[momentum.name] < 0.25 * across[sgd.name], across
    # Sign changes of the across-valley step: SGD flips every step, momentum swings slowly.
    flips = {row.name: int(np.sum(np.diff(np.sign(np.diff(_steep_coordinate(row.trajectory)))) != 0))
             for row in (sgd, momentum)}
    assert flips[sgd.name] >= MOMENTUM_STEPS - 2 and flips[momentum.name] < MOMENTUM_STEPS / 4, flips
    # ... and it gets there first: fewer steps to the target, closer after the last step.
    assert momentum.steps_to_target < sgd.steps_to_target <= MOMENTUM_STEPS
    distance = {row.name: np.linalg.norm(row.trajectory[-1] - np.asarray(surface.minimizer)) for row in (sgd, momentum)}
    assert distance[momentum.name] < 0.1 * distance[sgd.name], distance


# ----------------------------------------------------------------- text


def test_steps_are_pluralized():
    assert plots.steps_text(1) == "1 step" and plots.steps_text(0) == "0 steps" and plots.steps_text(24) == "24 steps"
    row = _surface_row("Newton", [[1.0, 1.0], [0.0, 0.0]], [1.0, 0.0], steps_to_target=1)
    assert plots._outcome(row) == "target in 1 step"
    figure, axes = _axes()
    plots.draw_trajectories(axes, surfaces.quadratic(), [row])
    assert "Newton, ε=0.1: target in 1 step" in [text.get_text() for text in axes.get_legend().get_texts()]


# ----------------------------------------------------------------- colours


def _line_colors(axes):
    from matplotlib.colors import to_hex

    return {line.get_label(): to_hex(line.get_color()) for line in axes.get_lines()
            if not line.get_label().startswith("_") and line.get_label() not in ("minimizer", "start")}


def test_one_colour_per_optimizer_in_every_plot():
    from matplotlib.colors import to_hex

    surface = surfaces.quadratic()
    path = [[-4.5, -1.5], [-1.0, 0.0], [0.0, 0.0]]
    names = ["Adam", "SGD", "Momentum", "Newton"]
    expected = {name: to_hex(plots.OPTIMIZER_COLORS[name]) for name in names}
    for order in (names, names[::-1]):
        rows = [_surface_row(name, path, [3.0, 1.0, 0.5]) for name in order]
        for row in rows:
            row.val_loss_history = row.loss_history
        _, (paths_axes, losses_axes) = _axes(2)
        plots.draw_paths(paths_axes, surface, rows)
        plots.draw_losses(losses_axes, rows, surface.min_value)
        _, (train_axes, val_axes) = _axes(2)
        plots.draw_loss_curves(train_axes, val_axes, rows)
        # Trajectories (labelled with their outcome), surface losses and digits curves.
        assert {label.split(",")[0]: color for label, color in _line_colors(paths_axes).items()} == expected
        assert _line_colors(losses_axes) == expected
        assert _line_colors(train_axes) == expected
        assert [to_hex(line.get_color()) for line in val_axes.get_lines()] == [expected[n] for n in order]


def test_variants_of_one_optimizer_get_shades_of_its_colour():
    from matplotlib.colors import to_hex, to_rgb

    labels = ["SGD", "SGD, clipnorm=1", "NesterovRMSProp", "Nesterov α=0.9", "Newton", "Newton, saddle-free |H|",
              "mystery"]
    assert [plots.optimizer_of(label) for label in labels] == [
        "SGD", "SGD", "NesterovRMSProp", "Nesterov", "Newton", "Newton", None]
    colors = plots.row_colors([_surface_row(label, [[0.0, 0.0]], [0.0]) for label in labels])
    assert to_hex(colors[0]) == to_hex(plots.OPTIMIZER_COLORS["SGD"])
    assert len({to_hex(c) for c in colors}) == len(colors)  # every line distinguishable
    # A darker blue, not another optimizer's colour.
    assert to_hex(colors[1]) not in {to_hex(c) for c in plots.OPTIMIZER_COLORS.values()}
    sgd, variant = np.asarray(to_rgb(colors[0])), np.asarray(to_rgb(colors[1]))
    np.testing.assert_allclose(variant / variant.max(), sgd / sgd.max(), atol=1e-9)


# ----------------------------------------------------------------- layout


def _display_points(axes, rows):
    return np.concatenate([axes.transData.transform(row.trajectory[:, :2]) for row in rows])


def test_trajectory_legend_covers_no_path():
    surface = surfaces.quadratic()
    rows = race(None, [surface], verbose=0)
    assert len(rows) == 8
    figure, axes = _axes()
    plots.draw_trajectories(axes, surface, rows)
    figure.canvas.draw()
    box = axes.get_legend().get_window_extent()
    points = _display_points(axes, rows)
    inside = (points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)
    assert not inside.any(), f"{inside.sum()} path points under the legend"


def test_went_on_to_notes_cover_nothing():
    surface = surfaces.saddle()
    # Four paths that leave the window far behind, in different directions.
    ends = [(0.0, 1e3), (0.0, -1e3), (5e2, 5e2), (-1e2, 1e3)]
    rows = [_surface_row(name, [[1.5, 0.0], [0.5, 1.0], end], [2.0, 0.0, -1e4], diverged=True)
            for name, end in zip(["SGD", "Momentum", "Nesterov", "Adam"], ends)]
    figure, axes = _axes()
    plots.draw_trajectories(axes, surface, rows)
    figure.canvas.draw()
    # How far each went is said in its legend entry, outside the axes, not in a box on them.
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    for row, (x, y) in zip(rows, ends):
        assert any(label.startswith(row.name) and f"went on to ({x:.3g}, {y:.3g})" in label for label in labels)
    assert not axes.texts
    assert not axes.get_legend().get_window_extent().overlaps(axes.get_window_extent())


def test_loss_axis_is_clipped_and_diverged_runs_are_marked():
    surface = surfaces.quadratic()
    start = 12.0
    rows = [
        _surface_row("SGD", [[0.0, 0.0]], [start, 1.0, 1e-3, 1e-6]),
        _surface_row("Momentum", [[0.0, 0.0]], [start, 1e5, 1e60, 1e127], diverged=True),
    ]
    figure, axes = _axes()
    plots.draw_losses(axes, rows, surface.min_value)
    bottom, top = axes.get_ylim()
    assert top <= plots.LOSS_HEADROOM * start and bottom < 1e-6
    notes = [text.get_text() for text in axes.texts]
    assert notes == ["× diverged: Momentum"]
    # Without a divergence the axis ends at the data, not at the headroom.
    figure, axes = _axes()
    plots.draw_losses(axes, rows[:1], surface.min_value)
    assert axes.get_ylim()[1] < 0.1 * plots.LOSS_HEADROOM * start and not axes.texts


def test_race_rows_carry_the_momentum_coefficient():
    from keras_optlab.lab.racing import SURFACE_HYPERPARAMETERS

    rows = race(["SGD", "Momentum", "Nesterov"], [surfaces.quadratic()], steps=3, verbose=0)
    tuned = SURFACE_HYPERPARAMETERS["quadratic"]
    assert [row.momentum for row in rows] == [None, tuned["Momentum"]["momentum"], tuned["Nesterov"]["momentum"]]
