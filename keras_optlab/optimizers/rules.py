"""The book's first-order update rules as pure functions (Algorithms 8.1–8.7).

Goodfellow, Bengio & Courville, *Deep Learning* (2016), Sec. 8.3 and 8.5. Each rule
maps a dense gradient, the current slot values and the hyperparameters to the step
and the new slot values:

    rule(g, *slots, **hyperparameters) -> (Δθ, (new slots...))

and the caller applies θ ← θ + Δθ. Nothing here reads or writes a variable, so a rule
is tested alone against a float64 NumPy transcription of its algorithm box
(tests/optimizers/test_rules.py), and the optimizers' ``update_step`` is only "read
the slots, call the rule, assign" (optax's habit: the math apart from the state).

Written with ``keras.ops`` only: the rules run on every Keras backend, on tensors or
NumPy arrays. Hyperparameters may be Python floats or scalars of the gradient's
dtype; every one is converted to the gradient's dtype (:func:`in_dtype`) before it
meets a tensor. Left to Keras, a Python float would not always be: on the PyTorch
backend ``keras.ops.multiply(0.9, x)`` and ``0.9 * keras.Variable(...)`` make 0.9 a
float32 tensor first, so a float64 momentum step would use α = 0.8999999762 (a 2e-8
relative error that grows to ~1e-7 over a trajectory). The order of operations is part of the contract: keras_optlab's CPU kernels
(keras_optlab.accel.cpu) and TF's fused kernels (keras_optlab.accel.tf_fused) compute
exactly these operations in this order, bit for bit, and a Python float given here
must be rounded to the dtype once, as they receive it (e.g. ``1 − ρ`` is formed in
double precision before the rounding). A step −ε·x is written ``(−ε)·x``: in IEEE
arithmetic (−ε)·x = −(ε·x) and (−a)/b = −(a/b) exactly, so the kernels' θ − ε·x is the
same number, and negating the scalar costs no full-size temporary.
"""

from keras import backend, ops

__all__ = [
    "adagrad",
    "adam",
    "adam_step_scalars",
    "in_dtype",
    "momentum",
    "nesterov",
    "nesterov_rmsprop",
    "rmsprop",
    "sgd",
]


def in_dtype(value, dtype):
    """``value`` as a tensor of ``dtype``; a Python number is converted exactly, rounded
    once to ``dtype`` (``ops.cast`` of a Python float would go through float32 first on
    TensorFlow, and Keras' torch ops convert a bare Python float to float32)."""
    if isinstance(value, (int, float)):
        return ops.convert_to_tensor(value, dtype)
    return ops.cast(value, dtype)


def _dtype(g):
    return backend.standardize_dtype(g.dtype)


def sgd(g, *, learning_rate):
    """Algorithm 8.1: Δθ = −ε g. No slots."""
    learning_rate = in_dtype(learning_rate, _dtype(g))
    return (-learning_rate) * g, ()


def momentum(g, v, *, learning_rate, momentum):
    """Algorithm 8.2 (heavy ball): v ← αv − εg; Δθ = v."""
    dtype = _dtype(g)
    learning_rate, momentum = in_dtype(learning_rate, dtype), in_dtype(momentum, dtype)
    v = momentum * v - learning_rate * g
    return v, (v,)


def nesterov(g, v, *, learning_rate, momentum):
    """Algorithm 8.3 in look-ahead form (the stored weights are θ + αv).

    The book evaluates g at θ̃ = θ + αv, then v ← αv − εg and θ ← θ + v. Storing the
    look-ahead point φ = θ + αv instead, the gradient is taken at the stored weights
    (what a Keras optimizer receives) and φ ← φ + αv_new − εg (Sutskever et al. 2013).
    """
    dtype = _dtype(g)
    learning_rate, momentum = in_dtype(learning_rate, dtype), in_dtype(momentum, dtype)
    step = learning_rate * g
    v = momentum * v - step
    return momentum * v - step, (v,)


def adagrad(g, r, *, learning_rate, epsilon):
    """Algorithm 8.4: r ← r + g⊙g; Δθ = −ε g / (δ + √r)."""
    dtype = _dtype(g)
    learning_rate, epsilon = in_dtype(learning_rate, dtype), in_dtype(epsilon, dtype)
    r = r + ops.square(g)
    return (-learning_rate) * g / (ops.sqrt(r) + epsilon), (r,)


