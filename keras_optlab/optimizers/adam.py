"""Adam — Algorithm 8.7 of Goodfellow, Bengio & Courville (2016)."""

import keras

from keras_optlab import _checks
from keras_optlab.optimizers import rules
from keras_optlab.optimizers.base import BookOptimizer, fill_docstring


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

    In float16/bfloat16 the bias corrections 1 − ρ₁ᵗ, √(1 − ρ₂ᵗ) are computed in
    float32 (ρ₂ = 0.999 is 1.0 in bfloat16) and δ√(1 − ρ₂ᵗ) is at least the dtype's
    smallest normal number (float16: 6.1e-5; the default δ = 1e-8 is 0 in float16),
    so a squared gradient that underflows to 0 never divides by 0. TF's fused
    `ResourceApplyAdam` forms these scalars in the variable's dtype: half-precision
    Adam takes the keras.ops rule.

    Args:
        learning_rate: Float ≥ 0 or a schedule. ε. Defaults to 0.001.
        beta_1: Float in [0, 1). ρ₁. Defaults to 0.9.
        beta_2: Float in [0, 1). ρ₂. Defaults to 0.999.
        epsilon: Float > 0. δ. Defaults to 1e-8.
        {{base_optimizer_keyword_args}}

    Reference: Goodfellow, Bengio & Courville, *Deep Learning*, 2016, Alg. 8.7;
    Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization", ICLR.
    """

    BASE_NAME = "adam"
    NONNEGATIVE_SLOTS = ("second_moment",)
    RULE = "adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = _checks.unit_interval("beta_1", beta_1)
        self.beta_2 = _checks.unit_interval("beta_2", beta_2)
        self.epsilon = _checks.positive("epsilon", epsilon)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.add_slots(var_list, ["first_moment", "second_moment"])

    def rule_hyperparameters(self, variable, learning_rate):
        return {
            "learning_rate": learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.effective_epsilon(self.epsilon, variable),
            "step": self.iterations + 1,
        }

    def update_step(self, gradient, variable, learning_rate):
        g, (s, r), hyperparameters = self.rule_inputs(gradient, variable, learning_rate)
        delta, new_slots = rules.adam(g, s, r, **hyperparameters)
        self.apply_rule(variable, delta, (s, r), new_slots)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
