"""RMSProp — Algorithm 8.5 of Goodfellow, Bengio & Courville (2016)."""

import keras

from keras_optlab import _checks
from keras_optlab.optimizers import rules
from keras_optlab.optimizers.base import BookOptimizer, fill_docstring


@fill_docstring
@keras.saving.register_keras_serializable(package="keras_optlab")
class RMSProp(BookOptimizer):
    """RMSProp, *Deep Learning* Algorithm 8.5, Sec. 8.5.2.

    ```
    Require: global learning rate ε, decay rate ρ         (`learning_rate`, `rho`)
    Require: initial parameter θ
    Require: small constant δ, usually 10⁻⁶ (stabilizes division by small numbers)
                                                          (`epsilon`)
    initialize accumulation variable r = 0
    while stopping criterion not met do
        compute the gradient estimate g at θ
        r ← ρr + (1 − ρ) g ⊙ g
        Δθ ← − ε / √(δ + r) ⊙ g                           (element-wise)
        θ ← θ + Δθ
    end while
    ```
    AdaGrad's sum becomes an exponentially weighted moving average, so history from
    far in the past is forgotten. δ sits *inside* the square root as in the book
    and in Keras 3's `RMSprop` (which this class matches, the test suite checks);
    PyTorch's `RMSprop` adds it outside, ε/(√r + δ).

    Args:
        learning_rate: Float ≥ 0 or a schedule. ε. Defaults to 0.001.
        rho: Float in [0, 1). ρ. Defaults to 0.9.
        epsilon: Float > 0. δ. Defaults to 1e-6.
        {{base_optimizer_keyword_args}}

    Reference: Goodfellow, Bengio & Courville, *Deep Learning*, 2016, Alg. 8.5;
    Hinton (2012), Neural Networks for Machine Learning, lecture 6e.
    """

    BASE_NAME = "rmsprop"
    NONNEGATIVE_SLOTS = ("accumulator",)
    RULE = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-6, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = _checks.unit_interval("rho", rho)
        self.epsilon = _checks.positive("epsilon", epsilon)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.add_slots(var_list, ["accumulator"])

    def rule_hyperparameters(self, variable, learning_rate):
        return {"learning_rate": learning_rate, "rho": self.rho, "epsilon": self.effective_epsilon(self.epsilon, variable)}

    def update_step(self, gradient, variable, learning_rate):
        g, (r,), hyperparameters = self.rule_inputs(gradient, variable, learning_rate)
        delta, new_slots = rules.rmsprop(g, r, **hyperparameters)
        self.apply_rule(variable, delta, (r,), new_slots)

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "epsilon": self.epsilon})
        return config
