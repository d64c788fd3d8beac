"""keras_optlab: chapter 8 of *Deep Learning* (Goodfellow, Bengio & Courville) for Keras 3.

Public surface only: every name here is a re-export, loaded on first use (PEP 562), so
``import keras_optlab`` imports neither Keras nor TensorFlow until a name is used —
which is what keeps ``optlab --help`` fast. ``keras_optlab.Adam`` loads
:mod:`keras_optlab.optimizers`; ``keras_optlab.curvature`` the curvature package.
What needs TensorFlow (Newton, SecondOrder, curvature, callbacks) or Keras Tuner
(tuning) is absent on a machine without it (``hasattr`` is False; using it raises an
``AttributeError`` naming the missing dependency); the optimizers, initializers and clipping load with only JAX or
PyTorch and Keras.
"""

import importlib

__version__ = "0.1.0"

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
    except (ImportError, AttributeError) as error:
        # A missing optional dependency (TensorFlow for Newton, Keras Tuner for tuning):
        # `hasattr(keras_optlab, name)` is False and the message says what is missing.
        raise AttributeError(f"keras_optlab.{name} is unavailable here: {error}") from error
    globals()[name] = value  # the next access is a plain module attribute
    return value


def __dir__():
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])
