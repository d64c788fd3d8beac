"""Optimizer races: the same problem, the same start, one optimizer each.

Goodfellow et al. (2016), ch. 8, compares its algorithms (Sec. 8.3–8.6) by how they
handle the training objective; a race shows it. Every entrant starts from identical
parameters (on digits: identical initial weights and the same shuffling seed), so the
only difference between the curves is the update rule and its hyperparameters.

* :func:`race` runs optimizers on the textbook surfaces of
  :mod:`keras_optlab.lab.surfaces` and on digits, and returns trajectories, loss
  curves, steps to a tolerance, final losses and wall times;
* :func:`digits_race` is the digits-only race;
* :func:`format_table` and :func:`format_surface_table` render rows as markdown.

On the surfaces every optimizer's hyperparameters come from one rule
(:func:`tune_surface_hyperparameters`, stored in :data:`SURFACE_HYPERPARAMETERS`): the
learning rate from a fixed log grid of 13 rates from 1e-3 to 1 and, for the optimizers
with a momentum term, α from the book's 0.5, 0.9, 0.99 (Sec. 8.3.2), picked by fewest
steps to the target, then lowest final loss. A surface run's ``seconds`` are the steps
alone: the optimizer is built (the CPU kernels of :mod:`keras_optlab.accel` built or
loaded) and the step traced before the clock starts.

The module is called ``racing`` so that ``keras_optlab.lab.race`` can be the function.
"""

import dataclasses
import inspect
import numbers
import time

import keras
import numpy as np
from keras import ops

from keras_optlab import _checks
from keras_optlab import optimizers as book
from keras_optlab.lab import surfaces as surfaces_module
from keras_optlab.lab.data import load_digits
from keras_optlab.lab.models import digits_mlp
from keras_optlab.lab.options import (
    DIGITS_BATCH_SIZE,
    DIGITS_EPOCHS,
    DIGITS_HIDDEN_UNITS,
    OPTIMIZER_NAMES,
    RACE_OPTIMIZER_NAMES,
)


# Learning rates for digits with the MLP of `build_mlp`, batch size 32: for each
# algorithm, the lowest validation loss after 10 epochs (seed 0) among three rates a
# factor ~3 apart (SGD 0.03/0.1/0.3; Momentum, Nesterov 0.003/0.01/0.03; AdaGrad
# 0.01/0.05/0.2; RMSProp 0.0003/0.001/0.003; NesterovRMSProp 0.0003/0.001/0.003;
# Adam 0.001/0.003/0.01). All learn at every rate of their grid. The plain gradient
# methods need far more than the class default 0.01. With momentum α = 0.9 the
# steady-state step is ε/(1 − α) = 10ε (Sec. 8.3.2), so Momentum and Nesterov land at a
# tenth of SGD's rate, and NesterovRMSProp at a tenth of RMSProp's.
DIGITS_LEARNING_RATES = {
    "SGD": 0.3,
    "Momentum": 0.03,
    "Nesterov": 0.03,
    "AdaGrad": 0.05,
    "RMSProp": 0.003,
    "NesterovRMSProp": 0.0003,
    "Adam": 0.003,
}


