"""Stochastic gradient descent — Algorithm 8.1 of Goodfellow, Bengio & Courville (2016)."""

import keras

from keras_optlab.optimizers import rules
from keras_optlab.optimizers.base import BookOptimizer, fill_docstring


@fill_docstring
@keras.saving.register_keras_serializable(package="keras_optlab")
class SGD(BookOptimizer):
    """Stochastic gradient descent (SGD), *Deep Learning* Algorithm 8.1, Sec. 8.3.1.

    ```
    Require: learning rate schedule ε₁, ε₂, …          (`learning_rate`)
    Require: initial parameter θ                        (the model's weights)
    k ← 1
    while stopping criterion not met do
        sample a minibatch, compute the gradient estimate g ← ∇θ (1/m) Σ L(f(x⁽ⁱ⁾; θ), y⁽ⁱ⁾)
        θ ← θ − ε_k g
        k ← k + 1
    end while
    ```
    The book decays ε_k linearly until step τ (its Eq. 8.14): pass
    `keras_optlab.schedules.LinearDecay` as `learning_rate`. SGD converges when
    Σ ε_k = ∞ and Σ ε_k² < ∞ (Robbins–Monro).

    Args:
        learning_rate: Float ≥ 0, a `keras.optimizers.schedules.LearningRateSchedule`
            or a callable of the step. ε. Defaults to 0.01.
        {{base_optimizer_keyword_args}}

    Example:
    >>> import keras, keras_optlab
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=keras_optlab.optimizers.SGD(0.1), loss="mse")

    Reference: Goodfellow, Bengio & Courville, *Deep Learning*, MIT Press 2016, Alg. 8.1.
    """

    def __init__(self, learning_rate=0.01, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)

    BASE_NAME = "sgd"
    RULE = "sgd"

    def update_step(self, gradient, variable, learning_rate):
        g, slots, hyperparameters = self.rule_inputs(gradient, variable, learning_rate)
        delta, new_slots = rules.sgd(g, **hyperparameters)
        self.apply_rule(variable, delta, slots, new_slots)
