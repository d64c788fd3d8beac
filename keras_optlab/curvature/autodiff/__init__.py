"""Differentiation for the curvature functions and Newton: one small adapter per backend.

Keras 3 has no backend-neutral gradient (``keras.ops`` has ``jvp`` but no ``grad``), so
each backend gets the few primitives keras_optlab needs, written with that backend's own
autodiff and chosen by measured cost (``benchmarks/curvature_cost.py --backend ...``):

============== ====================================== ===================================
backend        gradient, H v                          G v (Gauss-Newton), full H
============== ====================================== ===================================
tensorflow     nested ``tf.GradientTape`` (double     ForwardAccumulator for J v;
               backprop; forward-over-reverse breaks  ``tape.jacobian`` (pfor)
               on non-unrolled RNNs in tf.function)
jax            ``jax.jvp(jax.grad(f))``               ``jax.jvp`` / ``jax.vjp``;
               (forward-over-reverse)                 ``jax.hessian``
torch          ``torch.autograd.grad(...,             J v by the double-vjp trick;
               create_graph=True)`` (double backprop) batched rows (``is_grads_batched``)
============== ====================================== ===================================

Every adapter takes the same arguments: a zero-argument ``loss_fn`` (or ``outputs_fn``)
that reads a list of ``variables`` (``keras.Variable``; ``tf.Variable`` too on
TensorFlow) and returns backend tensors. The JAX adapter differentiates
``loss_fn`` as a pure function of the variables' values, which it substitutes through
a ``keras.StatelessScope`` (:func:`keras_optlab._keras_hooks.substituted`), so it also
works inside Keras' stateless (jitted) JAX train step. Missing gradients are zeros.

Functions of every adapter (``loss`` a scalar, lists shaped like ``variables``):

* ``loss_and_gradient(loss_fn, variables)`` → ``(loss, grads)``
* ``loss_and_gradient_at(loss_fn, variables, values)`` → ``(loss, grads)`` at the
  point where the variables hold ``values`` (JAX: substituted, pure; TensorFlow and
  torch: assigned — the variables are left at ``values``)
* ``hvp(loss_fn, variables, make_vectors)`` → ``(loss, grads, H v)`` with
  ``v = make_vectors(grads)`` (a fixed list, or the gradient itself)
* ``gauss_newton_product(outputs_fn, output_loss_fn, variables, vectors)`` → ``G v``
* ``hessian(loss_fn, variables)`` → ``(loss, grads, H)``, H the n×n matrix of the
  flattened variables
* ``tensor_gradients(fn, tensors)`` → the gradient of the scalar ``fn(tensors)`` with
  respect to each tensor, ``None`` where ``fn`` does not depend on it
* ``compiled(fn, state, assigns=False)`` → ``fn`` traced once for reuse (``tf.function``, ``jax.jit``
  over the values of the variables in ``state``; torch: ``fn`` itself, eager)
  — with ``assigns=True`` for an ``fn`` that also assigns variables of ``state`` (JAX:
  the new values come out of the trace and are assigned after each call; TensorFlow
  and torch assign as they run)
"""

import importlib

import keras

_ADAPTERS = {
    "tensorflow": "keras_optlab.curvature.autodiff.tf_tapes",
    "jax": "keras_optlab.curvature.autodiff.jax_transforms",
    "torch": "keras_optlab.curvature.autodiff.torch_autograd",
}


def for_backend(what="keras_optlab.curvature"):
    """The adapter module of ``keras.backend.backend()``; a ``RuntimeError`` naming
    the backend (and ``what`` was called) on one without an adapter."""
    backend = keras.backend.backend()
    if backend not in _ADAPTERS:
        raise RuntimeError(
            f"{what} runs on the TensorFlow, JAX and PyTorch backends (it needs automatic "
            f"differentiation of the loss). Received: keras.backend.backend()={backend!r}."
        )
    adapter = _LOADED.get(backend)
    if adapter is None:  # imported once: later lookups are a dict read, fine inside a trace
        adapter = _LOADED[backend] = importlib.import_module(_ADAPTERS[backend])
    return adapter


_LOADED = {}