# Hyperparameters of each optimizer on each default surface, all chosen by one rule: the
# output of `tune_surface_hyperparameters(surface)`. Candidates: the 13 learning rates of
# LEARNING_RATE_GRID (1e-3 to 1, a factor 1.78 apart) for every optimizer, crossed with
# the book's common momentum coefficients α ∈ {0.5, 0.9, 0.99} (Sec. 8.3.2) for the three
# with a momentum term; everything else at the class defaults. Best: no divergence, then
# fewest steps to the target (from which J stays within tolerance), then lowest final
# loss. α is part of the rule because no learning rate saves α = 0.9 on the κ = 10
# quadratic: heavy ball's rate is at least √α ≈ 0.95 per step, SGD's best 0.82 (with
# α fixed at 0.9 Momentum's best rate, 0.018, needs 83 steps against SGD's 24; α = 0.5
# brings the bound to 0.71). A rate of 1.0 is the grid's edge: AdaGrad, RMSProp and Adam
# take steps of about ε per coordinate, so larger is faster on a 2-D problem with its
# start a few units away. Newton keeps its defaults (full step, damping 1e-4). Unlisted
# optimizers get their class defaults.
SURFACE_HYPERPARAMETERS = {
    "quadratic": {
        "SGD": {"learning_rate": 0.18},
        "Momentum": {"learning_rate": 0.18, "momentum": 0.5},
        "Nesterov": {"learning_rate": 0.1, "momentum": 0.5},
        "AdaGrad": {"learning_rate": 1.0},
        "RMSProp": {"learning_rate": 0.056},
        "NesterovRMSProp": {"learning_rate": 0.01, "momentum": 0.9},
        "Adam": {"learning_rate": 0.56},
    },
    "rosenbrock": {
        "SGD": {"learning_rate": 0.0018},
        "Momentum": {"learning_rate": 0.0018, "momentum": 0.9},
        "Nesterov": {"learning_rate": 0.001, "momentum": 0.9},
        "AdaGrad": {"learning_rate": 1.0},
        "RMSProp": {"learning_rate": 0.018},
        "NesterovRMSProp": {"learning_rate": 0.001, "momentum": 0.99},
        "Adam": {"learning_rate": 1.0},
    },
    "saddle": {
        "SGD": {"learning_rate": 0.1},
        "Momentum": {"learning_rate": 0.056, "momentum": 0.5},
        "Nesterov": {"learning_rate": 0.056, "momentum": 0.5},
        "AdaGrad": {"learning_rate": 1.0},
        "RMSProp": {"learning_rate": 1.0},
        "NesterovRMSProp": {"learning_rate": 1.0, "momentum": 0.99},
        "Adam": {"learning_rate": 1.0},
    },
    "cliff": {
        "SGD": {"learning_rate": 1.0},
        "Momentum": {"learning_rate": 0.32, "momentum": 0.5},
        "Nesterov": {"learning_rate": 1.0, "momentum": 0.5},
        "AdaGrad": {"learning_rate": 1.0},
        "RMSProp": {"learning_rate": 0.1},
        "NesterovRMSProp": {"learning_rate": 0.1, "momentum": 0.5},
        "Adam": {"learning_rate": 0.1},
    },
    "plateau": {
        "SGD": {"learning_rate": 1.0},
        "Momentum": {"learning_rate": 0.56, "momentum": 0.9},
        "Nesterov": {"learning_rate": 0.32, "momentum": 0.99},
        "AdaGrad": {"learning_rate": 0.56},
        "RMSProp": {"learning_rate": 0.018},
        "NesterovRMSProp": {"learning_rate": 0.0056, "momentum": 0.9},
        "Adam": {"learning_rate": 0.56},
    },
    "long_term_dependency": {
        "SGD": {"learning_rate": 0.001},
        "Momentum": {"learning_rate": 0.001, "momentum": 0.5},
        "Nesterov": {"learning_rate": 0.001, "momentum": 0.5},
        "AdaGrad": {"learning_rate": 0.1},
        "RMSProp": {"learning_rate": 1.0},
        "NesterovRMSProp": {"learning_rate": 0.001, "momentum": 0.9},
        "Adam": {"learning_rate": 0.0056},
    },
}

TOLERANCE = 1e-3
# A surface run stops when the loss is not finite or θ leaves this radius.
DIVERGED_NORM = 1e6


@dataclasses.dataclass
class RaceResult:
    """One optimizer's result on one problem: a row of the race table.

    Attributes:
        name: The optimizer's label in the race.
        problem: What it was trained on (``"digits"`` or a surface's name).
        learning_rate: Its learning rate (``None`` for a schedule).
        train_loss: Final loss (digits: on the whole training set after the last
            epoch; a surface: J at the last point).
        val_loss: Digits: loss on the validation set after the last epoch.
        val_accuracy: Digits: validation accuracy after the last epoch.
        seconds: Wall time of training. Digits: ``model.fit`` (tracing included); a
            surface: the steps only, after the optimizer is built and the step traced.
        loss_history: Digits: training-set loss before training and after every epoch;
            a surface: J(θ_k) for k = 0 … steps (the first value is the same for every
            entrant).
        val_loss_history: Digits: the same for the validation set.
        trajectory: A surface: θ_k, array of shape ``(steps + 1, dim)``. Nesterov's
            stored weights are its look-ahead point θ + αv (see its docstring).
        target: A surface: the loss that counts as solved (J(θ*) + tolerance, or the
            escape value of a surface without minimizer).
        steps_to_target: The first k from which J stays ≤ target to the end of the
            run, or ``None``.
        diverged: A surface: the run stopped on a non-finite loss or a huge θ.
        momentum: The optimizer's momentum coefficient α, or ``None`` without one.
    """

    name: str
    problem: str
    learning_rate: float | None
    train_loss: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    loss_history: list[float]
    val_loss_history: list[float] | None
    trajectory: np.ndarray | None = None
    target: float | None = None
    steps_to_target: int | None = None
    diverged: bool = False
    momentum: float | None = None

    @property
    def final_loss(self):
        return self.train_loss


