"""AdaGrad — Algorithm 8.4 of Goodfellow, Bengio & Courville (2016)."""

import keras

from keras_optlab import _checks
from keras_optlab.optimizers import rules
from keras_optlab.optimizers.base import BookOptimizer, fill_docstring


@fill_docstring
@keras.saving.register_keras_serializable(package="keras_optlab")
class AdaGrad(BookOptimizer):
    """AdaGrad, *Deep Learning* Algorithm 8.4, Sec. 8.5.1.

    ```
    Require: global learning rate ε                      (`learning_rate`)
    Require: initial parameter θ
    Require: small constant δ, perhaps 10⁻⁷               (`epsilon`)
    initialize gradient accumulation r = 0                (`initial_accumulator_value`)
    while stopping criterion not met do
        compute the gradient estimate g at θ
        r ← r + g ⊙ g
        Δθ ← − ε / (δ + √r) ⊙ g                           (element-wise)
        θ ← θ + Δθ
    end while
    ```
    Each parameter's learning rate shrinks with the square root of the sum of all
    its past squared gradients. Keras' `Adagrad` starts r at 0.1, which damps the
    first steps, and puts δ inside the root (ε/√(r + δ)); here r starts at 0 as in
    the book unless `initial_accumulator_value` says otherwise, and δ is added to √r.

    Args:
        learning_rate: Float ≥ 0 or a schedule. ε. Defaults to 0.01.
        epsilon: Float > 0. δ, added to √r. Defaults to 1e-7.
        initial_accumulator_value: Float ≥ 0. Initial r. Defaults to 0.0.
        {{base_optimizer_keyword_args}}

    Reference: Goodfellow, Bengio & Courville, *Deep Learning*, 2016, Alg. 8.4;
    Duchi, Hazan & Singer (2011), "Adaptive Subgradient Methods for Online Learning
    and Stochastic Optimization", JMLR 12.
    """

    BASE_NAME = "adagrad"
    NONNEGATIVE_SLOTS = ("accumulator",)
    RULE = "adagrad"

    def __init__(self, learning_rate=0.01, epsilon=1e-7, initial_accumulator_value=0.0, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.epsilon = _checks.positive("epsilon", epsilon)
        self.initial_accumulator_value = _checks.number("initial_accumulator_value", initial_accumulator_value, low=0.0)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.add_slots(var_list, ["accumulator"], initializer=keras.initializers.Constant(self.initial_accumulator_value))

    def rule_hyperparameters(self, variable, learning_rate):
        return {"learning_rate": learning_rate, "epsilon": self.effective_epsilon(self.epsilon, variable)}

    def update_step(self, gradient, variable, learning_rate):
        g, (r,), hyperparameters = self.rule_inputs(gradient, variable, learning_rate)
        delta, new_slots = rules.adagrad(g, r, **hyperparameters)
        self.apply_rule(variable, delta, (r,), new_slots)

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon, "initial_accumulator_value": self.initial_accumulator_value})
        return config
