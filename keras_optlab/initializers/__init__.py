"""Initialization strategies of Goodfellow, Bengio & Courville (2016), Sec. 8.4.

* `scaled`: `FanInUniform` (1/√m), `NormalizedUniform` (Glorot & Bengio 2010), `Scaled`.
* `sparse`: `SparseK`, exactly k non-zero incoming weights per unit (Martens 2010).
* `bias`: `GateBias` (gates start open; Jozefowicz et al. 2015) and `MarginalBias`
  (output bias that reproduces the targets' marginals).

All are registered `keras.initializers.Initializer` subclasses (package "keras_optlab"),
so models using them save to `.keras` files and export as SavedModels.
"""

from keras_optlab.initializers.bias import GateBias, MarginalBias
from keras_optlab.initializers.scaled import FanInUniform, NormalizedUniform, Scaled
from keras_optlab.initializers.sparse import SparseK

__all__ = ["FanInUniform", "GateBias", "MarginalBias", "NormalizedUniform", "Scaled", "SparseK"]
