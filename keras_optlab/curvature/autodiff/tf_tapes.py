"""TensorFlow adapter: nested ``tf.GradientTape`` (double backprop, Pearlmutter 1994).

Forward-over-reverse (``tf.autodiff.ForwardAccumulator`` over a tape) is cheaper in
principle but breaks on non-unrolled RNNs inside ``tf.function``; double backprop works
for every Keras layer. J v of the Gauss-Newton product is forward mode (the outputs
alone, no loop through a loss gradient). See the package docstring for the interface.

Every function that differentiates twice (``hvp``, ``gauss_newton_product``,
``hessian``) runs the forward pass under :func:`keras_optlab._keras_hooks.differentiable_moments`:
Keras' TF ``moments`` (BatchNormalization in training mode, LayerNormalization,
GroupNormalization) takes the variance from ``tf.nn.moments``, whose
``stop_gradient(mean)`` leaves the gradient exact but drops a term of the Hessian. Inside
the context the variance is differentiable and the second derivatives are the true ones
(as on JAX and PyTorch); first derivatives are the same up to rounding.
"""

import keras
import tensorflow as tf

from keras_optlab import _keras_hooks
from keras_optlab.curvature.autodiff.common import flat, scalar_loss

ZERO = tf.UnconnectedGradients.ZERO


def _tensors(variables):
    # keras.Variable → its tf.Variable (what the tape watches); a tf.Variable as is.
    return [v if isinstance(v, tf.Variable) else v.value for v in variables]


def loss_and_gradient(loss_fn, variables):
    sources = _tensors(variables)
    with tf.GradientTape() as tape:
        loss = scalar_loss(loss_fn())
    return loss, tape.gradient(loss, sources, unconnected_gradients=ZERO)


def loss_and_gradient_at(loss_fn, variables, values):
    # The variables are moved to ``values`` (assign, also inside tf.while_loop); the
    # caller assigns the point it keeps afterwards.
    for variable, value in zip(variables, values):
        variable.assign(value)
    return loss_and_gradient(loss_fn, variables)


def hvp(loss_fn, variables, make_vectors):
    # H v = ∇_θ ((∇_θ J)ᵀ v), v held constant.
    sources = _tensors(variables)
    with _keras_hooks.differentiable_moments(), tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss = scalar_loss(loss_fn())
        grads = inner.gradient(loss, sources, unconnected_gradients=ZERO)
        vectors = [tf.stop_gradient(tf.cast(v, s.dtype)) for v, s in zip(make_vectors(grads), sources)]
        dot = tf.add_n([tf.reduce_sum(g * v) for g, v in zip(grads, vectors)])
    return loss, grads, outer.gradient(dot, sources, unconnected_gradients=ZERO)


def linearized_gradient(loss_fn, variables):
    """``(loss, grads, product)``: the gradient at the variables' values and
    ``product(vectors)`` → H ``vectors`` there, for as many vectors as wanted.

    One forward and backward pass, recorded on a persistent outer tape; each product is
    one more backward pass through the recorded gradient, (∂g/∂θ)ᵀv = H v (H is
    symmetric), without running the forward pass again."""
    sources = _tensors(variables)
    with _keras_hooks.differentiable_moments(), tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            loss = scalar_loss(loss_fn())
        grads = inner.gradient(loss, sources, unconnected_gradients=ZERO)

    def product(vectors):
        vectors = [tf.stop_gradient(tf.cast(v, s.dtype)) for v, s in zip(vectors, sources)]
        return outer.gradient(grads, sources, output_gradients=vectors, unconnected_gradients=ZERO)

    return loss, grads, product


def gauss_newton_product(outputs_fn, output_loss_fn, variables, vectors):
    # J v forward, H_L (J v) by double backprop through the loss of z alone, Jᵀ(·) back.
    # Differentiable moments here too: only first derivatives of outputs_fn are taken, but
    # output_loss_fn (differentiated twice) may normalize (and both forward passes of
    # outputs_fn must be the same function).
    with _keras_hooks.differentiable_moments():
        return _gauss_newton_product(outputs_fn, output_loss_fn, variables, vectors)


