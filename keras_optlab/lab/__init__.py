"""The lab: optimizers of Goodfellow et al. (2016), ch. 8, raced on real problems, as figures.

Needs the ``lab`` extra (``pip install keras-optlab[lab]``: matplotlib, scikit-learn),
imported only when a function that uses it runs.
"""

from keras_optlab.lab._optional import MissingExtraError
from keras_optlab.lab.data import load_digits
from keras_optlab.lab.plots import plot_loss_curves
from keras_optlab.lab.race import (
    DIGITS_LEARNING_RATES,
    RaceResult,
    build_mlp,
    default_digits_optimizers,
    digits_race,
    format_table,
)

__all__ = [
    "DIGITS_LEARNING_RATES",
    "MissingExtraError",
    "RaceResult",
    "build_mlp",
    "default_digits_optimizers",
    "digits_race",
    "format_table",
    "load_digits",
    "plot_loss_curves",
]
