"""Hessian-vector products (Goodfellow et al. 2016, Sec. 8.2.1, 8.6; Pearlmutter 1994).

H v is computed by double backpropagation: differentiate (∇J)ᵀv, with v held constant,
once more. It costs about two gradients and never forms H. Forward-over-reverse
(``tf.autodiff.ForwardAccumulator`` over a tape) is cheaper in principle but breaks on
non-unrolled RNNs inside ``tf.function``; double backprop works for every Keras layer.

TensorFlow backend only: a Keras model's weights are differentiated with
``tf.GradientTape``.
"""

import tensorflow as tf


def _as_tensors(variables):
    return [v.value if hasattr(v, "value") and not isinstance(v, tf.Variable) else v for v in variables]


def loss_and_gradient(loss_fn, variables):
    """(J, ∇J) for a zero-argument ``loss_fn`` differentiated w.r.t. ``variables``
    (``keras.Variable``s or ``tf.Variable``s). Missing gradients become zeros."""
    tf_vars = _as_tensors(variables)
    with tf.GradientTape() as tape:
        loss = loss_fn()
    grads = tape.gradient(loss, tf_vars, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return loss, grads


def hvp_from_loss(loss_fn, variables, vectors):
    """(J, ∇J, H v) of a zero-argument ``loss_fn`` at the current ``variables``.

    ``vectors`` is a list shaped like ``variables``; so are the gradient and the
    product. Double backprop: one forward, two backward passes.
    """
    tf_vars = _as_tensors(variables)
    vectors = [tf.stop_gradient(tf.cast(v, w.dtype)) for v, w in zip(vectors, tf_vars)]
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss = loss_fn()
        grads = inner.gradient(loss, tf_vars, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        dot = tf.add_n([tf.reduce_sum(g * v) for g, v in zip(grads, vectors)])
    hv = outer.gradient(dot, tf_vars, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return loss, grads, hv