@dataclasses.dataclass(frozen=True)
class Digits:
    """The digits problem of a race: an MLP on scikit-learn's digits (see
    :func:`digits_race`)."""

    epochs: int = DIGITS_EPOCHS
    batch_size: int = DIGITS_BATCH_SIZE
    hidden_units: tuple = DIGITS_HIDDEN_UNITS
    name: str = "digits"


def default_digits_optimizers():
    """Fresh instances of all seven of keras_optlab's first-order optimizers, by name.

    Learning rates are :data:`DIGITS_LEARNING_RATES`; everything else is the book
    default of each class.
    """
    return {name: getattr(book, name)(learning_rate=lr) for name, lr in DIGITS_LEARNING_RATES.items()}


def build_mlp(input_dim, num_classes, hidden_units=DIGITS_HIDDEN_UNITS, seed=0):
    """The race's MLP: ReLU hidden layers, softmax output, initialized from ``seed``.

    :func:`keras_optlab.lab.models.digits_mlp` with one ``GlorotUniform(seed=seed)``
    for every kernel (the start :data:`DIGITS_LEARNING_RATES` were tuned from).
    """
    return digits_mlp(
        hidden_units, "relu", kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        input_dim=input_dim, num_classes=num_classes, name="mlp",
    )


class _LossHistory(keras.callbacks.Callback):
    """Whole-set training and validation loss after every epoch.

    Keras' ``History`` reports the mean of the minibatch losses seen *during* an epoch,
    while the weights move; this records the loss *at* the weights reached, on the whole
    set, which is what a loss curve should compare across optimizers.
    """

    def __init__(self, x_train, y_train, x_val, y_val):
        super().__init__()
        self._sets = ((x_train, y_train), (x_val, y_val))
        self._loss = keras.losses.SparseCategoricalCrossentropy()
        self.train, self.val = [], []
        self.val_accuracy = None

    def record(self):
        (x_train, y_train), (x_val, y_val) = self._sets
        self.train.append(float(self._loss(y_train, self.model(x_train, training=False))))
        val_probabilities = self.model(x_val, training=False)
        self.val.append(float(self._loss(y_val, val_probabilities)))
        predicted = ops.convert_to_numpy(ops.argmax(val_probabilities, axis=-1))
        self.val_accuracy = float(np.mean(predicted == y_val))

    def on_epoch_end(self, epoch, logs=None):
        self.record()


def _named(optimizers):
    """``(name, spec)`` pairs from a mapping, or from a sequence of optimizers, classes
    or names (named by class)."""
    if isinstance(optimizers, dict):
        return list(optimizers.items())
    pairs = []
    for spec in optimizers:
        if isinstance(spec, str):
            pairs.append((spec, spec))
        elif isinstance(spec, type):
            pairs.append((spec.__name__, spec))
        else:
            pairs.append((type(spec).__name__, spec))
    return pairs


def _momentum(optimizer):
    """The optimizer's momentum coefficient α, or ``None`` when it has none."""
    value = optimizer.get_config().get("momentum")
    return float(value) if isinstance(value, numbers.Real) else None


def _learning_rate(optimizer):
    """The optimizer's constant learning rate, or ``None`` for a schedule."""
    value = optimizer.get_config()["learning_rate"]
    return float(value) if isinstance(value, numbers.Real) else None


def _tuned(name, problem):
    """Keyword arguments of optimizer ``name`` tuned for ``problem`` (may be empty)."""
    if isinstance(problem, Digits):
        return {"learning_rate": DIGITS_LEARNING_RATES[name]} if name in DIGITS_LEARNING_RATES else {}
    return dict(SURFACE_HYPERPARAMETERS.get(problem.name, {}).get(name, {}))


