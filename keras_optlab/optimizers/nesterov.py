"""SGD with Nesterov momentum — Algorithm 8.3 of Goodfellow, Bengio & Courville (2016)."""

import keras

from keras_optlab.optimizers import rules
from keras_optlab.optimizers.base import fill_docstring
from keras_optlab.optimizers.momentum import Momentum


@fill_docstring
@keras.saving.register_keras_serializable(package="keras_optlab")
class Nesterov(Momentum):
    """SGD with Nesterov momentum, *Deep Learning* Algorithm 8.3, Sec. 8.3.3.

    The book's algorithm evaluates the gradient at the interim point θ + αv:
    ```
    Require: learning rate ε, momentum parameter α       (`learning_rate`, `momentum`)
    Require: initial parameter θ, initial velocity v = 0
    while stopping criterion not met do
        θ̃ ← θ + αv                                         (interim update)
        g ← ∇ at θ̃
        v ← αv − εg
        θ ← θ + v
    end while
    ```
    A Keras optimizer cannot choose where the gradient is taken: Keras always
    differentiates at the model's weights. So the model's weights hold the
    look-ahead point φ = θ + αv itself, and the gradient Keras computes is exactly
    the book's ∇J(θ + αv). Substituting θ = φ − αv into the loop gives the update
    that is implemented:
    ```
        g ← ∇ at φ
        v ← αv − εg
        φ ← φ + αv − εg          (= θ_new + α v_new)
    ```
    v starts at 0, so φ = θ at the start; to read the book's θ at any time, subtract
    α·v (slot "velocity") from the weights.

    Args:
        learning_rate: Float ≥ 0 or a schedule. ε. Defaults to 0.01.
        momentum: Float in [0, 1). α. Defaults to 0.9.
        {{base_optimizer_keyword_args}}

    Reference: Goodfellow, Bengio & Courville, *Deep Learning*, 2016, Alg. 8.3;
    Sutskever, Martens, Dahl & Hinton (2013), "On the importance of initialization
    and momentum in deep learning".
    """

    # Arguments, the velocity slot and the config are Momentum's; only the rule differs.
    BASE_NAME = "nesterov"
    RULE = "nesterov"

    def __init__(self, learning_rate=0.01, momentum=0.9, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        g, (v,), hyperparameters = self.rule_inputs(gradient, variable, learning_rate)
        delta, new_slots = rules.nesterov(g, v, **hyperparameters)
        self.apply_rule(variable, delta, (v,), new_slots)
