"""SecondOrder: a Keras model wrapper that lets Newton's method see the loss
(Goodfellow et al. 2016, Sec. 8.6.1)."""

import warnings

import keras
from keras import ops

from keras_optlab import _checks
from keras_optlab.curvature.autodiff import for_backend
from keras_optlab.curvature.oracle import output_link, split_loss
from keras_optlab.optimizers.closure import ClosureOptimizer, LineSearchOptimizer


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

    Full-batch training with LBFGS or NonlinearCG (``fit(batch_size=len(x))``): each
    step starts from the loss and gradient the last step's line search computed at
    the new point (no evaluation of its own: the batch is recognized by its size and
    sums, the point by the weights), and no forward pass is spent on the loss metric
    (one is made, at the weights the step starts from, only when other metrics are
    compiled or the model has non-trainable weights to update, such as
    BatchNormalization's moving statistics). Mini-batches (more than one batch per
    epoch) are warned about once: the line search and the memory then see a different
    function at every step. ``gradient_tolerance`` (float > 0 or ``None``) stops
    training (``model.stop_training``) at the first step whose starting point has
    ‖∇J‖∞ ≤ it; that step moves nothing and costs at most one evaluation. With a
    tolerance the logs carry ``gradient_norm_inf`` (‖∇J‖∞ where each step started) and
    ``converged`` (1.0 once reached); without one they are Keras' own.

    Loading a ``.keras`` file whose compile config has no optimizer
    (``"optimizer": null``) raises ``ValueError`` naming ``optimizer`` (plain Keras
    fails there with an ``AttributeError``); ``keras.saving.load_model(path,
    compile=False)`` loads such a file uncompiled.
    """

    def __init__(self, model, gradient_tolerance=None, **kwargs):
        if not isinstance(model, keras.Model):
            raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")
        gradient_tolerance = _checks.positive("gradient_tolerance", gradient_tolerance, allow_none=True)
        for_backend("keras_optlab.SecondOrder")
        super().__init__(**kwargs)
        self.model = model
        self.gradient_tolerance = gradient_tolerance
        self._warned_minibatch = False

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
        # Gauss-Newton splits a cross-entropy on probabilities at the logits (at the
        # probabilities G would be the empirical Fisher; oracle.output_link says why).
        link = output_link(self, network=self.model) if getattr(self.optimizer, "curvature", None) == \
            "gauss_newton" else None
        outputs_fn, output_loss_fn = split_loss(self, x, y, sample_weight, link, training=True)

        def loss_fn():
            return output_loss_fn(outputs_fn())

        # One forward pass at the weights the step starts from, only when something needs
        # it: compiled metrics (Keras reports them there) or non-trainable weights that a
        # training-mode pass updates (BatchNormalization's moving statistics). The loss
        # metric takes the loss the step itself reports.
        compiled_metrics = getattr(self, "_metrics_compiled", True)
        y_pred = ops.stop_gradient(self(x, training=True)) if compiled_metrics or self.non_trainable_weights else None
        loss, gradient_inf = self.optimizer.fit_step(loss_fn, self.trainable_variables, outputs_fn, output_loss_fn,
                                                     batch=_fingerprint(data), gradient_tolerance=self.gradient_tolerance)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight) if compiled_metrics else \
            self.get_metrics_result()
        if self.gradient_tolerance is not None:  # only then: train_on_batch still returns the loss alone
            logs = dict(logs, gradient_norm_inf=gradient_inf,
                        converged=ops.cast(gradient_inf <= self.gradient_tolerance, "float32"))
        return logs

    def compile(self, *args, **kwargs):
        """Keras' ``compile``, noting whether metrics besides the loss were asked for
        (the train step spends a forward pass on them only then)."""
        super().compile(*args, **kwargs)
        config = dict(zip(("optimizer", "loss", "loss_weights", "metrics", "weighted_metrics"), args), **kwargs)
        self._metrics_compiled = bool(config.get("metrics") or config.get("weighted_metrics"))

    def fit(self, x=None, y=None, batch_size=None, *args, callbacks=None, **kwargs):
        """Keras' ``fit``; with LBFGS/NonlinearCG on arrays split into mini-batches a
        warning (once), and with ``gradient_tolerance`` the callback that stops training
        when a step starts from a converged point."""
        if isinstance(self.optimizer, LineSearchOptimizer) and not self._warned_minibatch:
            samples = _samples(x)
            size = batch_size if batch_size is not None else (None if kwargs.get("steps_per_epoch") else 32)
            if samples is not None and size is not None and samples > size:
                self._warned_minibatch = True
                warnings.warn(
                    f"{type(self.optimizer).__name__} assumes one fixed function (the full-batch loss): with "
                    f"{samples} samples in batches of {size} the line search and the memory see a different "
                    f"function at every step. Pass batch_size={samples} for full-batch training.",
                    stacklevel=2,
                )
        if self.gradient_tolerance is not None and isinstance(self.optimizer, ClosureOptimizer):
            callbacks = [*(callbacks or []), _StopWhenConverged(self.gradient_tolerance)]
        return super().fit(x, y, batch_size, *args, callbacks=callbacks, **kwargs)

    def export(self, filepath, format="tf_saved_model", verbose=None, **kwargs):
        """Export the wrapped model (see `keras.Model.export`)."""
        return self.model.export(filepath, format=format, verbose=verbose, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["model"] = keras.saving.serialize_keras_object(self.model)
        if self.gradient_tolerance is not None:
            config["gradient_tolerance"] = self.gradient_tolerance
        return config

    def compile_from_config(self, config):
        """What Keras' own does (``compile(**deserialized config)``, then the optimizer's
        variables), after checking that the saved compile config names an optimizer.

        Keras' ``Model.compile_from_config`` compiles with ``optimizer=None`` and then
        calls ``None.build`` (an ``AttributeError``); a file in that state is refused
        here with a ``ValueError`` that says how to load it anyway. (Keras' own skips
        the compile of a model that overrides ``compile``, as this one does.)
        """
        if not isinstance(config, dict) or config.get("optimizer") is None:
            optimizer = config.get("optimizer") if isinstance(config, dict) else config
            raise ValueError(
                "The saved compile config of this keras_optlab.SecondOrder model has no `optimizer`, so it "
                "cannot be compiled as saved. Load it with keras.saving.load_model(path, compile=False) "
                f"and call compile() yourself. Received: optimizer={optimizer!r}"
            )
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

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


def _fingerprint(data):
    """Four numbers that tell one batch from another: its size and the sums of its
    inputs, targets and weights (float64 where the backend has it; order-independent,
    so a shuffled full batch is the same batch up to rounding)."""
    dtype = "float32" if keras.backend.backend() == "jax" and not _jax_x64() else "float64"
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    sums = []
    for part in (x, y, sample_weight):
        leaves = [ops.convert_to_tensor(t) for t in keras.tree.flatten(part)] if part is not None else []
        sums.append(sum((ops.sum(ops.cast(t, dtype)) for t in leaves), ops.zeros((), dtype)))
    first = keras.tree.flatten(x)[0]
    return ops.stack([ops.cast(ops.shape(first)[0], dtype), *sums])


def _jax_x64():
    import jax  # noqa: PLC0415 - on the JAX backend only

    return bool(jax.config.jax_enable_x64)


def _samples(x):
    """The number of samples in array data (``None`` for a dataset or generator)."""
    leaves = keras.tree.flatten(x) if x is not None else []
    shape = getattr(leaves[0], "shape", None) if leaves else None
    return int(shape[0]) if shape is not None and len(shape) and shape[0] is not None else None


class _StopWhenConverged(keras.callbacks.Callback):
    """Stops ``fit`` after the first step that started at a point with ‖∇J‖∞ at most the
    tolerance (``logs["converged"]``)."""

    def __init__(self, tolerance):
        super().__init__()
        self.tolerance = tolerance

    def on_train_batch_end(self, batch, logs=None):
        if logs and float(logs.get("converged", 0.0)) >= 1.0:
            self.model.stop_training = True
