"""keras_optlab: chapter 8 of *Deep Learning* (Goodfellow, Bengio & Courville) for Keras 3.

Public surface only: everything here is a re-export. What needs TensorFlow (Newton,
SecondOrder, curvature, callbacks) or Keras Tuner (tuning) is exported where those are
installed, so that the optimizers, initializers and clipping also load on a machine
with only JAX and Keras.
"""

from keras_optlab import calibration, clipping, initializers, optimizers, schedules
from keras_optlab.calibration import activation_report, calibrate
from keras_optlab.initializers import (
    FanInUniform,
    GateBias,
    MarginalBias,
    NormalizedUniform,
    Scaled,
    SparseK,
)
from keras_optlab.optimizers import (
    SGD,
    AdaGrad,
    Adam,
    Momentum,
    Nesterov,
    NesterovRMSProp,
    RMSProp,
)
from keras_optlab.schedules import LinearDecay

try:
    import tensorflow  # noqa: F401
except ImportError:
    pass
else:
    from keras_optlab import accel, callbacks, curvature  # accel registers the TF speed paths
    from keras_optlab.callbacks import CurvatureMonitor, GradientStats
    from keras_optlab.optimizers import Newton
    from keras_optlab.second_order import SecondOrder

try:
    import keras_tuner  # noqa: F401
except ImportError:
    pass
else:
    from keras_optlab import tuning
    from keras_optlab.tuning import InitSearch, init_hyperparameters, search_init

__version__ = "0.1.0"
