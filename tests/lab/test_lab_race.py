"""keras_optlab.lab.race over surfaces, make_optimizer, the figures and `optlab figures`."""

import numpy as np
import pytest

from keras_optlab import optimizers
from keras_optlab.cli import main
from keras_optlab.lab import (
    Digits,
    format_surface_table,
    make_optimizer,
    plot_curvature,
    race,
    surfaces,
)
from keras_optlab.lab.figures import FIGURES, make_figures, write_race_report


def _is_png(path):
    data = path.read_bytes()
    return data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


@pytest.fixture(scope="module")
def rows():
    problems = [surfaces.quadratic(), surfaces.saddle()]
    return race(["SGD", "Adam", "Newton"], problems, steps=30, verbose=0)


def test_race_returns_one_row_per_optimizer_and_surface(rows):
    assert [(r.problem, r.name) for r in rows] == [
        (p, n) for p in ("quadratic", "saddle") for n in ("SGD", "Adam", "Newton")
    ]
    for row in rows:
        assert row.trajectory.shape == (31, 2)
        np.testing.assert_array_equal(row.trajectory[0], (-4.5, -1.5) if row.problem == "quadratic" else (1.5, 1e-3))
        assert len(row.loss_history) == 31 and row.final_loss == row.loss_history[-1]
        assert row.seconds > 0 and row.val_loss is None


def test_steps_to_target(rows):
    by = {(r.problem, r.name): r for r in rows}
    assert by["quadratic", "Newton"].steps_to_target == 1
    assert by["saddle", "Newton"].steps_to_target is None  # lands on the saddle, J = 0
    assert by["saddle", "Newton"].train_loss == pytest.approx(0.0, abs=1e-12)
    row = by["quadratic", "SGD"]
    k = row.steps_to_target
    assert k is not None and all(loss <= row.target for loss in row.loss_history[k:])
    assert row.loss_history[k - 1] > row.target


def test_surface_table(rows):
    lines = format_surface_table(rows).splitlines()
    assert lines[0] == "| problem | optimizer | learning rate | α | final loss | steps to target | seconds |"
    assert len(lines) == 2 + len(rows)
    # Newton has no momentum (α —) and never reaches the saddle's target (steps —).
    assert any(line.startswith("| saddle | Newton | 1 | — | ") and line.split("|")[6].strip() == "—"
               for line in lines)


def test_make_optimizer_copies_instances_and_uses_tuned_rates():
    template = optimizers.Momentum(learning_rate=0.02, momentum=0.5)
    surface = surfaces.quadratic()
    first, second = make_optimizer(template, surface), make_optimizer(template, surface)
    assert first is not template and first is not second
    assert first.get_config()["momentum"] == 0.5
    tuned = make_optimizer("SGD", surface)
    assert float(np.asarray(tuned.learning_rate)) == pytest.approx(0.18)
    assert float(np.asarray(make_optimizer("Adam", Digits()).learning_rate)) == pytest.approx(0.003)
    with pytest.raises(ValueError, match="Unknown optimizer"):
        make_optimizer("Adadelta", surface)
    with pytest.raises(ValueError, match="Unknown problem"):
        race(["SGD"], ["nowhere"], verbose=0)


def test_diverging_run_stops():
    (row,) = race({"SGD too fast": optimizers.SGD(learning_rate=0.5)}, [surfaces.quadratic(20.0)], steps=500,
                  verbose=0)
    assert row.diverged and row.steps_to_target is None and len(row.trajectory) < 501


def test_race_report_and_figures(rows, tmp_path):
    report = write_race_report(rows, [surfaces.quadratic(), surfaces.saddle()], tmp_path, "intro")
    text = open(report).read()
    assert "| quadratic | SGD |" in text and "trajectories_saddle.png" in text
    for name in ("trajectories_quadratic.png", "trajectories_saddle.png", "surface_losses.png"):
        assert _is_png(tmp_path / name)


def test_plot_curvature(tmp_path):
    path = plot_curvature(2.0, 4.0, tmp_path / "c.png", np.linspace(0, 1.5, 7), np.zeros(7))
    assert _is_png(path)


@pytest.mark.slow
def test_every_figure(tmp_path):
    paths = make_figures(tmp_path, verbose=0)
    assert [p.split("/")[-1] for p in map(str, paths)] == [f"{name}.png" for name in FIGURES]
    assert all(_is_png(tmp_path / f"{name}.png") for name in FIGURES)


def test_optlab_figures_only(tmp_path, capsys):
    assert main(["figures", "--out", str(tmp_path), "--only", "cliff_clipping"]) == 0
    assert _is_png(tmp_path / "cliff_clipping.png")
    assert "cliff_clipping.png" in capsys.readouterr().out


