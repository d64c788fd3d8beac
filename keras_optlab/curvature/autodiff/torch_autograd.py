"""PyTorch adapter: ``torch.autograd.grad`` on the variables' parameters, eagerly.

H v by double backprop (``create_graph=True``), J v of the Gauss-Newton product by the
double-vjp trick (the vjp u ↦ Jᵀu is linear in u; its own vjp with
cotangent v is J v), the full H by batched rows (``is_grads_batched``, vmap over the unit
vectors). Everything runs under ``torch.enable_grad()``, so it also works where Keras
turned gradients off. See the package docstring for the interface.
"""

import torch

from keras_optlab import _keras_hooks

from keras_optlab.curvature.autodiff.common import flat, scalar_loss, zeros_for_none


def _sources(variables):
    return [v.value for v in variables]


def _grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    return torch.autograd.grad(
        outputs, inputs, grad_outputs=grad_outputs, create_graph=create_graph,
        retain_graph=retain_graph, allow_unused=True,
    )


def loss_and_gradient(loss_fn, variables):
    sources = _sources(variables)
    with torch.enable_grad():
        loss = scalar_loss(loss_fn())
        grads = zeros_for_none(_grad(loss, sources), sources)
    return loss.detach(), list(grads)


def loss_and_gradient_at(loss_fn, variables, values):
    # As on TensorFlow: move the variables to ``values``, then differentiate there.
    with torch.no_grad():
        for variable, value in zip(variables, values):
            variable.assign(value)
    return loss_and_gradient(loss_fn, variables)


def hvp(loss_fn, variables, make_vectors):
    sources = _sources(variables)
    with torch.enable_grad():
        loss = scalar_loss(loss_fn())
        grads = zeros_for_none(_grad(loss, sources, create_graph=True), sources)
        vectors = [torch.as_tensor(v, dtype=s.dtype).detach() for v, s in zip(make_vectors([g.detach() for g in grads]), sources)]
        dot = sum((g * v).sum() for g, v in zip(grads, vectors))
        hv = zeros_for_none(_grad(dot, sources), sources) if dot.requires_grad else [torch.zeros_like(s) for s in sources]
    return loss.detach(), [g.detach() for g in grads], list(hv)


def linearized_gradient(loss_fn, variables):
    """``(loss, grads, product)``: the gradient at the variables' values and
    ``product(vectors)`` → H ``vectors`` there, for as many vectors as wanted.

    The gradient's graph is kept (``create_graph=True``); each product is one backward
    pass through it, (∂g/∂θ)ᵀv = H v (H is symmetric), without a new forward pass."""
    sources = _sources(variables)
    with torch.enable_grad():
        loss = scalar_loss(loss_fn())
        grads = zeros_for_none(_grad(loss, sources, create_graph=True), sources)
    connected = [g for g in grads if g.requires_grad]

    def product(vectors):
        vectors = [torch.as_tensor(v, dtype=s.dtype).detach() for v, s in zip(vectors, sources)]
        if not connected:  # the gradient does not depend on the weights: H = 0
            return [torch.zeros_like(s) for s in sources]
        pairs = [(g, v) for g, v in zip(grads, vectors) if g.requires_grad]
        with torch.enable_grad():
            hv = _grad([g for g, _ in pairs], sources, grad_outputs=[v for _, v in pairs], retain_graph=True)
        return list(zeros_for_none(hv, sources))

    return loss.detach(), [g.detach() for g in grads], product


def gauss_newton_product(outputs_fn, output_loss_fn, variables, vectors):
    from keras import tree

    sources = _sources(variables)
    vectors = [torch.as_tensor(v, dtype=s.dtype) for v, s in zip(vectors, sources)]
    with torch.enable_grad():
        outputs = outputs_fn()
        flat_z = tree.flatten(outputs)
        # J v: the vjp θ ↦ Jᵀu is linear in u; its vjp with cotangent v is J v.
        u = [torch.zeros_like(z, requires_grad=True) for z in flat_z]
        jtu = _grad(flat_z, sources, grad_outputs=u, create_graph=True, retain_graph=True)
        pairs = [(a, v) for a, v in zip(jtu, vectors) if a is not None]
        jv = _grad([a for a, _ in pairs], u, grad_outputs=[v for _, v in pairs], retain_graph=True)
        jv = zeros_for_none(jv, flat_z)
        z = [t.detach().requires_grad_(True) for t in flat_z]
        loss = scalar_loss(output_loss_fn(tree.pack_sequence_as(outputs, z)), "output_loss_fn")
        gz = zeros_for_none(_grad(loss, z, create_graph=True), z)
        dot = sum((a * b.detach()).sum() for a, b in zip(gz, jv))
        h_jv = zeros_for_none(_grad(dot, z), z) if dot.requires_grad else [torch.zeros_like(t) for t in z]
        return list(zeros_for_none(_grad(flat_z, sources, grad_outputs=h_jv), sources))


def hessian(loss_fn, variables):
    sources = _sources(variables)
    with torch.enable_grad():
        loss = scalar_loss(loss_fn())
        grads = zeros_for_none(_grad(loss, sources, create_graph=True), sources)
        g = flat(grads, sources[0].dtype)
        n = g.shape[0]
        if g.requires_grad:
            eye = torch.eye(n, dtype=g.dtype, device=g.device)
            rows = torch.autograd.grad(g, sources, grad_outputs=eye, is_grads_batched=True, allow_unused=True)
            rows = [torch.zeros((n,) + tuple(s.shape), dtype=g.dtype) if r is None else r for r, s in zip(rows, sources)]
            h = torch.cat([r.reshape(n, -1) for r in rows], dim=1)
        else:
            h = torch.zeros((n, n), dtype=g.dtype)
    return loss.detach(), [t.detach() for t in grads], h.detach()


def compiled(fn, state=None, assigns=False):
    """Eager: torch runs ``fn`` (and its assignments) as it is."""
    return fn


def tensor_gradients(fn, tensors):
    """∇ of the scalar ``fn(tensors)`` w.r.t. each tensor; ``None`` where it does not
    depend on it."""
    tensors = [torch.as_tensor(t).detach().requires_grad_(True) for t in tensors]
    with torch.enable_grad():
        loss = scalar_loss(fn(tensors))
        return list(_grad(loss, tensors))


def value_and_grad(loss_fn, variables):
    """``values ↦ (loss, grads)`` at the point where ``variables`` hold ``values``,
    without assigning them: the values are substituted (a ``keras.StatelessScope``)
    as leaves that require grad."""

    def evaluate(values):
        with torch.enable_grad():
            leaves = [torch.as_tensor(v).detach().requires_grad_(True) for v in values]
            with _keras_hooks.substituted(variables, leaves):
                loss = scalar_loss(loss_fn())
            grads = zeros_for_none(_grad(loss, leaves), leaves)
        return loss.detach(), list(grads)

    return evaluate


def jit(fn, donate_first=False):
    """Eager: torch runs ``fn`` as it is."""
    return fn