def make_optimizer(spec, problem):
    """A fresh optimizer for one run on ``problem``.

    ``spec`` is the name of a :mod:`keras_optlab.optimizers` class, one of
    :data:`RACE_OPTIMIZER_NAMES` (built with the hyperparameters tuned for ``problem``,
    or its class defaults where none are), an optimizer class (its defaults), an
    optimizer instance (copied through its config, so the instance itself is never
    built), or a callable ``problem -> optimizer``.
    """
    if isinstance(spec, str):
        if spec not in RACE_OPTIMIZER_NAMES:
            raise ValueError(f"Unknown optimizer name {spec!r}; expected one of {RACE_OPTIMIZER_NAMES}.")
        return getattr(book, spec)(**_tuned(spec, problem))
    if isinstance(spec, type):
        return spec()
    if isinstance(spec, keras.optimizers.Optimizer):
        return type(spec).from_config(spec.get_config())
    if callable(spec):
        return spec(problem)
    raise TypeError(f"Cannot make an optimizer from {spec!r}: give a name, a class, an instance or a callable.")


# ----------------------------------------------------------------------- surfaces


def _step_function(surface, variable, optimizer):
    """A zero-argument function that takes one step and returns J before it.

    On TensorFlow the step is a ``tf.function`` (traced once per run): an eager Keras
    ``apply`` costs milliseconds per call, which dominates on 2-D problems.
    """
    if isinstance(optimizer, book.ClosureOptimizer):  # Newton, LBFGS, NonlinearCG

        def loss_fn():
            return surface.function(variable.value)

        def newton_step():
            return optimizer.closure_step(loss_fn, [variable])

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return tf.function(newton_step, autograph=False)
        return newton_step  # eager on JAX and torch, like the first-order steps there
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        @tf.function(autograph=False)
        def step():
            loss, grad = surfaces_module.value_and_gradient(surface.function, variable.value)
            optimizer.apply([grad], [variable])
            return loss

        return step

    def eager_step():
        loss, grad = surfaces_module.value_and_gradient(surface.function, variable.value)
        optimizer.apply([grad], [variable])
        return loss

    return eager_step


# The race's clock (a name of its own, so that a test can stand in for it).
_clock = time.perf_counter


def _warm_up(step, optimizer, variable):
    """Do, untimed, what the first step would otherwise pay for once: build the
    optimizer (its slots, and the CPU kernels of :mod:`keras_optlab.accel`, built or
    loaded on first use — seconds) and, on TensorFlow, trace the step's ``tf.function``
    (without running it, so θ does not move)."""
    if not optimizer.built:
        with keras.name_scope(optimizer.name, caller=optimizer):
            optimizer.build([variable])
    if hasattr(step, "get_concrete_function"):
        step.get_concrete_function()


def run_surface(surface, optimizer, name=None, steps=None, tolerance=TOLERANCE, start=None):
    """Minimize ``surface`` with ``optimizer`` from its start; return a :class:`RaceResult`.

    θ is a float64 ``keras.Variable``. Stops early only on divergence (non-finite loss
    or ‖θ‖ > 1e6). ``seconds`` is the wall time of the steps alone: the optimizer is
    built and the step traced before the clock starts (:func:`_warm_up`).
    """
    steps = surface.steps if steps is None else steps
    theta0 = np.asarray(surface.start if start is None else start, dtype=surfaces_module.DTYPE)
    variable = keras.Variable(theta0, dtype=surfaces_module.DTYPE, name="theta")
    step = _step_function(surface, variable, optimizer)
    _warm_up(step, optimizer, variable)
    points, losses, diverged = [theta0], [], False
    begin = _clock()
    for _ in range(steps):
        losses.append(float(step()))
        point = np.asarray(ops.convert_to_numpy(variable.value), dtype=np.float64)
        points.append(point)
        if not (np.isfinite(losses[-1]) and np.all(np.isfinite(point))) or np.linalg.norm(point) > DIVERGED_NORM:
            diverged = True
            break
    seconds = _clock() - begin
    losses.append(surface.value(points[-1]) if not diverged else float("nan"))
    target = surface.target(tolerance)
    # Running off to infinity solves a surface without minimizer (the saddle): there the
    # finite losses decide; elsewhere a diverged run never settles.
    judged = losses[:-1] if diverged and surface.minimizer is None else losses
    above = [k for k, loss in enumerate(judged) if not loss <= target]
    settled = 0 if not above else above[-1] + 1
    finite = [loss for loss in losses if np.isfinite(loss)]
    return RaceResult(
        name=name or type(optimizer).__name__,
        problem=surface.name,
        learning_rate=_learning_rate(optimizer),
        train_loss=losses[-1] if not diverged else float("nan"),
        val_loss=None,
        val_accuracy=None,
        seconds=seconds,
        loss_history=losses if not diverged else finite,
        val_loss_history=None,
        trajectory=np.stack(points),
        target=target,
        steps_to_target=settled if settled < len(judged) else None,
        diverged=diverged,
        momentum=_momentum(optimizer),
    )


