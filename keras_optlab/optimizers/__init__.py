"""The book's optimizers (Goodfellow et al. 2016, Algorithms 8.1–8.9, Sec. 8.6.3), one per file.

All are ``keras.optimizers.Optimizer`` subclasses registered as ``keras_optlab>Name``.
The first-order ones (8.1–8.7) take gradients from any Keras training loop; ``Newton``
(8.8), ``NonlinearCG`` (8.9) and ``LBFGS`` (8.6.3) need the loss itself
(``ClosureOptimizer``: train through ``keras_optlab.SecondOrder`` or call ``minimize``)
and differentiate it on the TensorFlow, JAX or PyTorch backend.
"""

from keras_optlab.optimizers.adagrad import AdaGrad
from keras_optlab.optimizers.adam import Adam
from keras_optlab.optimizers.base import BookOptimizer
from keras_optlab.optimizers.closure import ClosureOptimizer, LineSearchOptimizer
from keras_optlab.optimizers.lbfgs import LBFGS
from keras_optlab.optimizers.momentum import Momentum
from keras_optlab.optimizers.nesterov import Nesterov
from keras_optlab.optimizers.nesterov_rmsprop import NesterovRMSProp
from keras_optlab.optimizers.newton import Newton
from keras_optlab.optimizers.nonlinear_cg import NonlinearCG
from keras_optlab.optimizers.rmsprop import RMSProp
from keras_optlab.optimizers.sgd import SGD

__all__ = [
    "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "NesterovRMSProp", "Adam", "Newton", "NonlinearCG", "LBFGS",
    "BookOptimizer", "ClosureOptimizer", "LineSearchOptimizer",
]
