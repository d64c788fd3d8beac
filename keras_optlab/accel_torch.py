"""A speed path for keras_optlab's first-order optimizers on the PyTorch backend.

A plugin like :mod:`keras_optlab.accel` (TensorFlow's): listed in ``pyproject.toml``
under the entry-point group ``keras_optlab.accelerators`` and registered with
:func:`keras_optlab.optimizers.base.register_accelerator` on import when the Keras
backend is torch (on another backend it imports neither torch nor anything else and
registers nothing). It never imports TensorFlow. On torch, Keras' loop over the variables reaches
``optimizer.update_variable`` through ``keras_optlab._keras_hooks`` (its
``_backend_update_step``), which asks this module for each variable.

Path ``"inplace"``: float32/float64 variables of SGD, Momentum, Nesterov, AdaGrad,
RMSProp, NesterovRMSProp and Adam are updated with in-place torch operations
(``torch.no_grad()``, ``out=`` into two scratch tensors, ``add_``/``mul_`` into the
slots and weights) instead of the keras.ops rule's fresh tensor per operation and
``assign``'s copy. Each function performs the rule's operations
(:mod:`keras_optlab.optimizers.rules`) in the rule's order, on the same scalars
rounded the same way, with the same torch kernels (``mul``, ``sub``, ``add``, ``div``,
``sqrt``, ``square``): writing in place changes where a result goes, not its bits.
No fused multiply-add (``add_(x, alpha=…)``, ``addcmul_``, ``lerp_`` round once
where the rule rounds twice). tests/accel/test_torch_path.py checks every bit
against the rule.

Under ``skip_nonfinite`` (where the optimizer selects inside the rule,
``BookOptimizer._selects_in_rule``) the rule writes ``where(finite, new, old)``.
Here every array that is updated by an addition, x ← x + d, gets
``x + where(finite, d, −0)``, and one updated by x ← αx − d gets
``x·where(finite, α, 1) − where(finite, d, +0)``: x + (−0) = x, x·1 = x and
x − (+0) = x exactly for every x (−0 included), so a skipped step leaves every bit,
and a finite one computes the rule's numbers. The selection runs on a scratch tensor
or a scalar; nothing reads ``finite`` back to the host.

``optimizer.update_path(variable)`` is ``"inplace"`` where this path applies;
:func:`paths` restricts it (``with keras_optlab.accel_torch.paths("ops"):`` runs the
keras.ops rule). A subclass that overrides ``update_step`` or ``rule_inputs`` gets its
own ``update_step``.
"""

import functools

import keras

from keras_optlab.optimizers import base, rules

# torch is imported on the torch backend only: on TensorFlow (which loads every
# plugin of the group) importing it would start its thread pool next to TF's.
if keras.backend.backend() == "torch":
    import torch
else:  # pragma: no cover - exercised by the TF/JAX suites
    torch = None

PATHS = ("inplace", "ops")
DTYPES = ("float32", "float64")

_switch = base.PathSwitch(PATHS)


def allowed_paths():
    """The paths the optimizers may choose from now on torch (``"ops"`` always)."""
    return _switch.allowed()


def paths(*names):
    """Restrict the torch update paths to ``names`` (``"inplace"``, ``"ops"``) while the
    block runs (a context manager); ``"ops"`` is always allowed."""
    return _switch.restrict(*names)


# --------------------------------------------------------------------------- helpers


def _no_grad(update):
    @functools.wraps(update)
    def wrapped(*args):
        with torch.no_grad():
            return update(*args)

    return wrapped


def _scalar(value, dtype):
    """A hyperparameter rounded to ``dtype`` exactly as the rule rounds it."""
    return rules.in_dtype(value, dtype)


def _scratch(like):
    return torch.empty_like(like, memory_format=torch.contiguous_format)


class _Select:
    """The selections of a ``skip_nonfinite`` step (``finite`` a 0-d bool tensor), or
    the identity when there is none."""

    def __init__(self, finite, like):
        self.finite = finite
        if finite is not None:
            self.neg_zero = torch.tensor(-0.0, dtype=like.dtype, device=like.device)
            self.pos_zero = torch.tensor(0.0, dtype=like.dtype, device=like.device)
            self.one = torch.tensor(1.0, dtype=like.dtype, device=like.device)

    def addend(self, d):
        """``d`` (a scratch tensor) made a no-op addend when the step is skipped."""
        if self.finite is not None:
            torch.where(self.finite, d, self.neg_zero, out=d)
        return d

    def subtrahend(self, d):
        if self.finite is not None:
            torch.where(self.finite, d, self.pos_zero, out=d)
        return d

    def factor(self, alpha):
        if self.finite is None:
            return alpha
        return torch.where(self.finite, alpha, self.one)


def _add_to(x, d, select):
    """x ← x + d (the rule's ``assign_add``/``x + d``)."""
    x.add_(select.addend(d))


def _decay_sub(v, alpha, d, select):
    """v ← α·v − d, as the rule's ``alpha * v - d``."""
    v.mul_(select.factor(alpha))
    v.sub_(select.subtrahend(d))


def _decayed_square_average(g, r, rho, buf, select):
    """r ← r + (1 − ρ)(g² − r) (rules._decayed_square_average), with ``buf`` scratch."""
    u = torch.square(g, out=buf)
    u.sub_(r)
    u.mul_(_scalar(1.0 - rho, g.dtype))
    _add_to(r, u, select)