def compare(surface, entrants, steps=None, tolerance=TOLERANCE):
    """Run each ``{label: optimizer}`` on ``surface``, print one line per run (final
    loss, steps to target, last point); return the rows."""
    rows = []
    for name, optimizer in entrants.items():
        row = run_surface(surface, optimizer, name=name, steps=steps, tolerance=tolerance)
        end = ", ".join(f"{v:.3g}" for v in row.trajectory[-1])
        print(f"{_describe(row)}  ends at ({end})", flush=True)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------- digits


def _digits_data(problem, seed):
    x_train, y_train, x_val, y_val = load_digits(seed=seed)
    num_classes = int(y_train.max()) + 1
    template = build_mlp(x_train.shape[1], num_classes, problem.hidden_units, seed=seed)
    return (x_train, y_train, x_val, y_val), template


def _run_digits(problem, data, template, optimizer, name, seed):
    """Train a copy of ``template`` (its initial weights) on digits with ``optimizer``."""
    x_train, y_train, x_val, y_val = data
    model = keras.models.clone_model(template)
    model.set_weights(template.get_weights())
    if isinstance(optimizer, book.ClosureOptimizer):  # Newton, LBFGS, NonlinearCG
        from keras_optlab.second_order import SecondOrder

        model = SecondOrder(model)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    history = _LossHistory(x_train, y_train, x_val, y_val)
    history.set_model(model)
    history.record()
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    model.fit(
        x_train, y_train, epochs=problem.epochs, batch_size=problem.batch_size, shuffle=True,
        callbacks=[history], verbose=0,
    )
    return RaceResult(
        name=name,
        problem=problem.name,
        learning_rate=_learning_rate(optimizer),
        train_loss=history.train[-1],
        val_loss=history.val[-1],
        val_accuracy=history.val_accuracy,
        seconds=time.perf_counter() - start,
        loss_history=history.train,
        val_loss_history=history.val,
        momentum=_momentum(optimizer),
    )


def _describe(row):
    if row.val_loss is not None:
        return (
            f"{row.name:>16} on {row.problem}: train loss {row.train_loss:.4f}  val loss {row.val_loss:.4f}  "
            f"val accuracy {row.val_accuracy:.3f}  ({row.seconds:.1f} s)"
        )
    reached = "not reached" if row.steps_to_target is None else f"{row.steps_to_target} steps"
    return (
        f"{row.name:>24} on {row.problem}: final loss {row.train_loss:.4g}, target {reached}"
        f"{'  DIVERGED' if row.diverged else ''}  ({row.seconds:.1f} s)"
    )


def digits_race(
    optimizers=None,
    epochs=DIGITS_EPOCHS,
    batch_size=DIGITS_BATCH_SIZE,
    hidden_units=DIGITS_HIDDEN_UNITS,
    seed=0,
    verbose=1,
):
    """Train the same MLP on digits with each optimizer; return one row per optimizer.

    The MLP is built once from ``seed``; every entrant gets a copy of it holding those
    initial weights, and minibatches are shuffled with the same seed for all, so the
    curves differ only by the update rule (Goodfellow et al. 2016, Sec. 8.3–8.5).

    Args:
        optimizers: A dict ``{name: optimizer}`` or a sequence of optimizers (named by
            class); each instance is used for one run. Defaults to
            :func:`default_digits_optimizers` (all seven of keras_optlab).
        epochs: Passes over the training set.
        batch_size: Minibatch size.
        hidden_units: Widths of the hidden layers.
        seed: Seeds the split, the initial weights and the shuffling.
        verbose: 0 silent, 1 one line per optimizer.

    Returns:
        A list of :class:`RaceResult`, in the order of ``optimizers``.
    """
    epochs = _checks.integer("epochs", epochs, low=1)
    batch_size = _checks.integer("batch_size", batch_size, low=1)
    seed = _checks.integer("seed", seed)
    verbose = _checks.integer("verbose", verbose, low=0, high=2)
    problem = Digits(epochs=epochs, batch_size=batch_size, hidden_units=tuple(hidden_units))
    data, template = _digits_data(problem, seed)
    rows = []
    for name, optimizer in _named(default_digits_optimizers() if optimizers is None else optimizers):
        rows.append(_run_digits(problem, data, template, optimizer, name, seed))
        if verbose:
            print(_describe(rows[-1]), flush=True)
    return rows


