"""keras_optlab.lab.race and plots: a tiny digits race, its table and its figure."""

import math

import numpy as np
import pytest

from keras_optlab import optimizers, schedules
from keras_optlab.lab import (
    DIGITS_LEARNING_RATES,
    RaceResult,
    default_digits_optimizers,
    digits_race,
    format_table,
    plot_loss_curves,
)

EPOCHS = 2


@pytest.fixture(scope="module")
def rows():
    # The same optimizer twice: same initial weights and same shuffling must give the
    # same curve, bit for bit.
    entrants = {
        "SGD": optimizers.SGD(learning_rate=0.3),
        "SGD again": optimizers.SGD(learning_rate=0.3),
        "Adam": optimizers.Adam(learning_rate=0.003),
    }
    return digits_race(entrants, epochs=EPOCHS, verbose=0)


def test_rows_are_finite_and_learn(rows):
    assert [row.name for row in rows] == ["SGD", "SGD again", "Adam"]
    for row in rows:
        assert row.problem == "digits"
        assert len(row.loss_history) == len(row.val_loss_history) == EPOCHS + 1
        values = [row.train_loss, row.val_loss, row.seconds, *row.loss_history, *row.val_loss_history]
        assert all(math.isfinite(v) for v in values)
        assert row.loss_history[-1] == row.train_loss and row.val_loss_history[-1] == row.val_loss
        # Strictly lower after every epoch, and far below the start.
        assert all(later < earlier for earlier, later in zip(row.loss_history, row.loss_history[1:]))
        assert row.train_loss < 0.5 * row.loss_history[0]
        assert 0.8 < row.val_accuracy <= 1.0


def test_every_entrant_starts_from_the_same_weights(rows):
    # Different optimizers, same loss before the first step: same initial weights.
    assert len({row.loss_history[0] for row in rows}) == 1
    assert len({row.val_loss_history[0] for row in rows}) == 1
    # An untrained 10-class softmax is near ln 10.
    assert rows[0].loss_history[0] == pytest.approx(math.log(10), rel=0.5)
    assert rows[0].loss_history == rows[1].loss_history
    assert rows[0].val_loss_history == rows[1].val_loss_history
    assert rows[2].loss_history[1:] != rows[0].loss_history[1:]


def test_sequence_of_optimizers_is_named_by_class():
    entrants = [optimizers.SGD(learning_rate=0.0)]
    (row,) = digits_race(entrants, epochs=1, verbose=0)
    assert row.name == "SGD" and row.learning_rate == 0.0
    # ε = 0 leaves the weights where they started.
    assert row.loss_history[1] == pytest.approx(row.loss_history[0], rel=1e-6)


def test_default_optimizers_are_all_seven():
    entrants = default_digits_optimizers()
    assert list(entrants) == ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "NesterovRMSProp", "Adam"]
    for name, optimizer in entrants.items():
        assert type(optimizer) is getattr(optimizers, name)
        assert float(np.asarray(optimizer.learning_rate)) == pytest.approx(DIGITS_LEARNING_RATES[name])
    # Fresh instances every call: an optimizer is built for one model only.
    assert default_digits_optimizers()["Adam"] is not entrants["Adam"]


def test_format_table(rows):
    lines = format_table(rows).splitlines()
    assert lines[0].startswith("| optimizer | learning rate | train loss")
    assert len(lines) == 2 + len(rows)
    assert lines[2].startswith("| SGD | 0.3 | ")
    assert all(line.count("|") == 7 for line in lines)


def _row(name, losses):
    return RaceResult(name, "digits", None, losses[-1], losses[-1], 0.9, 1.0, losses, losses)


def test_format_table_marks_schedules():
    assert "| A | schedule |" in format_table([_row("A", [2.0, 1.0])])


def test_schedule_learning_rate_is_reported_as_none():
    decay = schedules.LinearDecay(0.3, 0.03, decay_steps=45)
    (row,) = digits_race({"SGD decay": optimizers.SGD(learning_rate=decay)}, epochs=1, verbose=0)
    assert row.learning_rate is None and row.train_loss < row.loss_history[0]


def test_plot_loss_curves_writes_a_png(tmp_path):
    path = tmp_path / "nested" / "curves.png"
    result = plot_loss_curves([_row("A", [2.3, 1.0, 0.5]), _row("B", [2.3, 0.8, 0.1])], path)
    assert result == path
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_plot_loss_curves_needs_rows(tmp_path):
    with pytest.raises(ValueError, match="rows"):
        plot_loss_curves([], tmp_path / "empty.png")


@pytest.mark.backend_agnostic
def test_default_race_runs_newton_on_every_backend():
    """Newton's step is written in keras.ops on each backend's autodiff: the default
    surface race includes it on TensorFlow, JAX and PyTorch, and it solves the
    quadratic in its one step there as on TensorFlow."""
    from keras_optlab.lab import race

    rows = race(problems=["quadratic"], steps=3, verbose=0)
    names = [row.name for row in rows]
    assert "Newton" in names and "Adam" in names and "SGD" in names, names
    newton = next(row for row in rows if row.name == "Newton")
    assert newton.steps_to_target == 1, newton
