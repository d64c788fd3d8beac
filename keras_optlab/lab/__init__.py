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
* :mod:`~keras_optlab.lab.burgers` — the physics-informed Burgers problem of Raissi et
  al. (2019): exact solution (Cole–Hopf), training data, the 2-[20×8]-1 network, the
  PINN loss closure for ``minimize`` and its adapters for scipy, torch.optim and optax;
* :mod:`~keras_optlab.lab.init_search` — the initialization search on digits
  (``optlab tune``; needs Keras Tuner, so it is not imported here).

Needs the ``lab`` extra (``pip install keras-optlab[lab]``: matplotlib, scikit-learn),
imported only when a function that uses it runs. The names below load on first use
(PEP 562): :mod:`~keras_optlab.lab.options` (the names and defaults the ``optlab``
parser shows) imports no Keras, so ``optlab --help`` does not either.
"""

import importlib

# Public name -> the module of the lab that defines it.
_EXPORTS = {
    "MissingExtraError": "keras_optlab.lab._optional",
    "load_digits": "keras_optlab.lab.data",
    "digits_mlp": "keras_optlab.lab.models",
    **dict.fromkeys(("plot_curvature", "plot_loss_curves", "plot_surface_losses", "plot_trajectories"),
                    "keras_optlab.lab.plots"),
    **dict.fromkeys(
        (
            "DIGITS_LEARNING_RATES",
            "OPTIMIZER_NAMES",
            "Digits",
            "RaceResult",
            "build_mlp",
            "compare",
            "default_digits_optimizers",
            "default_problems",
            "digits_race",
            "format_surface_table",
            "format_table",
            "make_optimizer",
            "race",
            "run_surface",
        ),
        "keras_optlab.lab.racing",
    ),
    "Surface": "keras_optlab.lab.surfaces",
    **dict.fromkeys(("BurgersData", "input_derivatives", "pinn_loss", "pinn_model"), "keras_optlab.lab.burgers"),
}

# Submodules reachable as attributes of the lab (loaded on first use).
_MODULES = ("surfaces", "burgers")


def __getattr__(name):
    if name in _MODULES:
        value = importlib.import_module(f"keras_optlab.lab.{name}")
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'keras_optlab.lab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS, *_MODULES})


__all__ = [
    "BurgersData",
    "DIGITS_LEARNING_RATES",
    "Digits",
    "MissingExtraError",
    "OPTIMIZER_NAMES",
    "RaceResult",
    "Surface",
    "build_mlp",
    "burgers",
    "compare",
    "default_digits_optimizers",
    "default_problems",
    "digits_mlp",
    "digits_race",
    "format_surface_table",
    "format_table",
    "input_derivatives",
    "load_digits",
    "make_optimizer",
    "pinn_loss",
    "pinn_model",
    "plot_curvature",
    "plot_loss_curves",
    "plot_surface_losses",
    "plot_trajectories",
    "race",
    "run_surface",
    "surfaces",
]
