"""keras_optlab: chapter 8 of *Deep Learning* (Goodfellow, Bengio & Courville) for Keras 3.

Public surface only: everything here is a re-export.
"""

from keras_optlab import calibration, callbacks, clipping, curvature, initializers, optimizers, schedules, tuning
from keras_optlab.callbacks import CurvatureMonitor, GradientStats
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
    Newton,
    RMSProp,
)
from keras_optlab.schedules import LinearDecay
from keras_optlab.training import SecondOrder
from keras_optlab.tuning import InitSearch, init_hyperparameters, search_init

__version__ = "0.1.0"
