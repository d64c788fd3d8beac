"""The lab: optimizers of Goodfellow et al. (2016), ch. 8, raced on textbook problems and
real data, as figures.

* :mod:`~keras_optlab.lab.surfaces` — the problems of Sec. 8.2 as ``keras.ops`` functions;
* :func:`race` (module :mod:`~keras_optlab.lab.racing`) — every optimizer on every
  problem: trajectories, loss curves, steps to a tolerance, final loss, wall time;
* :mod:`~keras_optlab.lab.plots` — trajectories over contours, loss curves, the
  curvature figure;
* :mod:`~keras_optlab.lab.figures` — the notes' figures, regenerated;
* :mod:`~keras_optlab.lab.data` and :mod:`~keras_optlab.lab.models` — the one digits
  loader (:func:`load_digits`) and the one digits MLP builder (:func:`digits_mlp`);
* :mod:`~keras_optlab.lab.init_search` — the initialization search on digits
  (``optlab tune``; needs Keras Tuner, so it is not imported here).

Needs the ``lab`` extra (``pip install keras-optlab[lab]``: matplotlib, scikit-learn),
imported only when a function that uses it runs.
"""

from keras_optlab.lab import surfaces
from keras_optlab.lab._optional import MissingExtraError
from keras_optlab.lab.data import load_digits
from keras_optlab.lab.models import digits_mlp
from keras_optlab.lab.plots import plot_curvature, plot_loss_curves, plot_surface_losses, plot_trajectories
from keras_optlab.lab.racing import (
    DIGITS_LEARNING_RATES,
    OPTIMIZER_NAMES,
    Digits,
    RaceResult,
    build_mlp,
    compare,
    default_digits_optimizers,
    default_problems,
    digits_race,
    format_surface_table,
    format_table,
    make_optimizer,
    race,
    run_surface,
)
from keras_optlab.lab.surfaces import Surface

__all__ = [
    "DIGITS_LEARNING_RATES",
    "Digits",
    "MissingExtraError",
    "OPTIMIZER_NAMES",
    "RaceResult",
    "Surface",
    "build_mlp",
    "compare",
    "default_digits_optimizers",
    "default_problems",
    "digits_mlp",
    "digits_race",
    "format_surface_table",
    "format_table",
    "load_digits",
    "make_optimizer",
    "plot_curvature",
    "plot_loss_curves",
    "plot_surface_losses",
    "plot_trajectories",
    "race",
    "run_surface",
    "surfaces",
]
