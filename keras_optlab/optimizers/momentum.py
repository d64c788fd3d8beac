"""SGD with momentum — Algorithm 8.2 of Goodfellow, Bengio & Courville (2016)."""

import keras
from keras_optlab import _checks
from keras_optlab.optimizers import rules
from keras_optlab.optimizers.base import BookOptimizer, fill_docstring


@fill_docstring
@keras.saving.register_keras_serializable(package="keras_optlab")
class Momentum(BookOptimizer):
    """SGD with (heavy-ball) momentum, *Deep Learning* Algorithm 8.2, Sec. 8.3.2.

    ```
    Require: learning rate ε                            (`learning_rate`)
    Require: momentum parameter α                       (`momentum`)
    Require: initial parameter θ, initial velocity v = 0  (slot "velocity")
    while stopping criterion not met do
        compute the gradient estimate g at θ
        v ← αv − εg
        θ ← θ + v
    end while
    ```
    The velocity is an exponentially decaying average of negative gradients; on a
    constant gradient g the step size approaches the terminal speed ε‖g‖/(1 − α).
    Unlike PyTorch (v ← αv + g; θ ← θ − εv) the learning rate is inside the velocity,
    so changing ε mid-training does not rescale the accumulated velocity.

    Args:
        learning_rate: Float ≥ 0 or a schedule. ε. Defaults to 0.01.
        momentum: Float in [0, 1). α. Defaults to 0.9.
        {{base_optimizer_keyword_args}}

    Reference: Goodfellow, Bengio & Courville, *Deep Learning*, 2016, Alg. 8.2;
    Polyak (1964), "Some methods of speeding up the convergence of iteration methods".
    """

    BASE_NAME = "momentum"
    RULE = "momentum"

    def __init__(self, learning_rate=0.01, momentum=0.9, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = _checks.unit_interval("momentum", momentum)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.add_slots(var_list, ["velocity"])

    def rule_hyperparameters(self, variable, learning_rate):
        return {"learning_rate": learning_rate, "momentum": self.momentum}

    def update_step(self, gradient, variable, learning_rate):
        g, (v,), hyperparameters = self.rule_inputs(gradient, variable, learning_rate)
        delta, new_slots = rules.momentum(g, v, **hyperparameters)
        self.apply_rule(variable, delta, (v,), new_slots)

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum})
        return config
