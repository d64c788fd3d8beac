"""JAX adapter: JAX's function transforms on the loss as a pure function of the weights.

``loss_fn`` reads Keras variables; here it becomes f(values) by substituting the values
through a ``keras.StatelessScope`` that keeps the enclosing scope's mapping
(:func:`keras_optlab._keras_hooks.substituted`), so the same code runs eagerly, under
``jax.jit`` and inside Keras' stateless JAX train step. H v is forward-over-reverse,
``jax.jvp(jax.grad(f))`` (one linearized gradient). See the package docstring.
"""

import jax
import jax.numpy as jnp

from keras_optlab import _keras_hooks
from keras_optlab.curvature.autodiff.common import flat, scalar_loss, unflat


def _pure(fn, variables, name="loss_fn"):
    def f(values):
        with _keras_hooks.substituted(variables, values):
            out = fn()
        return scalar_loss(out, name) if name else out

    return f


def _values(variables):
    return [_keras_hooks.current_value(v) for v in variables]


def loss_and_gradient(loss_fn, variables):
    return jax.value_and_grad(_pure(loss_fn, variables))(_values(variables))


def loss_and_gradient_at(loss_fn, variables, values):
    # Pure: the variables read ``values`` (no assignment), so a line search can run
    # inside lax.while_loop under jit.
    return jax.value_and_grad(_pure(loss_fn, variables))([jnp.asarray(v) for v in values])


def hvp(loss_fn, variables, make_vectors):
    f = _pure(loss_fn, variables)
    values = _values(variables)
    loss, grads = jax.value_and_grad(f)(values)
    vectors = [jax.lax.stop_gradient(jnp.asarray(v, dtype=w.dtype)) for v, w in zip(make_vectors(grads), values)]
    hv = jax.jvp(jax.grad(f), (values,), (vectors,))[1]
    return loss, grads, hv


def linearized_gradient(loss_fn, variables):
    """``(loss, grads, product)``: the gradient at the variables' values and
    ``product(vectors)`` → H ``vectors`` there, for as many vectors as wanted.

    ``jax.linearize`` of the gradient: one forward and backward pass whose residuals
    are kept; each product evaluates only the linear (tangent) part."""
    f = _pure(loss_fn, variables)
    values = _values(variables)

    def gradient_and_loss(values):
        loss, grads = jax.value_and_grad(f)(values)
        return grads, loss

    grads, linear, loss = jax.linearize(gradient_and_loss, values, has_aux=True)

    def product(vectors):
        return linear([jnp.asarray(v, dtype=w.dtype) for v, w in zip(vectors, values)])

    return loss, grads, product


def gauss_newton_product(outputs_fn, output_loss_fn, variables, vectors):
    outputs_of = _pure(outputs_fn, variables, name=None)
    values = _values(variables)
    vectors = [jnp.asarray(v, dtype=w.dtype) for v, w in zip(vectors, values)]
    z, jv = jax.jvp(outputs_of, (values,), (vectors,))

    def loss_of_z(outputs):
        # In a scope of its own, like _pure: what the loss assigns (Keras' per-output
        # loss trackers of a model with several outputs) holds JVP tracers, which must
        # not reach the enclosing scope — a later read there would leak them.
        with _keras_hooks.substituted([], []):
            return scalar_loss(output_loss_fn(outputs), "output_loss_fn")

    h_jv = jax.jvp(jax.grad(loss_of_z), (z,), (jv,))[1]
    _, pullback = jax.vjp(outputs_of, values)
    return pullback(h_jv)[0]


def hessian(loss_fn, variables):
    f = _pure(loss_fn, variables)
    values = _values(variables)
    dtype = values[0].dtype
    loss, grads = jax.value_and_grad(f)(values)
    h = jax.hessian(lambda theta: f(unflat(theta, values)))(flat(values, dtype))
    return loss, grads, h


def compiled(fn, state, assigns=False):
    """``fn`` under ``jax.jit``, with the values of the variables in ``state`` as
    arguments (substituted back inside), so that a trace never bakes in weights.

    ``assigns=True``: ``fn`` also assigns variables of ``state``; the trace records
    the assignments (a ``keras.StatelessScope``) and returns the new values, which each
    call assigns afterwards, outside the trace."""
    state = list(state)

    def pure(values, *args):
        with _keras_hooks.substituted(state, values) as scope:
            out = fn(*args)
        return (out, [scope.get_current_value(v) for v in state]) if assigns else out

    jitted = jax.jit(pure)

    def call(*args):
        out = jitted(_values(state), *args)
        if not assigns:
            return out
        out, values = out
        for variable, value in zip(state, values):
            variable.assign(value)
        return out

    return call


def tensor_gradients(fn, tensors):
    """∇ of the scalar ``fn(tensors)`` w.r.t. each tensor; ``None`` where it does not
    depend on it. JAX's gradient is a zero there: dependence is read off the
    linearized program (tangents a ``stop_gradient`` cuts never reach the output)."""
    tensors = [jnp.asarray(t) for t in tensors]

    def f(ts):
        return scalar_loss(fn(ts))

    grads = jax.grad(f)(tensors)
    _, linear = jax.linearize(f, tensors)
    program = jax.make_jaxpr(linear)(tensors).jaxpr
    outputs = {id(v) for v in program.outvars}
    reaching = []
    for start in program.invars:
        reached = {id(start)}
        for eqn in program.eqns:
            if any(id(v) in reached for v in eqn.invars):
                reached.update(id(v) for v in eqn.outvars)
        reaching.append(bool(reached & outputs))
    return [g if reach else None for g, reach in zip(grads, reaching)]


def value_and_grad(loss_fn, variables):
    """``values ↦ (loss, grads)``, pure (see :func:`loss_and_gradient_at`)."""
    return jax.value_and_grad(_pure(loss_fn, variables))


def jit(fn, donate_first=False):
    """``fn`` under ``jax.jit``; ``donate_first``: its first argument's buffers are
    donated (a loop state updated in place, never copied)."""
    return jax.jit(fn, donate_argnums=(0,) if donate_first else ())
