"""The lab's names and defaults, and the initialization search's command-line options.

Standard library only: ``optlab --help`` (and every subcommand's ``--help``) builds its
parser from this module without importing Keras, TensorFlow or Keras Tuner. The modules
that implement the names (:mod:`~keras_optlab.lab.racing`,
:mod:`~keras_optlab.lab.surfaces`, :mod:`~keras_optlab.lab.figures`,
:mod:`~keras_optlab.lab.init_search`, :mod:`keras_optlab.tuning`) are tested to agree
with it.
"""

__all__ = [
    "BACKEND_NAMES",
    "DIGITS_BATCH_SIZE",
    "DIGITS_EPOCHS",
    "DIGITS_HIDDEN_UNITS",
    "DIGITS_SEARCH_DEFAULTS",
    "FIGURE_NAMES",
    "OPTIMIZER_NAMES",
    "RACE_OPTIMIZER_NAMES",
    "SURFACE_NAMES",
    "TUNER_NAMES",
    "add_digits_search_arguments",
]

# The Keras backends keras_optlab's curvature tools run on (keras_optlab.curvature.autodiff).
BACKEND_NAMES = ("tensorflow", "jax", "torch")

# The default race (keras_optlab.lab.race without `optimizers`), in the book's order:
# the seven first-order optimizers and Newton (which races on the surfaces only).
OPTIMIZER_NAMES = ("SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "NesterovRMSProp", "Adam", "Newton")

# Every optimizer of keras_optlab.optimizers, the names `race` (and `optlab race
# --optimizers`) take: the default race's, then nonlinear conjugate gradients (Alg. 8.9)
# and L-BFGS (Sec. 8.6.3), which race only when named.
RACE_OPTIMIZER_NAMES = (*OPTIMIZER_NAMES, "NonlinearCG", "LBFGS")

# The textbook surfaces of Sec. 8.2 (keras_optlab.lab.surfaces.SURFACES), in order.
SURFACE_NAMES = ("quadratic", "rosenbrock", "saddle", "cliff", "plateau", "long_term_dependency")

# The notes' figures (keras_optlab.lab.figures.FIGURES), in order.
FIGURE_NAMES = (
    "sgd_with_momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    "newtons_method",
    "cliff_clipping",
    "ill_conditioning",
    "plateaus_and_saddles",
    "long_term_dependencies",
)

# The race on digits: passes over the training set, minibatch size, hidden layers.
DIGITS_EPOCHS = 10
DIGITS_BATCH_SIZE = 32
DIGITS_HIDDEN_UNITS = (64,)

# Keras Tuner's searches that keras_optlab.tuning.search_init runs (keras_optlab.tuning.TUNERS).
TUNER_NAMES = ("random", "bayesian", "hyperband")

# The initialization search on digits (keras_optlab.lab.init_search.digits_search).
DIGITS_SEARCH_DEFAULTS = {
    "trials": 24,
    "epochs": 10,
    "depth": 10,
    "width": 64,
    "learning_rate": 0.05,
    "batch_size": 64,
    "tuner": "random",
    "seed": 0,
}


def add_digits_search_arguments(parser, default_out, *, count_type, rate_type, out_type=str, verbose_default=1):
    """The options of ``tuning/search_digits.py`` and ``optlab tune`` on an argparse parser.

    The argparse types belong to the command line, which passes its own
    (``keras_optlab.cli.positive_int`` and ``positive_float``): the lab does not import
    the CLI, which imports it.

    Args:
        parser: an ``argparse.ArgumentParser`` (or a subcommand's parser).
        default_out: the default of ``--out``.
        count_type: argparse type of the counts (trials, epochs, depth, width, batch size).
        rate_type: argparse type of the learning rate.
        out_type: argparse type of ``--out`` (the CLI's refuses a path that is a file).
        verbose_default: the default of ``--verbose``; ``None`` (``optlab tune``) leaves
            the choice to the caller, which picks 1 on a terminal and 2 otherwise.
    """
    d = DIGITS_SEARCH_DEFAULTS
    parser.add_argument("--trials", type=count_type, default=d["trials"],
                        help=f"trials of the search (default {d['trials']})")
    parser.add_argument("--epochs", type=count_type, default=d["epochs"],
                        help=f"epochs per trial (default {d['epochs']})")
    parser.add_argument("--depth", type=count_type, default=d["depth"],
                        help=f"tanh hidden layers (default {d['depth']})")
    parser.add_argument("--width", type=count_type, default=d["width"],
                        help=f"units per hidden layer (default {d['width']})")
    parser.add_argument("--learning-rate", type=rate_type, default=d["learning_rate"],
                        help=f"SGD learning rate (default {d['learning_rate']})")
    parser.add_argument("--batch-size", type=count_type, default=d["batch_size"],
                        help=f"minibatch size (default {d['batch_size']})")
    parser.add_argument("--tuner", choices=TUNER_NAMES, default=d["tuner"],
                        help="Keras Tuner search (default random)")
    parser.add_argument("--seed", type=int, default=d["seed"],
                        help="seed of the split, the tuner, the weights and the minibatches (default 0)")
    parser.add_argument("--out", type=out_type, default=default_out, metavar="DIR",
                        help=f"results folder; its search/ subfolder is resumed on a rerun (default {default_out})")
    parser.add_argument("--overwrite", action="store_true", help="start the search afresh instead of resuming")
    shown = ("1 when stdout is a terminal, else 2: no progress bars in a pipe or a log file"
             if verbose_default is None else verbose_default)
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=verbose_default,
                        help=f"0 silent, 1 progress bars, 2 one line per epoch (default {shown})")
