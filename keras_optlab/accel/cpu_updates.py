"""The rules of :mod:`keras_optlab.optimizers.rules` through keras_optlab's CPU kernels.

Each function feeds one op of :mod:`keras_optlab.accel.cpu` (``book_kernels.cc``) the
inputs of the optimizer's rule (``optimizer.rule_inputs``), with every scalar rounded
to the variable's dtype exactly as the keras.ops rule rounds it (a Python float such
as ``1 − ρ`` formed in double precision, then rounded once). The op performs the
rule's operations in the same order in one pass over θ, g and the slots, so the
results agree bit for bit (tests/accel/test_cpu_paths.py). SGD has none: TF's
``ResourceApplyGradientDescent`` already makes one pass.

Signature of each: ``update(optimizer, gradient, variable, learning_rate) → op``.
"""

from keras import ops

from keras_optlab.accel import cpu
from keras_optlab.accel.tf_fused import handle
from keras_optlab.optimizers import rules


def _scalar(value, variable):
    return ops.convert_to_tensor(value, variable.dtype)


def _momentum(rule):
    def update(optimizer, gradient, variable, learning_rate):
        g, (v,), h = optimizer.rule_inputs(gradient, variable, learning_rate)
        return cpu.op(rule)(
            var=handle(variable), velocity=handle(v), grad=g, lr=h["learning_rate"],
            momentum=_scalar(h["momentum"], variable),
        )

    return update


def adagrad(optimizer, gradient, variable, learning_rate):
    g, (r,), h = optimizer.rule_inputs(gradient, variable, learning_rate)
    return cpu.op("adagrad")(
        var=handle(variable), accumulator=handle(r), grad=g, lr=h["learning_rate"],
        epsilon=_scalar(h["epsilon"], variable),
    )


def rmsprop(optimizer, gradient, variable, learning_rate):
    g, (r,), h = optimizer.rule_inputs(gradient, variable, learning_rate)
    return cpu.op("rmsprop")(
        var=handle(variable), accumulator=handle(r), grad=g, lr=h["learning_rate"],
        one_minus_rho=_scalar(1.0 - h["rho"], variable), epsilon=_scalar(h["epsilon"], variable),
    )


def nesterov_rmsprop(optimizer, gradient, variable, learning_rate):
    g, (r, v), h = optimizer.rule_inputs(gradient, variable, learning_rate)
    return cpu.op("nesterov_rmsprop")(
        var=handle(variable), accumulator=handle(r), velocity=handle(v), grad=g, lr=h["learning_rate"],
        one_minus_rho=_scalar(1.0 - h["rho"], variable), epsilon=_scalar(h["epsilon"], variable),
        momentum=_scalar(h["momentum"], variable),
    )


def adam(optimizer, gradient, variable, learning_rate):
    # One pass (TF's ResourceApplyAdam makes three, and rounds 1 − β in the dtype
    # where the rule rounds it from Python's double).
    g, (s, r), h = optimizer.rule_inputs(gradient, variable, learning_rate)
    step_size, epsilon = rules.adam_step_scalars(
        h["learning_rate"], h["beta_1"], h["beta_2"], h["epsilon"], h["step"], variable.dtype
    )
    return cpu.op("adam")(
        var=handle(variable), m=handle(s), v=handle(r), grad=g,
        one_minus_beta1=_scalar(1.0 - h["beta_1"], variable), one_minus_beta2=_scalar(1.0 - h["beta_2"], variable),
        step_size=step_size, epsilon=epsilon,
    )


UPDATES = {
    "momentum": _momentum("momentum"),
    "nesterov": _momentum("nesterov"),
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "nesterov_rmsprop": nesterov_rmsprop,
    "adam": adam,
}