# ----------------------------------------------------------------------- the race


def default_problems(digits=True):
    """The default race: every textbook surface, then digits."""
    problems = list(surfaces_module.default_surfaces().values())
    return problems + [Digits()] if digits else problems


def _problem(spec):
    if isinstance(spec, str):
        if spec == "digits":
            return Digits()
        if spec in surfaces_module.SURFACES:
            return surfaces_module.SURFACES[spec]()
        raise ValueError(
            f"Unknown problem {spec!r}; expected 'digits' or one of {sorted(surfaces_module.SURFACES)}."
        )
    return spec


def race(optimizers=None, problems=None, steps=None, tolerance=TOLERANCE, seed=0, verbose=1):
    """Run every optimizer on every problem; return one :class:`RaceResult` per run.

    Args:
        optimizers: A dict ``{label: spec}`` or a sequence of specs, where a spec is
            an optimizer name (one of :data:`RACE_OPTIMIZER_NAMES`; ``"Adam"``:
            hyperparameters tuned per problem), a class,
            an instance (copied for each run) or a callable ``problem -> optimizer``
            (see :func:`make_optimizer`). Defaults to every optimizer of
            :data:`OPTIMIZER_NAMES`; Newton is left out on digits unless named.
        problems: Surfaces (:class:`~keras_optlab.lab.surfaces.Surface`), surface
            names, ``"digits"`` or :class:`Digits`. Defaults to
            :func:`default_problems`.
        steps: Updates per surface run (default: each surface's ``steps``). Digits
            trains for its ``epochs``.
        tolerance: A surface is solved at J ≤ J(θ*) + ``tolerance``.
        seed: Seeds digits' split, weights and shuffling.
        verbose: 0 silent, 1 a progress bar (``keras.utils.Progbar``), 2 one line
            per run.

    Returns:
        A list of :class:`RaceResult`, problem by problem, optimizers in order.
    """
    steps = _checks.integer("steps", steps, low=1, allow_none=True)
    tolerance = _checks.positive("tolerance", tolerance)
    seed = _checks.integer("seed", seed)
    verbose = _checks.integer("verbose", verbose, low=0, high=2)
    problems = default_problems() if problems is None else [_problem(p) for p in problems]
    entrants = _named(OPTIMIZER_NAMES if optimizers is None else optimizers)
    plan = [
        (problem, name, spec)
        for problem in problems
        for name, spec in entrants
        if not (optimizers is None and name == "Newton" and isinstance(problem, Digits))
    ]
    # Digits data first: a missing scikit-learn fails before any run, not after the surfaces.
    digits_cache = {p: _digits_data(p, seed) for p in problems if isinstance(p, Digits)}
    progress = keras.utils.Progbar(len(plan), unit_name="run") if verbose == 1 else None
    rows = []
    for i, (problem, name, spec) in enumerate(plan):
        optimizer = make_optimizer(spec, problem)
        if isinstance(problem, Digits):
            rows.append(_run_digits(problem, *digits_cache[problem], optimizer, name, seed))
        else:
            rows.append(run_surface(problem, optimizer, name=name, steps=steps, tolerance=tolerance))
        if progress is not None:
            progress.update(i + 1)
        elif verbose:
            print(_describe(rows[-1]), flush=True)
    return rows


LEARNING_RATE_GRID = tuple(float(f"{v:.2g}") for v in np.geomspace(1e-3, 1.0, 13))
# The momentum coefficients the book names as common (Sec. 8.3.2: "0.5, 0.9, and 0.99").
MOMENTUM_GRID = (0.5, 0.9, 0.99)


