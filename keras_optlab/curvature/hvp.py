"""Hessian-vector products (Goodfellow et al. 2016, Sec. 8.2.1, 8.6; Pearlmutter 1994).

H v is the derivative of the gradient along v: ∇_θ((∇_θ J)ᵀv) with v held constant
(double backprop, TensorFlow and PyTorch) or the forward-mode derivative of the gradient
(``jax.jvp(jax.grad(J))``, JAX). It costs a few gradients and never forms H. The
per-backend pieces are :mod:`keras_optlab.curvature.autodiff`; everything here is
written once, in ``keras.ops``, for TensorFlow, JAX and PyTorch.

Two levels:

* on a zero-argument loss callable: :func:`loss_and_gradient`, :func:`hvp_from_loss`,
  :func:`gradient_hvp` (the textbook surfaces, custom training loops, Newton);
* on a compiled Keras model: :func:`loss_closure` (the one place where a model's loss is
  built), :func:`model_loss_and_gradient`, :func:`hvp` and the internal
  :func:`model_oracle`, whose functions are traced once per model and reused
  (``tf.function`` on TensorFlow, ``jax.jit`` on JAX; eager on PyTorch).

**Which loss.** The model's compiled loss, as Keras 3 exposes it publicly:
``model.compute_loss(x=x, y=y, y_pred=model(x, training=False), sample_weight=...,
training=False)``. That is the loss ``fit`` minimizes, including the losses Keras adds
to it (``model.losses``: weight and activity regularizers, ``add_loss``) and a subclass'
own ``compute_loss``, without loss scaling. The forward pass runs in inference mode
(``training=False``): dropout is off and batch normalization uses its moving statistics,
so that H is the Hessian of a deterministic function of the weights. (For a model with
several outputs, Keras' ``compute_loss`` also updates the per-output loss trackers that
``fit`` shows; nothing else is changed.)

Backends: TensorFlow, JAX and PyTorch. On any other (``numpy``, ``openvino``) every
public function here raises a ``RuntimeError`` at the call, naming
``keras.backend.backend()``. On JAX, a model being trained by ``fit`` keeps its weights
in the trainer's state: callbacks call ``model.jax_state_sync()`` before measuring.

**Checked at the call** (``TypeError`` for a wrong type, ``ValueError`` for a wrong
value, the argument named and its value echoed): the model (built, compiled, with
trainable variables), the batch (:func:`check_batch`: ``x``, ``y`` and
``sample_weight`` convert to tensors, each has a batch axis, and all hold the same
number of samples), ``vectors`` (a list shaped like the variables), the loss callables
and variables of the low-level functions; and the loss itself, which must be a scalar
(a vector "loss" would otherwise be summed silently by ``tf.GradientTape``).
``tf.Variable`` objects are accepted as variables on TensorFlow only.

**No figure from a non-finite loss.** Every model-level function (:func:`hvp` and, in
the sibling modules, ``gradient_curvature``, ``top_eigenvalues``, ``hessian_trace``,
``hessian_spectral_density``, ``per_layer`` included) raises :class:`NonFiniteError`, a
``ValueError``, when the loss on the batch is NaN or ±inf (a diverged model, NaN in the
data), or the loss is finite but the gradient or a product is not; it never returns a
number computed from them. The check is made on the device, in the traced function that
computes the product (one small transfer per product). The low-level functions on a
loss callable (and :func:`model_loss_and_gradient`) return what autodiff gives.

**Which curvature** (``curvature=`` of every model-level function, :data:`CURVATURES`):

* ``"hessian"`` — H = ∇²_θ J, the loss above;
* ``"gauss_newton"`` — G = Jᵀ H_L J (Schraudolph 2002; Martens 2010, Sec. 4.2), the loss
  split at the model's outputs z = ``model(x, training=False)``: J the Jacobian ∂z/∂θ,
  H_L the Hessian of ``model.compute_loss(..., y_pred=z)`` in z. Terms of the loss that
  do not go through z (``model.losses``: weight regularizers) add no curvature to G.
  One exception: a cross-entropy on probabilities (``from_logits=False``: categorical,
  sparse categorical, binary, and their focal forms). Split at the probabilities p,
  −log p_y has H_L = e_y e_yᵀ / p_y², so G would be (1/N) Σᵢ gᵢgᵢᵀ, the empirical Fisher
  below, not the Gauss-Newton matrix of the logits (the matching-loss split, where G
  is the Fisher of the model's distribution; Martens 2014). When the model's
  last layer applies the activation the loss expects (``activation="softmax"`` or a
  ``Softmax`` layer; ``"sigmoid"``), the split is made at the logits (:func:`output_link`);
  otherwise such a loss is refused with a ``ValueError`` that names both ways out
  (``from_logits=True``, or ``curvature="fisher"``);
* ``"fisher"`` — the empirical Fisher F = (1/N) Σᵢ gᵢgᵢᵀ (Martens 2014, "New insights
  and perspectives on the natural gradient method", Sec. 11), gᵢ = ∇_θ(wᵢ ℓᵢ) the
  gradient of example i's weighted loss (:func:`per_example_losses`; ``model.losses``
  excluded). With Keras' default reduction (``"sum_over_batch_size"``, the batch loss is
  (1/N) Σᵢ wᵢℓᵢ) the mean of the gᵢ is the gradient of the data term.
"""

from keras_optlab.curvature.autodiff import for_backend
from keras_optlab.curvature.operators import CurvatureOperator
from keras_optlab.curvature.oracle import (  # noqa: F401 - public names of this module since issue 15
    CURVATURES,
    PRODUCT_NAMES,
    NonFiniteError,
    check_batch,
    check_callable,
    check_curvature,
    check_product,
    check_variables,
    check_vectors,
    closure_product,
    is_float_dtype,
    loss_closure,
    model_loss_and_gradient,
    model_oracle,
    output_link,
    per_example_loss_fn,
    per_example_losses,
    refuse_nonfinite,
    to_tensors,
)


