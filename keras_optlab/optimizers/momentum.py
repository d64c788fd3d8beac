"""SGD with momentum — Algorithm 8.2 of Goodfellow, Bengio & Courville (2016)."""

import keras
from keras import ops

from keras_optlab.optimizers.base import BookOptimizer, check_unit_interval, fill_docstring


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

    def __init__(self, learning_rate=0.01, momentum=0.9, name="momentum", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = check_unit_interval("momentum", momentum)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity")

    def update_step(self, gradient, variable, learning_rate):
        g, lr = self.prepare(gradient, variable, learning_rate)
        v = self.slot(self._velocities, variable)
        v_new = self.momentum * v - lr * g
        self.assign(v, v_new)
        self.assign_add(variable, v_new)

    def fused_update(self, gradient, variable, learning_rate):
        # TF's ResourceApplyKerasMomentum: accum ← accum·momentum − grad·lr;
        # var ← var + accum — the rule above, operand for operand. With
        # use_nesterov it adds accum·momentum − grad·lr instead: Nesterov's rule.
        g, lr = self.prepare(gradient, variable, learning_rate)
        return self.kernels().ResourceApplyKerasMomentum(
            var=self.handle(variable),
            accum=self.handle(self.slot(self._velocities, variable)),
            lr=lr,
            grad=g,
            momentum=ops.convert_to_tensor(self.momentum, variable.dtype),
            use_nesterov=self.nesterov_kernel,
        )

    def kernel_update(self, kernels, gradient, variable, learning_rate):
        # keras_optlab's kernel: the rule above (Nesterov's, when nesterov_kernel),
        # operand for operand, in one pass.
        g, lr = self.prepare(gradient, variable, learning_rate)
        apply = kernels.book_apply_nesterov if self.nesterov_kernel else kernels.book_apply_momentum
        return apply(
            var=self.handle(variable),
            velocity=self.handle(self.slot(self._velocities, variable)),
            grad=g,
            lr=lr,
            momentum=ops.convert_to_tensor(self.momentum, variable.dtype),
        )

    nesterov_kernel = False  # Nesterov sets True

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum})
        return config
