"""Lazy imports of the ``lab`` extra (matplotlib, scikit-learn).

The core package (optimizers, schedules, initializers) needs neither; only the lab and
the ``optlab`` command do, so they import them on first use through :func:`require`.
"""

import importlib


class MissingExtraError(ImportError):
    """An optional dependency of the ``lab`` extra is not installed."""


def require(module, feature):
    """Import and return ``module``, or raise :class:`MissingExtraError` saying how to get it.

    Args:
        module: Dotted module name, e.g. ``"sklearn.datasets"``.
        feature: What needs it, for the message, e.g. ``"load_digits"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.split(".")[0]
        raise MissingExtraError(
            f"{feature} needs `{package}`, which is not installed. "
            "Install the lab extra: `pip install keras-optlab[lab]`."
        ) from error
