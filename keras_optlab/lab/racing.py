"""Optimizer races: the same model, the same start, the same minibatches, one optimizer each.

Goodfellow et al. (2016), ch. 8, compares its algorithms (Sec. 8.3–8.5) by how they
handle the training objective; a race shows it on a real problem. Every entrant trains
a copy of one model from identical initial weights, with the same shuffling seed, so
the only difference between the curves is the update rule (and its hyperparameters).

:func:`digits_race` runs the race on scikit-learn's digits; :func:`format_table`
renders its rows as markdown.
"""

import dataclasses
import numbers
import time

import keras
import numpy as np
from keras import ops

from keras_optlab import optimizers as book
from keras_optlab.lab.data import load_digits

DIGITS_EPOCHS = 10
DIGITS_BATCH_SIZE = 32
DIGITS_HIDDEN_UNITS = (64,)

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


@dataclasses.dataclass
class RaceResult:
    """One optimizer's result on one problem: a row of the race table.

    Attributes:
        name: The optimizer's label in the race.
        problem: What it was trained on (``"digits"``).
        learning_rate: Its learning rate (``None`` for a schedule).
        train_loss: Loss on the whole training set after the last epoch.
        val_loss: Loss on the validation set after the last epoch.
        val_accuracy: Accuracy on the validation set after the last epoch.
        seconds: Wall time of training (``model.fit``, tracing included).
        loss_history: Training-set loss before training and after every epoch
            (``epochs + 1`` values; the first is the same for every entrant).
        val_loss_history: The same for the validation set.
    """

    name: str
    problem: str
    learning_rate: float | None
    train_loss: float
    val_loss: float
    val_accuracy: float
    seconds: float
    loss_history: list[float]
    val_loss_history: list[float]


def default_digits_optimizers():
    """Fresh instances of all seven of keras_optlab's first-order optimizers, by name.

    Learning rates are :data:`DIGITS_LEARNING_RATES`; everything else is the book
    default of each class.
    """
    return {name: getattr(book, name)(learning_rate=lr) for name, lr in DIGITS_LEARNING_RATES.items()}


def build_mlp(input_dim, num_classes, hidden_units=DIGITS_HIDDEN_UNITS, seed=0):
    """A ReLU multilayer perceptron with softmax output, initialized from ``seed``."""
    initializer = keras.initializers.GlorotUniform(seed=seed)
    layers = [keras.Input((input_dim,))]
    for i, units in enumerate(hidden_units):
        layers.append(
            keras.layers.Dense(units, activation="relu", kernel_initializer=initializer, name=f"hidden_{i}")
        )
    layers.append(keras.layers.Dense(num_classes, activation="softmax", kernel_initializer=initializer, name="output"))
    return keras.Sequential(layers, name="mlp")


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
    """``(name, optimizer)`` pairs from a mapping or from a sequence of optimizers."""
    if isinstance(optimizers, dict):
        return list(optimizers.items())
    return [(type(optimizer).__name__, optimizer) for optimizer in optimizers]


def _learning_rate(optimizer):
    """The optimizer's constant learning rate, or ``None`` for a schedule."""
    value = optimizer.get_config()["learning_rate"]
    return float(value) if isinstance(value, numbers.Real) else None


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
    x_train, y_train, x_val, y_val = load_digits(seed=seed)
    num_classes = int(y_train.max()) + 1
    template = build_mlp(x_train.shape[1], num_classes, hidden_units, seed=seed)
    initial_weights = template.get_weights()
    entrants = _named(default_digits_optimizers() if optimizers is None else optimizers)
    rows = []
    for name, optimizer in entrants:
        model = keras.models.clone_model(template)
        model.set_weights(initial_weights)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        history = _LossHistory(x_train, y_train, x_val, y_val)
        history.set_model(model)
        history.record()
        keras.utils.set_random_seed(seed)
        start = time.perf_counter()
        model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, shuffle=True, callbacks=[history], verbose=0)
        seconds = time.perf_counter() - start
        row = RaceResult(
            name=name,
            problem="digits",
            learning_rate=_learning_rate(optimizer),
            train_loss=history.train[-1],
            val_loss=history.val[-1],
            val_accuracy=history.val_accuracy,
            seconds=seconds,
            loss_history=history.train,
            val_loss_history=history.val,
        )
        rows.append(row)
        if verbose:
            print(
                f"{name:>16}: train loss {row.train_loss:.4f}  val loss {row.val_loss:.4f}  "
                f"val accuracy {row.val_accuracy:.3f}  ({row.seconds:.1f} s)",
                flush=True,
            )
    return rows


def format_table(rows):
    """Render race rows as a markdown table (one line per optimizer)."""
    header = "| optimizer | learning rate | train loss | val loss | val accuracy | seconds |"
    lines = [header, "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lr = "schedule" if row.learning_rate is None else f"{row.learning_rate:g}"
        lines.append(
            f"| {row.name} | {lr} | {row.train_loss:.4f} | {row.val_loss:.4f} | "
            f"{row.val_accuracy:.3f} | {row.seconds:.1f} |"
        )
    return "\n".join(lines)
