"""RMSProp — Algorithm 8.5 of Goodfellow, Bengio & Courville (2016)."""

import keras
from keras import ops

from keras_optlab.optimizers.base import BookOptimizer, check_positive, check_unit_interval, fill_docstring


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

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-6, name="rmsprop", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = check_unit_interval("rho", rho)
        self.epsilon = check_positive("epsilon", epsilon)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._accumulators = self.add_optimizer_variables(var_list, "accumulator")

    def update_step(self, gradient, variable, learning_rate):
        g, lr = self.prepare(gradient, variable, learning_rate)
        r = self.slot(self._accumulators, variable)
        r_new = r + (1.0 - self.rho) * (ops.square(g) - r)  # = ρr + (1 − ρ)g², one op fewer
        self.assign(r, r_new)
        self.assign_sub(variable, lr * g / ops.sqrt(r_new + self.epsilon))

    def kernel_update(self, kernels, gradient, variable, learning_rate):
        # The rule above in one pass; 1 − ρ is rounded to the dtype once, as above.
        # (TF's ResourceApplyRMSProp needs a momentum slot the book has not.)
        g, lr = self.prepare(gradient, variable, learning_rate)
        dtype = variable.dtype
        return kernels.book_apply_rmsprop(
            var=self.handle(variable),
            accumulator=self.handle(self.slot(self._accumulators, variable)),
            grad=g,
            lr=lr,
            one_minus_rho=ops.convert_to_tensor(1.0 - self.rho, dtype),
            epsilon=ops.convert_to_tensor(self.epsilon, dtype),
        )

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "epsilon": self.epsilon})
        return config
