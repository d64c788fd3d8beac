"""The notes' figures, regenerated: optimizer trajectories, cliffs and clipping,
ill-conditioning, saddles, plateaus and long-term dependencies.

Each figure function takes an output directory, runs the optimizers it shows (every run
is deterministic) and writes one PNG; :data:`FIGURES` lists them by name and
:func:`make_figures` runs them all (``optlab figures``). Learning rates are chosen to
show the behaviour each section of Goodfellow et al. (2016), ch. 8, describes.
"""

import math
import os

import numpy as np

from keras_optlab import optimizers as book
from keras_optlab.lab import surfaces
from keras_optlab.lab.plots import draw_curvature, draw_legend, draw_losses, draw_trajectories, plot_panels
from keras_optlab.lab.racing import run_surface

# The ill-conditioned quadratic of the momentum pictures (Fig. 8.5 of the book):
# κ = 20, so SGD's stable steps are ε < 2/λmax = 0.1.
ILL_CONDITIONED = dict(condition_number=20.0, angle=math.pi / 6)


def _runs(surface, entrants, steps):
    return [run_surface(surface, optimizer, name=name, steps=steps) for name, optimizer in entrants.items()]


def _trajectory_figure(path, surface, entrants, steps, title, legend_loc="outside"):
    return _trajectory_figure_rows(path, surface, _runs(surface, entrants, steps), title, legend_loc)


def _trajectory_figure_rows(path, surface, rows, title, legend_loc="outside"):
    return plot_panels(
        [lambda axes: draw_trajectories(axes, surface, rows, legend_loc=legend_loc),
         lambda axes: _losses_panel(axes, surface, rows)],
        path, title=title,
    )


def _losses_panel(axes, surface, rows):
    draw_losses(axes, rows, surface.min_value)
    draw_legend(axes)
    axes.set_title("loss per step", fontsize="medium")


# The valley of the momentum picture (Fig. 8.5 of the book): κ = 50. With α = 0.9 no
# step size beats the rate √α ≈ 0.95 per step, so momentum pays off where plain gradient
# descent's best rate (κ − 1)/(κ + 1) is slower: here 0.96 (at κ = 20 it is 0.90).
MOMENTUM_VALLEY = dict(condition_number=50.0, angle=math.pi / 6)
MOMENTUM_STEPS = 150


def momentum_race():
    """The runs of :func:`sgd_with_momentum`: ``(surface, rows)``.

    SGD takes its fastest constant step on the quadratic, ε = 2/(λmin + λmax) (Sec. 8.2.1),
    where it zig-zags across the valley; Momentum the book's α = 0.9 (Sec. 8.3.2) with the
    learning rate of the race's grid that reaches the target in the fewest steps.
    """
    surface = surfaces.quadratic(**MOMENTUM_VALLEY)
    kappa = MOMENTUM_VALLEY["condition_number"]
    entrants = {
        "SGD": book.SGD(learning_rate=round(2 / (1 + kappa), 4)),
        "Momentum α=0.9": book.Momentum(learning_rate=0.0056, momentum=0.9),
    }
    return surface, _runs(surface, entrants, MOMENTUM_STEPS)


def sgd_with_momentum(out):
    """Momentum (Alg. 8.2, Sec. 8.3.2) against SGD on an ill-conditioned quadratic."""
    surface, rows = momentum_race()
    return _trajectory_figure_rows(os.path.join(out, "sgd_with_momentum.png"), surface, rows,
                                   "SGD zig-zags across the narrow valley; momentum averages the zig-zag away")


def nesterov(out):
    """Nesterov momentum (Alg. 8.3, Sec. 8.3.3) against heavy-ball momentum."""
    surface = surfaces.quadratic(**ILL_CONDITIONED)
    entrants = {
        "Momentum α=0.9": book.Momentum(learning_rate=0.005, momentum=0.9),
        "Nesterov α=0.9": book.Nesterov(learning_rate=0.005, momentum=0.9),
    }
    return _trajectory_figure(os.path.join(out, "nesterov.png"), surface, entrants, 60,
                              "Nesterov: the gradient after the velocity step corrects the overshoot")


def adagrad(out):
    """AdaGrad (Alg. 8.4, Sec. 8.5.1): per-coordinate steps on an axis-aligned valley."""
    surface = surfaces.quadratic(condition_number=20.0, angle=0.0)
    entrants = {
        "SGD": book.SGD(learning_rate=0.09),
        "AdaGrad": book.AdaGrad(learning_rate=1.0),
    }
    return _trajectory_figure(os.path.join(out, "adagrad.png"), surface, entrants, 60,
                              "AdaGrad divides each coordinate by its gradient history: equal progress on both axes")


