"""The book's ill-conditioning criterion along the gradient, measured on a Keras model.

A gradient step θ ← θ − εg changes the cost, to second order, by

    J(θ − εg) − J(θ) ≈ ½ε² gᵀHg − ε gᵀg          (Goodfellow et al. 2016, Eq. 8.10)

so the step makes things worse once ½ε²gᵀHg exceeds εgᵀg, i.e. when ε exceeds the
critical learning rate 2gᵀg / gᵀHg (Sec. 8.2.1; along the gradient, the step that
minimizes the quadratic model is gᵀg / gᵀHg, Eq. 4.10). gᵀHg costs one Hessian-vector
product (Pearlmutter 1994). TensorFlow, JAX and PyTorch backends.
"""

import math

from keras_optlab import _checks
from keras_optlab.curvature.oracle import refuse_nonfinite
from keras_optlab.curvature.operators import CurvatureOperator


def gradient_curvature(model, x, y=None, learning_rate=None, sample_weight=None, curvature="hessian", per_layer=False,
                       batch_size=None):
    """Gradient norm and curvature along the gradient of the compiled loss on (x, y).

    Symbols of Sec. 8.2.1: g = ∇_θ J at the current weights, H = ∇²_θ J, ε =
    ``learning_rate``. J is ``model.compute_loss`` on ``model(x, training=False)``
    (regularization losses included). Dot products in float64.

    ``curvature="gauss_newton"`` or ``"fisher"`` puts G or F (see
    :mod:`keras_optlab.curvature.hvp`) in place of H: ``gHg`` is then gᵀGg or gᵀFg (g
    is still the gradient of J), the curvature of the Gauss-Newton or Fisher quadratic
    model along −g. ``per_layer=True`` restricts g and the matrix to each layer's
    parameters (:func:`~keras_optlab.curvature.spectrum.layer_blocks`): g_lᵀ H_ll g_l,
    the curvature of a step −εg_l that moves that layer alone (one product per layer).

    On a data set (arrays cut by ``batch_size``, or ``x`` a data set) J, g and H are
    those of the mean loss over all samples (:mod:`keras_optlab.curvature.operators`):
    one pass for g, one for H g.

    Args:
        model: Built, compiled ``keras.Model``.
        x, y: The data: one batch, arrays cut by ``batch_size``, or ``x`` a data set
            (``y`` ``None``).
        learning_rate: Optional float ε >= 0; adds ``predicted_change``.
        sample_weight: Optional sample weights.
        curvature: ``"hessian"`` (default), ``"gauss_newton"`` or ``"fisher"``.
        per_layer: Return the report of each layer's block instead.
        batch_size: With arrays, the samples per pass (``None``: all at once).

    Returns:
        Dict of Python floats (with ``per_layer``, a dict ``{layer name: such a
        dict}``):

        * ``loss`` — J(θ);
        * ``g_norm_sq`` — gᵀg;
        * ``gHg`` — gᵀHg;
        * ``critical_learning_rate`` — 2gᵀg / gᵀHg, ``inf`` when gᵀHg <= 0 (no step
          size along −g makes the quadratic model worse);
        * ``predicted_change`` (only given ``learning_rate``) — ½ε²gᵀHg − εgᵀg, Eq. 8.10.

    Raises:
        NonFiniteError: (a ``ValueError``) when the loss on (x, y) is NaN or ±inf, or
            the loss is finite but g or the product is not — no figure is returned
            from a diverged model or a batch holding NaN
            (:class:`~keras_optlab.curvature.hvp.NonFiniteError`).
    """
    what = "keras_optlab.curvature.gradient_curvature"
    op = CurvatureOperator(model, x, y, curvature, batch_size, sample_weight, what=what)
    if learning_rate is not None:
        learning_rate = _checks.number("learning_rate", learning_rate, low=0.0)
    per_layer = _checks.boolean("per_layer", per_layer)
    if op.curvature == "hessian" and not per_layer and op.single_batch:
        # One batch on one device: one traced function computes g and H g together.
        loss, g_norm_sq, ghg = (float(t) for t in op.oracle.curvature(*op.data.batch))
        # gᵀg and gᵀHg are float64 sums: non-finite exactly when g or H g has a
        # non-finite entry (or they overflow float64).
        refuse_nonfinite(what, model, loss, math.isfinite(g_norm_sq), math.isfinite(ghg), "Hessian-vector product H g (gᵀHg)")
        return curvature_report(loss, g_norm_sq, ghg, learning_rate)
    loss, g = op.loss_and_gradient()
    if not per_layer:
        return curvature_report(loss, float(g @ g), float(g @ op.matvec(g)), learning_rate)
    reports = {}
    for name, block in op.per_layer().items():
        g_block = g[block.keep]
        reports[name] = curvature_report(loss, float(g_block @ g_block), float(g_block @ block.matvec(g_block)), learning_rate)
    return reports


def curvature_report(loss, g_norm_sq, ghg, learning_rate):
    """The report of :func:`gradient_curvature` from its numbers (``learning_rate``: None
    leaves ``predicted_change`` out)."""
    # Only finite inputs reach here (refuse_nonfinite, the operator's checks): gᵀHg ≤ 0 is a
    # real non-positive curvature, for which no step size along −g is too large.
    report = {
        "loss": loss,
        "g_norm_sq": g_norm_sq,
        "gHg": ghg,
        "critical_learning_rate": 2.0 * g_norm_sq / ghg if ghg > 0.0 else math.inf,
    }
    if learning_rate is not None:
        report["predicted_change"] = 0.5 * learning_rate**2 * ghg - learning_rate * g_norm_sq
    return report
