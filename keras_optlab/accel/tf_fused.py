"""TensorFlow's fused training kernels where they compute the book's rule exactly.

``tf.raw_ops.ResourceApply*`` update a resource variable and its slots in one kernel
(with GPU and XLA implementations). Each function here feeds one of them the inputs
of the optimizer's rule (``optimizer.rule_inputs``), mapped so that the kernel
performs the operations of :mod:`keras_optlab.optimizers.rules` in the same order on
the same dtype-rounded scalars: the results agree bit for bit
(tests/accel/test_tf_fused.py). RMSProp and Nesterov-RMSProp have no such kernel (TF's
``ResourceApplyRMSProp`` needs a momentum slot the book's Algorithm 8.5 has not).

Signature of each: ``update(optimizer, gradient, variable, learning_rate) → op``.
"""

from keras import ops

DTYPES = ("float16", "bfloat16", "float32", "float64")
# ResourceApplyAdam forms 1 − β₁, 1 − β₂ and the bias corrections in the variable's
# dtype: in bfloat16 β₂ = 0.999 is 1.0, the second moment never moves and the step is
# 0/0 (NaN); in float16 1 − β rounds differently from the rule. Half-precision Adam
# takes the keras.ops rule, which computes those scalars in float32.
RULE_DTYPES = {"adam": ("float32", "float64")}


def supports(rule, dtype):
    """Whether TF's fused kernel computes ``rule`` exactly for variables of ``dtype``."""
    return rule in UPDATES and dtype in RULE_DTYPES.get(rule, DTYPES)


def handle(variable):
    """The resource handle a kernel updates in place.

    Inside ``distribution.extended.update`` a slot's MirroredVariable yields the
    handle of the copy on the device being updated, as ``variable`` does.
    """
    import keras

    if isinstance(variable, keras.Variable):
        variable = variable.value  # the backing tf.Variable
    return variable.handle


def on_cpu(resource):
    """Whether a resource handle lives on a CPU (placement decided, or no GPU at all)."""
    import tensorflow as tf

    device = tf.DeviceSpec.from_string(resource.device or "").device_type
    if device:
        return device.upper() == "CPU"
    return not tf.config.list_logical_devices("GPU")


def _raw_ops():
    import tensorflow as tf

    return tf.raw_ops


def sgd(optimizer, gradient, variable, learning_rate):
    # var -= alpha * delta: θ + (−εg), one kernel.
    g, _, h = optimizer.rule_inputs(gradient, variable, learning_rate)
    return _raw_ops().ResourceApplyGradientDescent(var=handle(variable), alpha=h["learning_rate"], delta=g)


def _keras_momentum(optimizer, gradient, variable, learning_rate, nesterov):
    # accum ← accum·momentum − grad·lr; var ← var + accum (use_nesterov: var ←
    # var + accum·momentum − grad·lr): rules.momentum / rules.nesterov, operand for operand.
    g, (v,), h = optimizer.rule_inputs(gradient, variable, learning_rate)
    return _raw_ops().ResourceApplyKerasMomentum(
        var=handle(variable),
        accum=handle(v),
        lr=h["learning_rate"],
        grad=g,
        momentum=ops.convert_to_tensor(h["momentum"], variable.dtype),
        use_nesterov=nesterov,
    )


def momentum(optimizer, gradient, variable, learning_rate):
    return _keras_momentum(optimizer, gradient, variable, learning_rate, nesterov=False)


def nesterov(optimizer, gradient, variable, learning_rate):
    return _keras_momentum(optimizer, gradient, variable, learning_rate, nesterov=True)


def adagrad(optimizer, gradient, variable, learning_rate):
    # ResourceApplyAdagradV2 (update_slots=True): accum += grad²;
    # var -= grad·lr / (√accum + epsilon) — the book's δ outside the root, as in the
    # rule. (V1, ResourceApplyAdagrad, has no epsilon.)
    g, (r,), h = optimizer.rule_inputs(gradient, variable, learning_rate)
    return _raw_ops().ResourceApplyAdagradV2(
        var=handle(variable),
        accum=handle(r),
        lr=h["learning_rate"],
        epsilon=ops.convert_to_tensor(h["epsilon"], variable.dtype),
        grad=g,
    )


def adam(optimizer, gradient, variable, learning_rate):
    # ResourceApplyAdam computes α = lr·√(1 − β₂ᵖ)/(1 − β₁ᵖ); m += (g − m)(1 − β₁);
    # v += (g² − v)(1 − β₂); var −= m·α / (√v + ε') — rules.adam operation for
    # operation when the powers are ρ₁ᵗ, ρ₂ᵗ (from the step, in the variable's dtype)
    # and ε' = δ√(1 − ρ₂ᵗ), which moves δ onto the bias-corrected root as the book has it.
    g, (s, r), h = optimizer.rule_inputs(gradient, variable, learning_rate)
    dtype = variable.dtype
    t = ops.cast(h["step"], dtype)
    beta_1 = ops.convert_to_tensor(h["beta_1"], dtype)
    beta_2 = ops.convert_to_tensor(h["beta_2"], dtype)
    beta_1_power = ops.power(beta_1, t)
    beta_2_power = ops.power(beta_2, t)
    return _raw_ops().ResourceApplyAdam(
        var=handle(variable),
        m=handle(s),
        v=handle(r),
        beta1_power=beta_1_power,
        beta2_power=beta_2_power,
        lr=h["learning_rate"],
        beta1=beta_1,
        beta2=beta_2,
        epsilon=h["epsilon"] * ops.sqrt(1.0 - beta_2_power),
        grad=g,
    )


UPDATES = {"sgd": sgd, "momentum": momentum, "nesterov": nesterov, "adagrad": adagrad, "adam": adam}
