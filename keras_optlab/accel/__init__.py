"""Optional speed paths for keras_optlab's optimizers on the TensorFlow backend.

The optimizers never import this package: it registers itself with
:mod:`keras_optlab.optimizers.base` when ``keras_optlab`` is imported with TensorFlow
installed, and without it every optimizer runs its ``keras.ops`` rule.
"""