def rmsprop(out):
    """RMSProp (Alg. 8.5, Sec. 8.5.2) against AdaGrad on the Rosenbrock valley."""
    surface = surfaces.rosenbrock()
    entrants = {
        "AdaGrad": book.AdaGrad(learning_rate=0.3),
        "RMSProp": book.RMSProp(learning_rate=0.01),
    }
    return _trajectory_figure(os.path.join(out, "rmsprop.png"), surface, entrants, 500,
                              "RMSProp forgets old gradients; AdaGrad's full history keeps its steps small")


def adam(out):
    """Adam (Alg. 8.7, Sec. 8.5.3) against RMSProp and momentum on the Rosenbrock valley."""
    surface = surfaces.rosenbrock()
    entrants = {
        "Momentum α=0.9": book.Momentum(learning_rate=0.001, momentum=0.9),
        "RMSProp": book.RMSProp(learning_rate=0.01),
        "Adam": book.Adam(learning_rate=0.1),
    }
    return _trajectory_figure(os.path.join(out, "adam.png"), surface, entrants, 500,
                              "Adam: momentum on bias-corrected moments, steps of about ε per coordinate")


def newtons_method(out):
    """Newton's method (Alg. 8.8, Sec. 8.6.1): minima in a few steps, saddles attract."""
    valley = surfaces.rosenbrock()
    valley_rows = _runs(valley, {"Newton": book.Newton(), "SGD": book.SGD(learning_rate=0.0018)}, 500)
    saddle = surfaces.saddle(start=(1.5, 0.5))
    saddle_rows = _runs(
        saddle,
        {
            "Newton": book.Newton(),
            "Newton, saddle-free |H|": book.Newton(saddle_free=True, learning_rate=0.3),
            "SGD": book.SGD(learning_rate=0.1),
        },
        12,
    )
    return plot_panels(
        [lambda axes: draw_trajectories(axes, valley, valley_rows, "Rosenbrock: Newton in a few steps"),
         lambda axes: draw_trajectories(axes, saddle, saddle_rows, "saddle x² − y²: Newton jumps onto it")],
        os.path.join(out, "newtons_method.png"),
        title="Newton's method θ ← θ − H⁻¹g",
    )


def cliff_clipping(out):
    """A cliff (Sec. 8.2.4, Fig. 8.3) with and without gradient clipping (Sec. 10.11.1)."""
    surface = surfaces.cliff()
    rows = _runs(
        surface,
        {"SGD": book.SGD(learning_rate=0.5), "SGD, clipnorm=1": book.SGD(learning_rate=0.5, clipnorm=1.0)},
        40,
    )
    return plot_panels(
        [lambda axes: draw_trajectories(axes, surface, rows),
         lambda axes: _losses_panel(axes, surface, rows)],
        os.path.join(out, "cliff_clipping.png"),
        title="On the cliff face one plain step throws θ far away; clipping bounds it",
    )


def ill_conditioning(out):
    """Ill-conditioning (Sec. 8.2.1): ε beyond 2gᵀg/gᵀHg increases the cost."""
    surface = surfaces.quadratic(**ILL_CONDITIONED)
    hessian = surfaces.quadratic_hessian(ILL_CONDITIONED["condition_number"], angle=ILL_CONDITIONED["angle"])
    theta = np.asarray(surface.start)
    g = surface.gradient(theta)
    g_norm_sq, ghg = float(g @ g), float(g @ hessian @ g)
    critical = 2 * g_norm_sq / ghg
    learning_rates = np.linspace(0.0, 1.5 * critical, 16)
    changes = [surface.value(theta - eps * g) - surface.value(theta) for eps in learning_rates]
    rows = _runs(
        surface,
        {"SGD ε=0.05": book.SGD(learning_rate=0.05), "SGD ε=0.098": book.SGD(learning_rate=0.098),
         "SGD ε=0.102": book.SGD(learning_rate=0.102)},
        25,
    )
    return plot_panels(
        [lambda axes: draw_trajectories(axes, surface, rows, "κ = 20: stable only for ε < 2/λmax = 0.1"),
         lambda axes: draw_curvature(axes, g_norm_sq, ghg, learning_rates, changes, "one step −εg from the start")],
        os.path.join(out, "ill_conditioning.png"),
        title="Ill-conditioning: the curvature along g caps the learning rate",
    )


