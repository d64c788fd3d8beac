"""RMSProp with Nesterov momentum — Algorithm 8.6 of Goodfellow, Bengio & Courville (2016)."""

import keras

from keras_optlab import _checks
from keras_optlab.optimizers import rules
from keras_optlab.optimizers.base import BookOptimizer, fill_docstring


@fill_docstring
@keras.saving.register_keras_serializable(package="keras_optlab")
class NesterovRMSProp(BookOptimizer):
    """RMSProp with Nesterov momentum, *Deep Learning* Algorithm 8.6, Sec. 8.5.2.

    ```
    Require: global learning rate ε, decay rate ρ, momentum coefficient α
                                          (`learning_rate`, `rho`, `momentum`)
    Require: initial parameter θ, initial velocity v = 0
    initialize accumulation variable r = 0
    while stopping criterion not met do
        θ̃ ← θ + αv                                         (interim update)
        g ← ∇ at θ̃
        r ← ρr + (1 − ρ) g ⊙ g
        v ← αv − ε / √r ⊙ g                                 (element-wise)
        θ ← θ + v
    end while
    ```
    Two deliberate departures, both documented:

    * δ (`epsilon`) is added inside the root, √(δ + r), as in Algorithm 8.5: the
      book's 8.6 writes √r, which is 0/0 for a parameter whose gradients have all
      been zero. The test suite checks the δ → 0 limit against the literal box.
    * As in :class:`keras_optlab.optimizers.Nesterov`, the model's weights hold the
      look-ahead point φ = θ + αv, so Keras' gradient is the book's ∇J(θ + αv); the
      update becomes v ← αv − s, φ ← φ + αv − s with s = ε g / √(δ + r).

    Args:
        learning_rate: Float ≥ 0 or a schedule. ε. Defaults to 0.001.
        rho: Float in [0, 1). ρ. Defaults to 0.9.
        momentum: Float in [0, 1). α. Defaults to 0.9.
        epsilon: Float > 0. δ. Defaults to 1e-6.
        {{base_optimizer_keyword_args}}

    Reference: Goodfellow, Bengio & Courville, *Deep Learning*, 2016, Alg. 8.6.
    """

    BASE_NAME = "nesterov_rmsprop"
    NONNEGATIVE_SLOTS = ("accumulator",)
    RULE = "nesterov_rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.9, epsilon=1e-6, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = _checks.unit_interval("rho", rho)
        self.momentum = _checks.unit_interval("momentum", momentum)
        self.epsilon = _checks.positive("epsilon", epsilon)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.add_slots(var_list, ["accumulator", "velocity"])

    def rule_hyperparameters(self, variable, learning_rate):
        return {
            "learning_rate": learning_rate,
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.effective_epsilon(self.epsilon, variable),
        }

    def update_step(self, gradient, variable, learning_rate):
        g, (r, v), hyperparameters = self.rule_inputs(gradient, variable, learning_rate)
        delta, new_slots = rules.nesterov_rmsprop(g, r, v, **hyperparameters)
        self.apply_rule(variable, delta, (r, v), new_slots)

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon})
        return config
