"""Curvature of a Keras model's loss: Hessian-vector products and what they tell.

Goodfellow et al. (2016), Sec. 8.2.1 (ill-conditioning) and 8.6 (second-order methods).
TensorFlow, JAX and PyTorch backends (per-backend differentiation in
:mod:`keras_optlab.curvature.autodiff`, everything else written once).

* :func:`hvp` — H v of the compiled loss (Pearlmutter 1994);
* :func:`gradient_curvature` — gᵀg, gᵀHg, the critical learning rate 2gᵀg/gᵀHg and the
  predicted change ½ε²gᵀHg − εgᵀg of a gradient step (Eq. 8.10);
* :func:`top_eigenvalues` — Lanczos or power iteration on HVPs;
* :func:`hessian_trace` — Hutchinson's estimator;
* :func:`gauss_newton_product` — G v, the Gauss-Newton matrix (Newton's ``curvature="gauss_newton"``).

Every function checks its arguments at the call (``TypeError`` / ``ValueError`` naming
the argument and echoing the value; the batch by :func:`check_batch`) and, on a backend
without automatic differentiation (``numpy``, ``openvino``), raises ``RuntimeError``
naming ``keras.backend.backend()``.

Low level, on a zero-argument loss callable: :func:`loss_and_gradient`,
:func:`hvp_from_loss`, :func:`gradient_hvp`; and :func:`loss_closure` (a model's loss as
such a callable), :func:`model_loss_and_gradient`.
"""

from keras_optlab.curvature.hvp import (
    check_batch,
    gauss_newton_product,
    gradient_hvp,
    hvp,
    hvp_from_loss,
    loss_and_gradient,
    loss_closure,
    model_loss_and_gradient,
)
from keras_optlab.curvature.along_gradient import gradient_curvature
from keras_optlab.curvature.spectrum import TraceEstimate, hessian_trace, top_eigenvalues

__all__ = [
    "TraceEstimate",
    "check_batch",
    "gauss_newton_product",
    "gradient_curvature",
    "gradient_hvp",
    "hessian_trace",
    "hvp",
    "hvp_from_loss",
    "loss_and_gradient",
    "loss_closure",
    "model_loss_and_gradient",
    "top_eigenvalues",
]