def plateaus_and_saddles(out):
    """A plateau and a saddle (Sec. 8.2.3): small gradients, slow first-order escape."""
    plateau = surfaces.plateau()
    plateau_rows = _runs(plateau, {"SGD": book.SGD(learning_rate=1.0), "Adam": book.Adam(learning_rate=0.1)}, 150)
    saddle = surfaces.saddle()
    saddle_rows = _runs(
        saddle,
        {"SGD": book.SGD(learning_rate=0.05), "Momentum α=0.9": book.Momentum(learning_rate=0.01),
         "Adam": book.Adam(learning_rate=0.05)},
        60,
    )
    return plot_panels(
        [lambda axes: draw_trajectories(axes, plateau, plateau_rows, "plateau: the gradient is ~e^(−r²/2)"),
         lambda axes: draw_trajectories(axes, saddle, saddle_rows, "saddle: start 10⁻³ off the ridge")],
        os.path.join(out, "plateaus_and_saddles.png"),
        title="Flat regions: plateaus and saddle points",
    )


def long_term_dependencies(out):
    """Wᵗ (Sec. 8.2.5): gradients vanish for |λ| < 1 and explode for |λ| > 1."""
    surface = surfaces.long_term_dependency()
    rows = _runs(
        surface,
        {"SGD": book.SGD(learning_rate=0.001), "SGD, clipnorm=1": book.SGD(learning_rate=0.02, clipnorm=1.0),
         "Adam": book.Adam(learning_rate=0.05)},
        300,
    )
    return _trajectory_figure_rows(os.path.join(out, "long_term_dependencies.png"), surface, rows,
                                   "Long-term dependencies: J(λ) of Wᵗ with t = 15")


FIGURES = {
    "sgd_with_momentum": sgd_with_momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "newtons_method": newtons_method,
    "cliff_clipping": cliff_clipping,
    "ill_conditioning": ill_conditioning,
    "plateaus_and_saddles": plateaus_and_saddles,
    "long_term_dependencies": long_term_dependencies,
}


def make_figures(out, names=None, verbose=1):
    """Write the figures ``names`` (default all of :data:`FIGURES`) into ``out``;
    return their paths."""
    os.makedirs(out, exist_ok=True)
    paths = []
    for name in names or FIGURES:
        paths.append(FIGURES[name](out))
        if verbose:
            print(f"wrote {paths[-1]}", flush=True)
    return paths


def write_race_report(rows, problems, out, intro=""):
    """Write a race's figures and markdown table into ``out``; return the report's path.

    Files: ``trajectories_<surface>.png`` per 2-D surface raced, ``surface_losses.png``,
    ``loss_curves.png`` (digits), and ``race.md`` with the tables and the figures.
    """
    from keras_optlab.lab.plots import plot_loss_curves, plot_surface_losses, plot_trajectories
    from keras_optlab.lab.racing import format_surface_table, format_table

    os.makedirs(out, exist_ok=True)
    raced = {problem.name: problem for problem in problems if isinstance(problem, surfaces.Surface)}
    surface_rows = [row for row in rows if row.problem in raced]
    digits_rows = [row for row in rows if row.problem not in raced]
    sections = ["# Optimizer race", intro]
    if surface_rows:
        for name, surface in raced.items():
            plot_trajectories(surface, [row for row in surface_rows if row.problem == name],
                              os.path.join(out, f"trajectories_{name}.png"))
        plot_surface_losses(surface_rows, os.path.join(out, "surface_losses.png"), raced)
        sections += [
            "## Textbook surfaces",
            "Every optimizer from the same start, its hyperparameters tuned per surface by one rule "
            "(`keras_optlab.lab.racing.tune_surface_hyperparameters`, stored in `SURFACE_HYPERPARAMETERS`): "
            "the learning rate from 13 rates from 1e-3 to 1 (a factor 1.78 apart) and, for Momentum, "
            "Nesterov and NesterovRMSProp, α from the book's 0.5, 0.9, 0.99 (Sec. 8.3.2); the best is the "
            "one that reaches the target in the fewest steps, then the lowest final loss; everything else "
            "at the class defaults, Newton at its own. Steps to target: the first step from which J stays "
            "within the tolerance of J(θ*) (saddle: below its escape value). Seconds: wall time of the "
            "steps only, after a warm-up that builds the optimizer (and loads or builds its CPU kernels) "
            "and traces the step.",
            format_surface_table(surface_rows),
            "![loss curves on the surfaces](surface_losses.png)",
            *[f"![{name}](trajectories_{name}.png)" for name in raced],
        ]
    if digits_rows:
        plot_loss_curves(digits_rows, os.path.join(out, "loss_curves.png"))
        sections += ["## Digits", format_table(digits_rows), "![loss curves](loss_curves.png)"]
    report = os.path.join(out, "race.md")
    with open(report, "w", encoding="utf-8") as file:
        file.write("\n\n".join(section for section in sections if section) + "\n")
    return report
