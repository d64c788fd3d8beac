"""First and second derivatives of a network with respect to its *inputs*, one
implementation per backend (the public entry point is
:func:`keras_optlab.lab.burgers.input_derivatives`, which checks the arguments).

A physics-informed loss needs u_x, u_t and u_xx of the network u(x, t) at the
collocation points, and then the gradient of that loss with respect to the weights: the
input derivatives must stay differentiable, so each backend's own autodiff is used,
nested under whatever differentiates the loss (keras.ops has no ``grad``):

========== ===================================================================
backend    how
========== ===================================================================
tensorflow nested ``tf.GradientTape`` (double backprop); an enclosing tape (the
           optimizer's) records the inner ``gradient`` calls, inside
           ``tf.function`` too
jax        ``jax.vjp`` for ∇ₓu, ``jax.jvp`` over it for ∂²u/∂xᵢ² (forward over
           reverse); the weights are whatever ``fn`` reads — substituted values
           inside a ``keras.StatelessScope`` (the optimizers' traced steps) or
           ``stateless_call`` arguments — so it nests under ``jax.grad``/``jax.jit``
``torch``  ``torch.autograd.grad(..., create_graph=True)`` twice, eagerly, under
           ``torch.enable_grad()``
========== ===================================================================

Every function here takes ``fn`` mapping an (N, d) tensor to N values ((N, 1) or (N,)),
*row-wise* (row n of the output depends on row n of the input only — an MLP; not batch
normalization in training mode). Then ∇ₓ Σₙ u(xₙ) has as row n the gradient of u at
xₙ, which is what one backward pass gives; the second derivative along column i is the
derivative of the sum of column i of that gradient, again along column i.
"""

import keras


def for_backend():
    """The ``derivatives(fn, x, second)`` of ``keras.backend.backend()``."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow
    if backend == "jax":
        return _jax
    if backend == "torch":
        return _torch
    raise RuntimeError(
        "keras_optlab.lab.burgers.input_derivatives runs on the TensorFlow, JAX and PyTorch backends "
        f"(it needs automatic differentiation). Received: keras.backend.backend()={backend!r}."
    )


def _tensorflow(fn, x, second):
    import tensorflow as tf

    zero = tf.UnconnectedGradients.ZERO
    x = tf.convert_to_tensor(x)
    with tf.GradientTape(persistent=len(second) > 1) as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            u = fn(x)
        du = inner.gradient(u, x, unconnected_gradients=zero)
        columns = [du[:, i] for i in second]
    d2 = [outer.gradient(c, x, unconnected_gradients=zero)[:, i] for c, i in zip(columns, second)]
    return u, du, tf.stack(d2, axis=1) if d2 else tf.zeros(tf.stack([tf.shape(x)[0], 0]), x.dtype)


def _jax(fn, x, second):
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(x)

    def gradient_and_value(z):
        u, pullback = jax.vjp(fn, z)
        return pullback(jnp.ones_like(u))[0], u

    if not second:
        du, u = gradient_and_value(x)
        return u, du, jnp.zeros((x.shape[0], 0), x.dtype)
    d2 = []
    for i in second:
        direction = jnp.zeros_like(x).at[:, i].set(1.0)
        (du, u), (hessian_column, _) = jax.jvp(gradient_and_value, (x,), (direction,))
        d2.append(hessian_column[:, i])
    return u, du, jnp.stack(d2, axis=1)


def _torch(fn, x, second):
    import torch

    from keras import ops

    with torch.enable_grad():
        x = ops.convert_to_tensor(x).detach().requires_grad_(True)
        u = fn(x)
        total = u.sum()
        du = torch.autograd.grad(total, x, create_graph=True, allow_unused=True)[0] if total.requires_grad else None
        du = torch.zeros_like(x) if du is None else du
        d2 = []
        for i in second:
            column = du[:, i].sum()
            h = None
            if column.requires_grad:
                h = torch.autograd.grad(column, x, create_graph=True, allow_unused=True)[0]
            d2.append(torch.zeros_like(x[:, i]) if h is None else h[:, i])
    return u, du, torch.stack(d2, dim=1) if d2 else x.new_zeros((x.shape[0], 0))

