"""SecondOrder: a Keras model wrapper that lets Newton's method see the loss
(Goodfellow et al. 2016, Sec. 8.6.1)."""

import keras

from keras_optlab.curvature.autodiff import for_backend
from keras_optlab.optimizers.closure import ClosureOptimizer


@keras.saving.register_keras_serializable(package="keras_optlab")
class SecondOrder(keras.Model):
    """Wrap ``model`` so that `fit` trains it with an optimizer that needs the loss:
    :class:`~keras_optlab.optimizers.Newton`, :class:`~keras_optlab.optimizers.LBFGS`
    or :class:`~keras_optlab.optimizers.NonlinearCG` (a ``ClosureOptimizer``).

    A Keras optimizer receives gradients, never the loss; a Newton step needs the
    loss itself (for Hessian-vector products or the full Hessian), a line search
    evaluates it along a direction. `train_step` here
    hands the optimizer a closure over the batch's compiled loss — the model's
    `compute_loss` on (x, y, sample_weight), regularization losses included — and
    updates the compiled metrics as Keras does. With any other optimizer (every
    keras_optlab first-order optimizer, any Keras optimizer) it is Keras' own
    `train_step`.

    The wrapper adds no weights: `wrapper.model` is the model being trained, and
    `predict`, `evaluate`, `.keras` save/load and `export()` (which exports the
    wrapped model) work as usual.

    Example:
    >>> import keras, keras_optlab
    >>> inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model = keras_optlab.SecondOrder(inner)
    >>> model.compile(optimizer=keras_optlab.optimizers.Newton(damping=1e-3), loss="mse")

    L-BFGS and nonlinear CG assume one fixed function: give ``fit`` the whole
    training set as one batch (``batch_size=len(x)``) unless a stochastic variant is
    what you want.

    TensorFlow, JAX and PyTorch backends, like Newton (on JAX through the stateless
    train step: no Python side effects inside ``jit``). On JAX, updates that the
    loss's own forward passes would make to non-trainable variables (batch
    normalization's moving statistics) are not kept; on another backend than these
    three the constructor raises ``RuntimeError`` naming ``keras.backend.backend()``.

    Loading a ``.keras`` file whose compile config has no optimizer
    (``"optimizer": null``) raises ``ValueError`` naming ``optimizer`` (plain Keras
    fails there with an ``AttributeError``); ``keras.saving.load_model(path,
    compile=False)`` loads such a file uncompiled.
    """

    def __init__(self, model, **kwargs):
        if not isinstance(model, keras.Model):
            raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")
        for_backend("keras_optlab.SecondOrder")
        super().__init__(**kwargs)
        self.model = model

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def build(self, input_shape):
        if not self.model.built:
            self.model.build(input_shape)
        self.built = True

    def train_step(self, *args):
        """Keras' ``train_step`` with a first-order optimizer; with a ``ClosureOptimizer``
        (Newton, LBFGS, NonlinearCG), one step of it on the batch's loss.

        TensorFlow and torch call ``train_step(data)`` and the step updates the
        variables. JAX calls ``train_step(state, data)`` inside ``jax.jit``: the same
        step runs in a ``keras.StatelessScope`` over the state and returns the new state,
        as Keras' own JAX trainer does (no Python side effects).
        """
        if not isinstance(self.optimizer, ClosureOptimizer):
            return super().train_step(*args)
        if keras.backend.backend() == "jax":
            state, data = args
            groups = (self.trainable_variables, self.non_trainable_variables, self.optimizer.variables,
                      self.metrics_variables)
            mapping = [pair for variables, values in zip(groups, state) for pair in zip(variables, values)]
            with keras.StatelessScope(state_mapping=mapping) as scope:
                logs = self._closure_step(*args[1:])
            return logs, tuple([scope.get_current_value(v) for v in variables] for variables in groups)
        return self._closure_step(*args)

    def _closure_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)

        def outputs_fn():
            return self(x, training=True)

        def output_loss_fn(y_pred):
            return self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)

        def loss_fn():
            return output_loss_fn(outputs_fn())

        # The metrics see the predictions at the weights the step starts from (one
        # forward pass of its own: on JAX the gradient's pass lives inside a transform).
        y_pred = keras.ops.stop_gradient(outputs_fn())
        loss = self.optimizer.closure_step(loss_fn, self.trainable_variables, outputs_fn, output_loss_fn)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def export(self, filepath, format="tf_saved_model", verbose=None, **kwargs):
        """Export the wrapped model (see `keras.Model.export`)."""
        return self.model.export(filepath, format=format, verbose=verbose, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["model"] = keras.saving.serialize_keras_object(self.model)
        return config

    def compile_from_config(self, config):
        """Keras' own, after checking that the saved compile config names an optimizer.

        Keras' ``Model.compile_from_config`` compiles with ``optimizer=None`` and then
        calls ``None.build`` (an ``AttributeError``); a file in that state is refused
        here with a ``ValueError`` that says how to load it anyway.
        """
        if not isinstance(config, dict) or config.get("optimizer") is None:
            optimizer = config.get("optimizer") if isinstance(config, dict) else config
            raise ValueError(
                "The saved compile config of this keras_optlab.SecondOrder model has no `optimizer`, so it "
                "cannot be compiled as saved. Load it with keras.saving.load_model(path, compile=False) "
                f"and call compile() yourself. Received: optimizer={optimizer!r}"
            )
        return super().compile_from_config(config)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if "model" not in config:
            raise ValueError(
                "A keras_optlab.SecondOrder config must hold the wrapped `model`. "
                f"Received: config keys {sorted(config)}"
            )
        model = keras.saving.deserialize_keras_object(config.pop("model"), custom_objects=custom_objects)
        return cls(model, **config)