def _context(optimizer, gradient, variable, learning_rate):
    g, slots, h = optimizer.rule_inputs(gradient, variable, learning_rate)
    g = g if torch.is_tensor(g) else torch.as_tensor(g)
    theta = variable.value
    select = _Select(getattr(optimizer, "_step_is_finite", None), theta)
    return g, theta, [s.value for s in slots], h, select


# --------------------------------------------------------------------------- the rules


@_no_grad
def sgd(optimizer, gradient, variable, learning_rate):
    g, theta, _, h, select = _context(optimizer, gradient, variable, learning_rate)
    lr = _scalar(h["learning_rate"], g.dtype)
    d = torch.mul(-lr, g, out=_scratch(theta))
    _add_to(theta, d, select)


@_no_grad
def momentum(optimizer, gradient, variable, learning_rate):
    g, theta, (v,), h, select = _context(optimizer, gradient, variable, learning_rate)
    lr, alpha = _scalar(h["learning_rate"], g.dtype), _scalar(h["momentum"], g.dtype)
    buf = _scratch(theta)
    _decay_sub(v, alpha, torch.mul(lr, g, out=buf), select)
    if select.finite is None:
        theta.add_(v)
    else:
        theta.add_(torch.where(select.finite, v, select.neg_zero, out=buf))


@_no_grad
def nesterov(optimizer, gradient, variable, learning_rate):
    g, theta, (v,), h, select = _context(optimizer, gradient, variable, learning_rate)
    lr, alpha = _scalar(h["learning_rate"], g.dtype), _scalar(h["momentum"], g.dtype)
    step = select.subtrahend(torch.mul(lr, g, out=_scratch(theta)))  # the same step twice
    _decay_sub(v, alpha, step, select)
    d = torch.mul(alpha, v, out=_scratch(theta))
    d.sub_(step)
    _add_to(theta, d, select)


@_no_grad
def adagrad(optimizer, gradient, variable, learning_rate):
    g, theta, (r,), h, select = _context(optimizer, gradient, variable, learning_rate)
    lr, epsilon = _scalar(h["learning_rate"], g.dtype), _scalar(h["epsilon"], g.dtype)
    buf = _scratch(theta)
    _add_to(r, torch.square(g, out=buf), select)
    denominator = torch.sqrt(r, out=buf)
    denominator.add_(epsilon)
    d = torch.mul(-lr, g, out=_scratch(theta))
    d.div_(denominator)
    _add_to(theta, d, select)


@_no_grad
def rmsprop(optimizer, gradient, variable, learning_rate):
    g, theta, (r,), h, select = _context(optimizer, gradient, variable, learning_rate)
    lr, epsilon = _scalar(h["learning_rate"], g.dtype), _scalar(h["epsilon"], g.dtype)
    buf = _scratch(theta)
    _decayed_square_average(g, r, h["rho"], buf, select)
    denominator = torch.add(r, epsilon, out=buf)
    denominator.sqrt_()
    d = torch.mul(-lr, g, out=_scratch(theta))
    d.div_(denominator)
    _add_to(theta, d, select)


@_no_grad
def nesterov_rmsprop(optimizer, gradient, variable, learning_rate):
    g, theta, (r, v), h, select = _context(optimizer, gradient, variable, learning_rate)
    dtype = g.dtype
    lr, alpha, epsilon = (_scalar(h[k], dtype) for k in ("learning_rate", "momentum", "epsilon"))
    buf = _scratch(theta)
    _decayed_square_average(g, r, h["rho"], buf, select)
    denominator = torch.add(r, epsilon, out=buf)
    denominator.sqrt_()
    step = torch.mul(lr, g, out=_scratch(theta))
    step.div_(denominator)
    select.subtrahend(step)  # the same step twice
    _decay_sub(v, alpha, step, select)
    d = torch.mul(alpha, v, out=buf)
    d.sub_(step)
    _add_to(theta, d, select)


@_no_grad
def adam(optimizer, gradient, variable, learning_rate):
    g, theta, (s, r), h, select = _context(optimizer, gradient, variable, learning_rate)
    dtype = g.dtype
    step_size, epsilon = rules.adam_step_scalars(
        h["learning_rate"], h["beta_1"], h["beta_2"], h["epsilon"], h["step"], keras.backend.standardize_dtype(dtype)
    )
    buf, other = _scratch(theta), _scratch(theta)
    u = torch.sub(g, s, out=buf)
    u.mul_(_scalar(1.0 - h["beta_1"], dtype))
    _add_to(s, u, select)
    _decayed_square_average(g, r, h["beta_2"], other, select)
    denominator = torch.sqrt(r, out=other)
    denominator.add_(epsilon)
    d = torch.mul(-step_size, s, out=buf)
    d.div_(denominator)
    _add_to(theta, d, select)


UPDATES = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "nesterov_rmsprop": nesterov_rmsprop,
    "adam": adam,
}


class _Accelerator:
    """What :mod:`keras_optlab.optimizers.base` asks (see ``register_accelerator``)."""

    def prepare(self, optimizer):
        pass

    def choose(self, optimizer, variable):
        if keras.backend.backend() != "torch" or "inplace" not in allowed_paths():
            return None
        rule = base.speed_path_rule(optimizer)
        if rule not in UPDATES or keras.backend.standardize_dtype(variable.dtype) not in DTYPES:
            return None
        return "inplace", UPDATES[rule]


ACCELERATOR = _Accelerator()
if torch is not None:
    base.register_accelerator(ACCELERATOR)

__all__ = ["DTYPES", "PATHS", "UPDATES", "allowed_paths", "paths"]