def test_optlab_curvature_on_a_saved_model(tmp_path, capsys):
    import keras

    from keras_optlab.lab import build_mlp, load_digits
    from keras_optlab.lab.curvature_report import measured_changes

    x, y, _, _ = load_digits()
    model = build_mlp(64, 10, hidden_units=(8,), seed=0)
    model.compile(optimizers.SGD(learning_rate=0.1), "sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "d.npz", inputs=x[:200], labels=y[:200])
    argv = ["curvature", str(tmp_path / "m.keras"), str(tmp_path / "d.npz"), "--x-key", "inputs",
            "--y-key", "labels", "--k", "2", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "critical learning rate" in printed and "ε = 0.1" in printed
    assert _is_png(tmp_path / "out" / "curvature.png")
    assert "top Hessian eigenvalues" in (tmp_path / "out" / "curvature.md").read_text()
    # Second order is exact to O(ε³): tiny steps match the prediction ½ε²gᵀHg − εgᵀg.
    from keras_optlab.curvature import gradient_curvature

    loaded = keras.models.load_model(tmp_path / "m.keras")
    report = gradient_curvature(loaded, x[:200], y[:200])
    eps = 1e-3
    (change,) = measured_changes(loaded, x[:200], y[:200], [eps])
    predicted = 0.5 * eps**2 * report["gHg"] - eps * report["g_norm_sq"]
    assert change == pytest.approx(predicted, rel=0.05)
    # The default keys x, y are not in this file: one line naming `x_key`, exit 2.
    assert main(["curvature", str(tmp_path / "m.keras"), str(tmp_path / "d.npz")]) == 2
    assert "`x_key`" in capsys.readouterr().err


# ----------------------------------------------------------------- tuning and timing


def test_quadratic_table_is_the_tuning_rule_and_momentum_is_not_slower():
    from keras_optlab.lab import racing

    surface = surfaces.quadratic()
    tuned = racing.tune_surface_hyperparameters(surface, names=["SGD", "Momentum"])
    assert tuned == {name: racing.SURFACE_HYPERPARAMETERS["quadratic"][name] for name in ("SGD", "Momentum")}
    rows = {row.name: row for row in race(["SGD", "Momentum"], [surface], verbose=0)}
    assert rows["Momentum"].steps_to_target <= rows["SGD"].steps_to_target
    # With α held at 0.9, no learning rate of the grid catches SGD on κ = 10: the rate
    # of heavy ball is at least √α ≈ 0.95 per step, SGD's (κ − 1)/(κ + 1) ≈ 0.82.
    (lr,) = racing.tune_surface_learning_rates(surface, names=["Momentum"]).values()
    (slow,) = race({"Momentum": optimizers.Momentum(learning_rate=lr, momentum=0.9)}, [surface], verbose=0)
    assert slow.steps_to_target > rows["SGD"].steps_to_target


def test_tuning_grid_crosses_momentum_for_momentum_methods():
    from keras_optlab.lab import racing

    assert len(racing.tuning_grid("SGD")) == len(racing.LEARNING_RATE_GRID) == 13
    assert len(racing.tuning_grid("Adam")) == 13
    grid = racing.tuning_grid("NesterovRMSProp")
    assert len(grid) == 39 and {c["momentum"] for c in grid} == {0.5, 0.9, 0.99}
    assert racing.tuning_grid("Momentum", momentum_grid=()) == racing.tuning_grid("SGD")


@pytest.mark.slow
def test_surface_table_is_the_tuning_rule():
    from keras_optlab.lab import racing

    # Every surface, for one optimizer on the step-size grid alone (Adam) and one on the
    # step-size x alpha grid (Nesterov): a third of the full table's runs (the whole
    # table took 123 s of the suite's 20-minute budget on 2 cores); the quadratic's SGD
    # and Momentum rows are pinned above.
    names = ["Adam", "Nesterov"]
    for name, surface in surfaces.default_surfaces().items():
        expected = {n: racing.SURFACE_HYPERPARAMETERS[name][n] for n in names}
        assert racing.tune_surface_hyperparameters(surface, names=names) == expected, name


def test_surface_timing_excludes_the_build_and_the_trace(monkeypatch):
    """A stand-in clock that only the optimizer's build and the step's tracing advance:
    the seconds of a run must not see either (no timed assertion: the clock is fake)."""
    import dataclasses

    from keras_optlab.lab import racing

    clock = [0.0]
    monkeypatch.setattr(racing, "_clock", lambda: clock[0])

    class SlowBuild(optimizers.Momentum):
        def build(self, var_list):
            if not self.built:
                clock[0] += 1000.0  # a kernel build
            super().build(var_list)

    quadratic = surfaces.quadratic()

    def function(theta):  # Python runs only while the step is traced
        clock[0] += 1000.0
        return quadratic.function(theta)

    surface = dataclasses.replace(quadratic, function=function)
    row = racing.run_surface(surface, SlowBuild(learning_rate=0.01), steps=5)
    assert clock[0] >= 2000.0  # the build and the trace did happen ...
    assert row.seconds == 0.0  # ... before the clock started
    assert len(row.trajectory) == 6 and row.trajectory[1][0] != row.trajectory[0][0]