def _gauss_newton_product(outputs_fn, output_loss_fn, variables, vectors):
    sources = _tensors(variables)
    with tf.autodiff.ForwardAccumulator(primals=sources, tangents=vectors) as accumulator:
        outputs = outputs_fn()
    jv = tf.nest.map_structure(lambda z: tf.stop_gradient(accumulator.jvp(z, unconnected_gradients=ZERO)), outputs)
    z = tf.nest.map_structure(tf.stop_gradient, outputs)
    flat_z = tf.nest.flatten(z)
    with tf.GradientTape() as outer:
        outer.watch(flat_z)
        with tf.GradientTape() as inner:
            inner.watch(flat_z)
            loss = scalar_loss(output_loss_fn(z), "output_loss_fn")
        gz = inner.gradient(loss, flat_z, unconnected_gradients=ZERO)
        dot = tf.add_n([tf.reduce_sum(a * b) for a, b in zip(gz, tf.nest.flatten(jv))])
    h_jv = outer.gradient(dot, flat_z, unconnected_gradients=ZERO)
    with tf.GradientTape() as tape:
        outputs = tf.nest.flatten(outputs_fn())
    return tape.gradient(outputs, sources, output_gradients=h_jv, unconnected_gradients=ZERO)


def hessian(loss_fn, variables):
    sources = _tensors(variables)
    with _keras_hooks.differentiable_moments(), tf.GradientTape() as outer:
        loss, grads = loss_and_gradient(loss_fn, variables)
        g = flat(grads, sources[0].dtype)
    blocks = outer.jacobian(g, sources, unconnected_gradients=ZERO)
    n = g.shape[0]
    return loss, grads, tf.concat([tf.reshape(b, [n, -1]) for b in blocks], axis=1)


def compiled(fn, state=None, assigns=False):
    """``fn`` as one ``tf.function`` (``reduce_retracing``: a new batch size retraces once);
    its assignments are graph ops, whatever ``assigns`` says."""
    return tf.function(fn, reduce_retracing=True)


def tensor_gradients(fn, tensors):
    """∇ of the scalar ``fn(tensors)`` w.r.t. each tensor; ``None`` where it does not
    depend on it."""
    tensors = [tf.convert_to_tensor(t) for t in tensors]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        loss = scalar_loss(fn(tensors))
    return list(tape.gradient(loss, tensors))


def value_and_grad(loss_fn, variables):
    """``values ↦ (loss, grads)`` at the point where ``variables`` hold ``values``,
    pure: the Keras variables are substituted (a ``keras.StatelessScope``), nothing is
    assigned, so a whole solve traces into one ``tf.function``. ``tf.Variable``\\ s
    (which no scope substitutes) are assigned, then differentiated."""
    if not all(isinstance(v, keras.Variable) for v in variables):
        return lambda values: loss_and_gradient_at(loss_fn, variables, values)

    def evaluate(values):
        values = [tf.convert_to_tensor(v) for v in values]
        with tf.GradientTape() as tape:
            tape.watch(values)
            with _keras_hooks.substituted(variables, values):
                loss = scalar_loss(loss_fn())
        return loss, tape.gradient(loss, values, unconnected_gradients=ZERO)

    return evaluate


def jit(fn, donate_first=False):
    """``fn`` as one ``tf.function`` compiled by XLA where it compiles (a whole L-BFGS
    solve ran 13× faster per iteration under XLA on the CPU, measured on Rosenbrock-100),
    else the plain graph: a function whose ops have no XLA kernel is retraced without
    XLA at its first call, once. TensorFlow has no buffer donation (``donate_first``)."""
    compiled = [tf.function(fn, reduce_retracing=True, jit_compile=True)]

    def call(*args):
        try:
            return compiled[0](*args)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.InternalError) as error:
            if len(compiled) > 1 or "XLA" not in str(error) and "jit" not in str(error).lower():
                raise
            compiled[:] = [tf.function(fn, reduce_retracing=True), None]
            return compiled[0](*args)

    return call