def _decayed_square_average(g, r, rho):
    """r ← ρr + (1 − ρ)g⊙g, as r + (1 − ρ)(g² − r): one operation fewer, 1 − ρ rounded once."""
    return r + in_dtype(1.0 - rho, _dtype(g)) * (ops.square(g) - r)


def rmsprop(g, r, *, learning_rate, rho, epsilon):
    """Algorithm 8.5: r ← ρr + (1 − ρ)g⊙g; Δθ = −ε g / √(δ + r)."""
    dtype = _dtype(g)
    learning_rate, epsilon = in_dtype(learning_rate, dtype), in_dtype(epsilon, dtype)
    r = _decayed_square_average(g, r, rho)
    return (-learning_rate) * g / ops.sqrt(r + epsilon), (r,)


def nesterov_rmsprop(g, r, v, *, learning_rate, rho, momentum, epsilon):
    """Algorithm 8.6 in look-ahead form (as :func:`nesterov`).

    r ← ρr + (1 − ρ)g⊙g; v ← αv − ε g / √(δ + r); Δθ = αv − ε g / √(δ + r).
    """
    dtype = _dtype(g)
    learning_rate, momentum, epsilon = (in_dtype(x, dtype) for x in (learning_rate, momentum, epsilon))
    r = _decayed_square_average(g, r, rho)
    step = learning_rate * g / ops.sqrt(r + epsilon)
    v = momentum * v - step
    return momentum * v - step, (r, v)


_SMALLEST_NORMAL = {"float16": 2.0**-14, "bfloat16": 2.0**-126}


def adam_step_scalars(learning_rate, beta_1, beta_2, epsilon, step, dtype):
    """(η, δ') = (ε √(1 − ρ₂ᵗ) / (1 − ρ₁ᵗ), δ √(1 − ρ₂ᵗ)) in ``dtype``; ``step`` is t ≥ 1.

    With them Adam's Δθ = −ε ŝ / (√r̂ + δ) (δ on the bias-corrected root, as in the
    book) is computed as −η s / (√r + δ'), the same element-wise work as Keras' rule.

    For float16/bfloat16 the bias corrections are computed in float32 and only η and
    δ' are rounded to ``dtype``: in bfloat16 ρ₂ = 0.999 is 1.0, so 1 − ρ₂ᵗ would be 0
    (no step at all, or 0/0 where δ' is 0 too). δ' is then at least the dtype's
    smallest normal number, so that hardware that flushes subnormals to zero still
    divides by a non-zero number where r underflowed to 0.
    """
    wide = "float32" if dtype in ("float16", "bfloat16") else dtype
    t = in_dtype(step, wide)
    one = ops.convert_to_tensor(1.0, wide)
    correction_1 = one - ops.power(in_dtype(beta_1, wide), t)
    root_correction_2 = ops.sqrt(one - ops.power(in_dtype(beta_2, wide), t))
    step_size = in_dtype(learning_rate, wide) * root_correction_2 / correction_1
    epsilon = in_dtype(epsilon, wide) * root_correction_2
    if wide != dtype:
        epsilon = ops.maximum(epsilon, _SMALLEST_NORMAL[dtype])
        step_size, epsilon = ops.cast(step_size, dtype), ops.cast(epsilon, dtype)
    return step_size, epsilon


def adam(g, s, r, *, learning_rate, beta_1, beta_2, epsilon, step):
    """Algorithm 8.7 at time step t = ``step`` (≥ 1).

    s ← ρ₁s + (1 − ρ₁)g; r ← ρ₂r + (1 − ρ₂)g⊙g; ŝ = s/(1 − ρ₁ᵗ); r̂ = r/(1 − ρ₂ᵗ);
    Δθ = −ε ŝ / (√r̂ + δ), computed through :func:`adam_step_scalars`.
    """
    dtype = _dtype(g)
    step_size, epsilon = adam_step_scalars(learning_rate, beta_1, beta_2, epsilon, step, dtype)
    s = s + in_dtype(1.0 - beta_1, dtype) * (g - s)
    r = _decayed_square_average(g, r, beta_2)
    return (-step_size) * s / (ops.sqrt(r) + epsilon), (s, r)