def tuning_grid(name, grid=LEARNING_RATE_GRID, momentum_grid=MOMENTUM_GRID):
    """The candidate hyperparameters of optimizer ``name`` under the race's rule: every
    learning rate of ``grid``, crossed with every α of ``momentum_grid`` for the
    optimizers that take a ``momentum`` argument (Momentum, Nesterov, NesterovRMSProp);
    an empty ``momentum_grid`` leaves α at the class default."""
    parameters = inspect.signature(getattr(book, name)).parameters
    if "momentum" not in parameters or not momentum_grid:
        return [{"learning_rate": lr} for lr in grid]
    return [{"learning_rate": lr, "momentum": alpha} for lr in grid for alpha in momentum_grid]


def tune_surface_hyperparameters(
    surface, names=OPTIMIZER_NAMES[:-1], grid=LEARNING_RATE_GRID, momentum_grid=MOMENTUM_GRID, tolerance=TOLERANCE,
):
    """The best hyperparameters of each optimizer on ``surface``, by one rule for all.

    The candidates are :func:`tuning_grid` (13 learning rates from 1e-3 to 1, a factor
    1.78 apart; α ∈ {0.5, 0.9, 0.99} for the momentum methods); everything else stays at
    the class default. Best: a run that does not diverge, then the fewest steps to the
    target (J(θ*) + ``tolerance``, or the escape value), then the lowest final loss, then
    the earliest candidate. Returns ``{name: {"learning_rate": ..., ...}}``, the form of
    :data:`SURFACE_HYPERPARAMETERS`.
    """
    best = {}
    for name in names:
        scores = []
        for index, candidate in enumerate(tuning_grid(name, grid, momentum_grid)):
            row = run_surface(surface, getattr(book, name)(**candidate), tolerance=tolerance)
            reached = row.steps_to_target if row.steps_to_target is not None else np.inf
            scores.append((row.diverged, reached, row.train_loss if not row.diverged else np.inf, index, candidate))
        best[name] = min(scores, key=lambda score: score[:4])[4]
    return best


def tune_surface_learning_rates(surface, names=OPTIMIZER_NAMES[:-1], grid=LEARNING_RATE_GRID, tolerance=TOLERANCE):
    """The best learning rate of each optimizer on ``surface`` under the rule of
    :func:`tune_surface_hyperparameters`, α held at its class default (0.9).
    Returns ``{name: learning_rate}``."""
    tuned = tune_surface_hyperparameters(surface, names, grid, momentum_grid=(), tolerance=tolerance)
    return {name: candidate["learning_rate"] for name, candidate in tuned.items()}


# ----------------------------------------------------------------------- tables


def _markdown(header, align, lines):
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"] + lines)


def _lr_text(row):
    return "schedule" if row.learning_rate is None else f"{row.learning_rate:g}"


def format_table(rows):
    """Render digits race rows as a markdown table (one line per optimizer)."""
    header = ["optimizer", "learning rate", "train loss", "val loss", "val accuracy", "seconds"]
    lines = [
        f"| {row.name} | {_lr_text(row)} | {row.train_loss:.4f} | {row.val_loss:.4f} | "
        f"{row.val_accuracy:.3f} | {row.seconds:.1f} |"
        for row in rows
    ]
    return _markdown(header, ["---", *["---:"] * 5], lines)


def format_surface_table(rows):
    """Render surface race rows as a markdown table: problem, optimizer, learning
    rate, momentum α (— without one), final loss, steps to the target (— when not
    reached), seconds (the steps only, see :func:`run_surface`)."""
    header = ["problem", "optimizer", "learning rate", "α", "final loss", "steps to target", "seconds"]
    lines = []
    for row in rows:
        final = "diverged" if row.diverged else f"{row.train_loss:.3g}"
        reached = "—" if row.steps_to_target is None else str(row.steps_to_target)
        alpha = "—" if row.momentum is None else f"{row.momentum:g}"
        lines.append(
            f"| {row.problem} | {row.name} | {_lr_text(row)} | {alpha} | {final} | {reached} | {row.seconds:.2f} |"
        )
    return _markdown(header, ["---", "---", "---:", "---:", "---:", "---:", "---:"], lines)
