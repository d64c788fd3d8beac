"""AdaGrad — Algorithm 8.4 of Goodfellow, Bengio & Courville (2016)."""

import keras
from keras import ops

from keras_optlab.optimizers.base import BookOptimizer, check_number, check_positive, fill_docstring


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

    def __init__(self, learning_rate=0.01, epsilon=1e-7, initial_accumulator_value=0.0, name="adagrad", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.epsilon = check_positive("epsilon", epsilon)
        self.initial_accumulator_value = check_number("initial_accumulator_value", initial_accumulator_value, low=0.0)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        initializer = keras.initializers.Constant(self.initial_accumulator_value)
        self._accumulators = self.add_optimizer_variables(var_list, "accumulator", initializer=initializer)

    def update_step(self, gradient, variable, learning_rate):
        g, lr = self.prepare(gradient, variable, learning_rate)
        r = self.slot(self._accumulators, variable)
        r_new = r + ops.square(g)
        self.assign(r, r_new)
        self.assign_sub(variable, lr * g / (ops.sqrt(r_new) + self.epsilon))

    def kernel_update(self, kernels, gradient, variable, learning_rate):
        g, lr = self.prepare(gradient, variable, learning_rate)
        return kernels.book_apply_adagrad(
            var=self.handle(variable),
            accumulator=self.handle(self.slot(self._accumulators, variable)),
            grad=g,
            lr=lr,
            epsilon=ops.convert_to_tensor(self.epsilon, variable.dtype),
        )

    def fused_update(self, gradient, variable, learning_rate):
        # TF's ResourceApplyAdagradV2 (update_slots=True): accum += grad²;
        # var -= grad·lr / (√accum + epsilon) — the book's δ outside the root, as above.
        # (V1, ResourceApplyAdagrad, has no epsilon.)
        g, lr = self.prepare(gradient, variable, learning_rate)
        return self.kernels().ResourceApplyAdagradV2(
            var=self.handle(variable),
            accum=self.handle(self.slot(self._accumulators, variable)),
            lr=lr,
            epsilon=ops.convert_to_tensor(self.epsilon, variable.dtype),
            grad=g,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon, "initial_accumulator_value": self.initial_accumulator_value})
        return config
