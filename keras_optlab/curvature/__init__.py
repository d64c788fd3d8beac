"""Curvature of a Keras model's loss: Hessian-vector products and what they tell.

Goodfellow et al. (2016), Sec. 8.2.1 (ill-conditioning) and 8.6 (second-order methods).
TensorFlow, JAX and PyTorch backends (per-backend differentiation in
:mod:`keras_optlab.curvature.autodiff`, everything else written once).

* :func:`hvp` — H v of the compiled loss (Pearlmutter 1994);
* :func:`gradient_curvature` — gᵀg, gᵀHg, the critical learning rate 2gᵀg/gᵀHg and the
  predicted change ½ε²gᵀHg − εgᵀg of a gradient step (Eq. 8.10);
* :func:`top_eigenvalues` — Lanczos or power iteration on HVPs;
* :func:`hessian_trace` — Hutchinson's or Hutch++ estimator (``method=``);
* :func:`hessian_diagonal` — Hutchinson's diagonal estimator (Bekas et al. 2007);
* :func:`hessian_spectral_density` — the eigenvalue density by stochastic Lanczos
  quadrature (Ghorbani et al. 2019), a :class:`SpectralDensity`;
* :func:`gauss_newton_product` — G v, the Gauss-Newton matrix (Newton's ``curvature="gauss_newton"``).

All of them are built on :func:`operator` — H, G or F of the model's loss as a
:class:`~keras_optlab.curvature.operators.CurvatureOperator` (``@`` on vectors and
matrices, sums, scaling, damping, ``to_scipy()``, ``to_dense()``, ``per_layer()``) —
and take one batch, arrays of any length with ``batch_size=``, or a data set
(``tf.data.Dataset``, ``keras.utils.PyDataset``, a re-iterable of batches, a callable
returning a generator): the curvature of the mean loss over all samples
(:mod:`keras_optlab.curvature.data`), split over the devices of a ``tf.distribute``
strategy or a ``keras.distribution`` (:mod:`keras_optlab.curvature.devices`).

The model-level functions take ``curvature="hessian"`` (default), ``"gauss_newton"``
(G = JᵀH_LJ) or ``"fisher"`` (the empirical Fisher (1/N) Σᵢ gᵢgᵢᵀ) — :data:`CURVATURES`
— and :func:`gradient_curvature`, :func:`top_eigenvalues` and :func:`hessian_trace`
take ``per_layer=True`` (each layer's diagonal block, a dict keyed by layer name;
:func:`layer_blocks`).

The model-level functions never return a figure computed from a non-finite loss,
gradient or product: they raise :class:`NonFiniteError` (a ``ValueError``) instead.

Every function checks its arguments at the call (``TypeError`` / ``ValueError`` naming
the argument and echoing the value; the batch by :func:`check_batch`) and, on a backend
without automatic differentiation (``numpy``, ``openvino``), raises ``RuntimeError``
naming ``keras.backend.backend()``.

Low level, on a zero-argument loss callable: :func:`loss_and_gradient`,
:func:`hvp_from_loss`, :func:`gradient_hvp`; and :func:`loss_closure` (a model's loss as
such a callable), :func:`model_loss_and_gradient`.
"""

from keras_optlab.curvature.hvp import (
    CURVATURES,
    NonFiniteError,
    check_batch,
    closure_product,
    gauss_newton_product,
    gradient_hvp,
    hvp,
    hvp_from_loss,
    loss_and_gradient,
    loss_closure,
    model_loss_and_gradient,
    per_example_losses,
)
from keras_optlab.curvature.operators import CurvatureOperator, LinearOperator, layer_blocks, operator
from keras_optlab.curvature.along_gradient import gradient_curvature
from keras_optlab.curvature.estimators import (
    DiagonalEstimate,
    TraceEstimate,
    estimate_diagonal,
    estimate_trace,
    hessian_diagonal,
    hessian_trace,
)
from keras_optlab.curvature.spectrum import lanczos, top_eigenvalues
from keras_optlab.curvature.density import SpectralDensity, estimate_density, hessian_spectral_density

__all__ = [
    "CURVATURES",
    "CurvatureOperator",
    "DiagonalEstimate",
    "LinearOperator",
    "NonFiniteError",
    "SpectralDensity",
    "TraceEstimate",
    "check_batch",
    "closure_product",
    "estimate_density",
    "estimate_diagonal",
    "estimate_trace",
    "gauss_newton_product",
    "gradient_curvature",
    "gradient_hvp",
    "hessian_diagonal",
    "hessian_spectral_density",
    "hessian_trace",
    "hvp",
    "hvp_from_loss",
    "lanczos",
    "layer_blocks",
    "loss_and_gradient",
    "loss_closure",
    "model_loss_and_gradient",
    "operator",
    "per_example_losses",
    "top_eigenvalues",
]
