"""keras_optlab: chapter 8 of *Deep Learning* (Goodfellow, Bengio & Courville) for Keras 3.

Public surface only: every name here is a re-export, loaded on first use (PEP 562), so
``import keras_optlab`` imports neither Keras nor TensorFlow until a name is used —
which is what keeps ``optlab --help`` fast.

Importing it still registers every serializable class (optimizers, initializers, the
schedule, ``SecondOrder``) with Keras, so ``keras.saving.load_model`` finds
``keras_optlab>Adam`` in a new process: at once if Keras is already imported, otherwise
the moment Keras is (a one-shot import hook, :class:`_RegisterAfterKeras`). Callbacks are
not registered: Keras never serializes them. ``keras_optlab.Adam`` loads
:mod:`keras_optlab.optimizers`; ``keras_optlab.curvature`` the curvature package.
What needs TensorFlow (Newton, SecondOrder, curvature, callbacks) or Keras Tuner
(tuning) is absent on a machine without it (``hasattr`` is False; using it raises an
``AttributeError`` naming the missing dependency); the optimizers, initializers and clipping load with only JAX or
PyTorch and Keras.
"""

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

__version__ = "0.1.0"

from keras_optlab import _versions  # noqa: E402  (the standard library only)

# Public name -> the module that defines it ("" for a subpackage or module itself).
_EXPORTS = {
    **dict.fromkeys(("activation_report", "calibrate"), "keras_optlab.calibration"),
    **dict.fromkeys(
        ("FanInUniform", "GateBias", "MarginalBias", "NormalizedUniform", "Scaled", "SparseK"),
        "keras_optlab.initializers",
    ),
    **dict.fromkeys(
        ("SGD", "AdaGrad", "Adam", "Momentum", "Nesterov", "NesterovRMSProp", "RMSProp", "Newton", "NonlinearCG",
         "LBFGS"),
        "keras_optlab.optimizers",
    ),
    "LinearDecay": "keras_optlab.schedules",
    **dict.fromkeys(("CurvatureMonitor", "GradientStats", "SwapAveragedWeights"), "keras_optlab.callbacks"),
    "SecondOrder": "keras_optlab.second_order",
    **dict.fromkeys(("InitSearch", "init_hyperparameters", "search_init"), "keras_optlab.tuning"),
}
_SUBMODULES = (
    "accel",
    "averaging",
    "calibration",
    "callbacks",
    "clipping",
    "curvature",
    "initializers",
    "optimizers",
    "schedules",
    "second_order",
    "tuning",
)

__all__ = sorted([*_EXPORTS, *_SUBMODULES])


def __getattr__(name):
    if name not in _EXPORTS and name not in _SUBMODULES:
        raise AttributeError(f"module 'keras_optlab' has no attribute {name!r}")
    module = _EXPORTS.get(name) or f"keras_optlab.{name}"
    try:
        value = importlib.import_module(module)
        if name in _EXPORTS:
            value = getattr(value, name)
    except _versions.DependencyVersionError:
        raise  # a dependency below its floor: said as it is, not as a missing name
    except (ImportError, AttributeError) as error:
        # A missing optional dependency (TensorFlow for Newton, Keras Tuner for tuning):
        # `hasattr(keras_optlab, name)` is False and the message says what is missing.
        raise AttributeError(f"keras_optlab.{name} is unavailable here: {error}") from error
    globals()[name] = value  # the next access is a plain module attribute
    return value


def __dir__():
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])


# The modules whose import registers every `keras_optlab>Name` class with Keras.
_SERIALIZABLE = (
    "keras_optlab.optimizers",
    "keras_optlab.initializers",
    "keras_optlab.schedules",
    "keras_optlab.second_order",
)
_registered = False


def _initializing(but=None):
    """Whether a keras_optlab submodule (other than ``but``) is half-imported:
    registering then would import it again, half-made."""
    return any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
        if name.startswith("keras_optlab.") and name != but
    )


def _register_serializables(just_imported=None):
    """Import the modules that register our classes, once Keras is imported and no
    module of ours is half-imported (else the end of the outermost one does it)."""
    global _registered
    if _registered or "keras" not in sys.modules:
        return
    # Keras (numpy, TensorFlow) below the declared floors: an ImportError naming the
    # versions, before any module of ours runs on it (it imports nothing).
    _versions.check_imported()
    if _initializing(but=just_imported):
        return
    _registered = True
    _remove_hook()
    for module in _SERIALIZABLE:
        try:
            importlib.import_module(module)
        except ImportError as error:  # a missing optional dependency: its classes stay unknown
            warnings.warn(f"keras_optlab could not register the classes of {module}: {error}", stacklevel=2)


class _RegisteringLoader(importlib.abc.Loader):
    """A module's own loader, followed by :func:`_register_serializables` once the module
    has run. Every other loader attribute (``get_resource_reader``, ``is_package``, ...)
    is the wrapped loader's, so ``importlib.resources`` works as before."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _register_serializables(just_imported=module.__name__)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Until the classes are registered: ``keras`` and every keras_optlab submodule are
    found as usual (``importlib.machinery.PathFinder``), with their loader wrapped in
    :class:`_RegisteringLoader`. So the registration runs at the end of ``import
    keras`` — or, when Keras was first imported from inside one of our modules, at the
    end of the outermost of them (then nothing of ours is half-imported)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" and not fullname.startswith("keras_optlab."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


def _remove_hook():
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _RegisterAfterKeras)]


_versions.check_python()
if "keras" in sys.modules:
    _register_serializables()
else:
    _versions.check_installed("keras")  # from its dist-info folder: Keras is not imported
    _remove_hook()  # a reload of this module installs one hook, not two
    sys.meta_path.insert(0, _RegisterAfterKeras())
