"""Adam — Algorithm 8.7 of Goodfellow, Bengio & Courville (2016)."""

import keras
from keras import ops

from keras_optlab.optimizers.base import BookOptimizer, check_positive, check_unit_interval, fill_docstring


@fill_docstring
@keras.saving.register_keras_serializable(package="keras_optlab")
class Adam(BookOptimizer):
    """Adam, *Deep Learning* Algorithm 8.7, Sec. 8.5.3.

    ```
    Require: step size ε (suggested default 0.001)        (`learning_rate`)
    Require: exponential decay rates ρ₁, ρ₂ in [0, 1)     (`beta_1`, `beta_2`)
             (suggested defaults 0.9 and 0.999)
    Require: small constant δ (suggested default 10⁻⁸)    (`epsilon`)
    Require: initial parameters θ
    initialize 1st and 2nd moment variables s = 0, r = 0
    initialize time step t = 0                            (`iterations`)
    while stopping criterion not met do
        compute the gradient estimate g at θ
        t ← t + 1
        s ← ρ₁ s + (1 − ρ₁) g                              (biased first moment)
        r ← ρ₂ r + (1 − ρ₂) g ⊙ g                          (biased second moment)
        ŝ ← s / (1 − ρ₁ᵗ)                                  (bias corrections)
        r̂ ← r / (1 − ρ₂ᵗ)
        Δθ ← − ε ŝ / (√r̂ + δ)                              (element-wise)
        θ ← θ + Δθ
    end while
    ```
    δ is added to √r̂, the *bias-corrected* root, as in the book and in Kingma & Ba.
    Keras' `Adam` (like TF's fused kernel) adds it to the uncorrected √r, i.e. uses
    an effective δ/√(1 − ρ₂ᵗ), which is larger early in training. The code computes
    the book's quantity in the equivalent form
    Δθ = −ε √(1−ρ₂ᵗ)/(1−ρ₁ᵗ) · s / (√r + δ√(1−ρ₂ᵗ)), which costs the same element-wise
    work as Keras' rule.

    Args:
        learning_rate: Float ≥ 0 or a schedule. ε. Defaults to 0.001.
        beta_1: Float in [0, 1). ρ₁. Defaults to 0.9.
        beta_2: Float in [0, 1). ρ₂. Defaults to 0.999.
        epsilon: Float > 0. δ. Defaults to 1e-8.
        {{base_optimizer_keyword_args}}

    Reference: Goodfellow, Bengio & Courville, *Deep Learning*, 2016, Alg. 8.7;
    Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization", ICLR.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, name="adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = check_unit_interval("beta_1", beta_1)
        self.beta_2 = check_unit_interval("beta_2", beta_2)
        self.epsilon = check_positive("epsilon", epsilon)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._first_moments, self._second_moments = self.add_optimizer_variables(
            var_list, ["first_moment", "second_moment"]
        )

    def step_scalars(self, variable, learning_rate):
        """(η, δ') = (ε√(1−ρ₂ᵗ)/(1−ρ₁ᵗ), δ√(1−ρ₂ᵗ)) in the variable's dtype, t = step + 1."""
        t = ops.cast(self.iterations + 1, variable.dtype)
        correction_1 = 1.0 - ops.power(ops.convert_to_tensor(self.beta_1, variable.dtype), t)
        root_correction_2 = ops.sqrt(1.0 - ops.power(ops.convert_to_tensor(self.beta_2, variable.dtype), t))
        return learning_rate * root_correction_2 / correction_1, self.epsilon * root_correction_2

    def update_step(self, gradient, variable, learning_rate):
        g, lr = self.prepare(gradient, variable, learning_rate)
        step_size, epsilon = self.step_scalars(variable, lr)
        s = self.slot(self._first_moments, variable)
        r = self.slot(self._second_moments, variable)
        s_new = s + (1.0 - self.beta_1) * (g - s)
        r_new = r + (1.0 - self.beta_2) * (ops.square(g) - r)
        self.assign(s, s_new)
        self.assign(r, r_new)
        self.assign_sub(variable, step_size * s_new / (ops.sqrt(r_new) + epsilon))

    def kernel_update(self, kernels, gradient, variable, learning_rate):
        # The rule above in one pass (TF's ResourceApplyAdam makes three, and rounds
        # 1 − β in the dtype where the rule above rounds it from Python's double).
        g, lr = self.prepare(gradient, variable, learning_rate)
        step_size, epsilon = self.step_scalars(variable, lr)
        dtype = variable.dtype
        return kernels.book_apply_adam(
            var=self.handle(variable),
            m=self.handle(self.slot(self._first_moments, variable)),
            v=self.handle(self.slot(self._second_moments, variable)),
            grad=g,
            one_minus_beta1=ops.convert_to_tensor(1.0 - self.beta_1, dtype),
            one_minus_beta2=ops.convert_to_tensor(1.0 - self.beta_2, dtype),
            step_size=step_size,
            epsilon=epsilon,
        )

    def fused_update(self, gradient, variable, learning_rate):
        # TF's ResourceApplyAdam computes
        #   α = lr·√(1 − beta2_power)/(1 − beta1_power); m += (g − m)(1 − β₁);
        #   v += (g² − v)(1 − β₂); var −= m·α / (√v + ε')
        # i.e. the form above, operation for operation, when beta powers are ρ₁ᵗ, ρ₂ᵗ
        # (computed here from `iterations` as above, in the variable's dtype) and
        # ε' = δ√(1 − ρ₂ᵗ) — the mapping that moves δ onto the bias-corrected root.
        g, lr = self.prepare(gradient, variable, learning_rate)
        dtype = variable.dtype
        t = ops.cast(self.iterations + 1, dtype)
        beta_1 = ops.convert_to_tensor(self.beta_1, dtype)
        beta_2 = ops.convert_to_tensor(self.beta_2, dtype)
        beta_1_power = ops.power(beta_1, t)
        beta_2_power = ops.power(beta_2, t)
        return self.kernels().ResourceApplyAdam(
            var=self.handle(variable),
            m=self.handle(self.slot(self._first_moments, variable)),
            v=self.handle(self.slot(self._second_moments, variable)),
            beta1_power=beta_1_power,
            beta2_power=beta_2_power,
            lr=lr,
            beta1=beta_1,
            beta2=beta_2,
            epsilon=self.epsilon * ops.sqrt(1.0 - beta_2_power),
            grad=g,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
