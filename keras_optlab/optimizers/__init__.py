"""The book's optimizers (Goodfellow et al. 2016, Algorithms 8.1–8.8), one per file.

All are ``keras.optimizers.Optimizer`` subclasses registered as ``keras_optlab>Name``.
The first-order ones need only Keras (any backend); ``Newton`` differentiates with
``tf.GradientTape`` and exists where TensorFlow is installed.
"""

from keras_optlab.optimizers.adagrad import AdaGrad
from keras_optlab.optimizers.adam import Adam
from keras_optlab.optimizers.base import BookOptimizer
from keras_optlab.optimizers.momentum import Momentum
from keras_optlab.optimizers.nesterov import Nesterov
from keras_optlab.optimizers.nesterov_rmsprop import NesterovRMSProp
from keras_optlab.optimizers.rmsprop import RMSProp
from keras_optlab.optimizers.sgd import SGD

__all__ = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "NesterovRMSProp", "Adam", "BookOptimizer"]

try:
    import tensorflow  # noqa: F401
except ImportError:  # a JAX-only machine: the first-order optimizers still work
    pass
else:
    from keras_optlab.optimizers.newton import Newton

    __all__.append("Newton")