def loss_and_gradient(loss_fn, variables):
    """(J, ∇J) for a zero-argument ``loss_fn`` differentiated w.r.t. ``variables``
    (``keras.Variable``s; ``tf.Variable``s too on TensorFlow). Missing gradients become
    zeros. ``loss_fn()`` must return a scalar."""
    autodiff = for_backend("keras_optlab.curvature.loss_and_gradient")
    check_callable("loss_fn", loss_fn)
    return autodiff.loss_and_gradient(loss_fn, check_variables(variables))


def hvp_from_loss(loss_fn, variables, vectors):
    """(J, ∇J, H v) of a zero-argument ``loss_fn`` at the current ``variables``.

    ``vectors`` is a list shaped like ``variables``; so are the gradient and the
    product.
    """
    autodiff = for_backend("keras_optlab.curvature.hvp_from_loss")
    check_callable("loss_fn", loss_fn)
    variables = check_variables(variables)
    vectors = check_vectors(vectors, variables)
    return autodiff.hvp(loss_fn, variables, lambda grads: vectors)


def gradient_hvp(loss_fn, variables):
    """(J, g, H g) with g = ∇J: the curvature along the gradient itself.

    What the book's second-order expansion of a gradient step needs (Goodfellow et al.
    2016, Sec. 8.2.1, Eq. 8.10: J(θ − εg) ≈ J(θ) − εgᵀg + ½ε²gᵀHg), for the cost of
    one Hessian-vector product: the gradient is reused as v.
    """
    autodiff = for_backend("keras_optlab.curvature.gradient_hvp")
    check_callable("loss_fn", loss_fn)
    return autodiff.hvp(loss_fn, check_variables(variables), lambda grads: grads)


def gauss_newton_product(outputs_fn, output_loss_fn, variables, vectors):
    """G v with G = Jᵀ H_L J, the (generalized) Gauss-Newton matrix (Schraudolph 2002;
    Martens 2010, Sec. 4.2), for ``outputs_fn()`` → model outputs z(θ) and
    ``output_loss_fn(z)`` → the loss as a function of those outputs.

    G is positive semi-definite wherever the loss is convex in z (squared error,
    cross-entropy on logits), unlike H; it drops the term of H that comes from the
    network's own curvature. Computed without forming anything: J v by forward-mode
    differentiation, H_L (J v) through the loss alone, Jᵀ(·) by one backward pass.
    Curvature of terms that do not go through z (weight regularizers) is not included.
    ``output_loss_fn(z)`` must return a scalar.
    """
    autodiff = for_backend("keras_optlab.curvature.gauss_newton_product")
    check_callable("outputs_fn", outputs_fn)
    check_callable("output_loss_fn", output_loss_fn)
    variables = check_variables(variables)
    vectors = check_vectors(vectors, variables)
    return autodiff.gauss_newton_product(outputs_fn, output_loss_fn, variables, vectors)


def hvp(model, x, y, vectors, sample_weight=None, curvature="hessian", batch_size=None):
    """Hessian-vector product H v of the compiled loss of ``model`` on ``(x, y)``
    (or G v, F v: ``curvature``), over one batch or a whole data set.

    H is the Hessian of J(θ) = ``model.compute_loss(x, y, model(x, training=False),
    sample_weight)`` (regularization losses included, as in ``fit``) with respect to
    ``model.trainable_variables``, at their current values — on a data set, of the mean
    of that loss over all samples (:mod:`keras_optlab.curvature.operators`). Computed by
    double backpropagation or forward-over-reverse (Pearlmutter 1994; Goodfellow et al.
    2016, Sec. 8.2.1 and 8.6.1), a few gradients' cost per batch, H never formed. Traced
    once per model and reused. TensorFlow, JAX and PyTorch backends; under
    ``tf.distribute`` or ``keras.distribution`` the batch is split over the devices.

    Args:
        model: A built, compiled ``keras.Model``.
        x, y: Inputs and targets (arrays), or ``x`` a data set and ``y`` ``None``
            (:mod:`keras_optlab.curvature.data`).
        vectors: List of tensors shaped like ``model.trainable_variables``.
        sample_weight: Optional sample weights, as in ``fit`` (with arrays).
        curvature: ``"hessian"`` (H v, default), ``"gauss_newton"`` (G v = Jᵀ H_L J v)
            or ``"fisher"`` (F v = (1/N) Σᵢ gᵢ (gᵢᵀv), the empirical Fisher); see the
            module's docstring for what each includes.
        batch_size: With arrays, the samples per pass (``None``: all at once).

    Returns:
        List of backend tensors shaped like ``model.trainable_variables``.

    Raises:
        NonFiniteError: (a ``ValueError``) the loss on a batch is NaN or ±inf, or the
            loss is finite and the gradient or the product is not.
        ValueError: ``curvature="gauss_newton"`` with a cross-entropy on probabilities
            whose logits cannot be read off the model (see the module's docstring).

    Example:

    >>> v = [keras.ops.ones_like(w) for w in model.trainable_variables]
    >>> hv = hvp(model, x, y, v)
    >>> hv_all = hvp(model, x_train, y_train, v, batch_size=256)   # the training set
    """
    op = CurvatureOperator(model, x, y, curvature, batch_size, sample_weight, what="keras_optlab.curvature.hvp")
    vectors = check_vectors(vectors, model.trainable_variables)
    return op.apply(vectors)
