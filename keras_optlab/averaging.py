"""Polyak averaging in use: evaluate, predict and checkpoint with the averaged weights.

*Deep Learning* Sec. 8.7.3 (Polyak & Juditsky 1992): an optimizer visiting the points
θ⁽¹⁾, …, θ⁽ᵗ⁾ reports their mean θ̂⁽ᵗ⁾ = (1/t) Σᵢ θ⁽ⁱ⁾. On a convex problem with noisy
gradients a constant-step SGD iterate keeps bouncing at a noise floor while the mean
converges (examples/polyak_averaging.py; docs/polyak.md). Every keras_optlab first-order
optimizer keeps that mean when built with ``polyak="arithmetic"``
(:class:`keras_optlab.optimizers.base.BookOptimizer`), writes it into the model at the
end of ``fit`` (``finalize_variable_values``), and exposes it as
``optimizer.averaged_variables``.

:class:`SwapAveragedWeights` is to Polyak averaging what ``keras.callbacks.SwapEMAWeights``
is to Keras' ``use_ema``: inside ``fit`` the validation pass, and ``evaluate`` /
``predict`` called with it, see the averaged weights, and training goes on from the raw
ones.
"""

import keras
from keras import ops

from keras_optlab import _checks


def _sync(model):
    """Bring ``model``'s variables up to date on JAX (``model.jax_state_sync()``, public on
    Keras' JAX trainer: between steps the trainer holds the state outside the variables)."""
    sync = getattr(model, "jax_state_sync", None)
    if callable(sync):
        sync()


def averaging_optimizer(model):
    """``model``'s optimizer that keeps a Polyak average (a ``LossScaleOptimizer``
    unwrapped), or ``ValueError`` saying why there is none."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    if getattr(optimizer, "polyak", None) is None:
        hint = (
            " For Keras' exponential average (use_ema=True) use keras.callbacks.SwapEMAWeights."
            if getattr(optimizer, "use_ema", False) else ""
        )
        raise ValueError(
            "SwapAveragedWeights needs a model whose optimizer keeps a Polyak average: a "
            "keras_optlab optimizer constructed with polyak='arithmetic'." + hint
            + f" Received: optimizer={_checks.shown(optimizer)} "
            f"(polyak={getattr(optimizer, 'polyak', None)!r})"
        )
    return optimizer


class SwapAveragedWeights(keras.callbacks.Callback):
    """Swap the optimizer's Polyak average θ̂ into the model for evaluation, back after.

    ``on_test_begin`` / ``on_predict_begin``: the model's trainable variables take their
    averages θ̂ (``optimizer.average_of(variable)``) and their raw values θ are kept in
    host memory (one copy of the trainable weights); ``on_test_end`` /
    ``on_predict_end``: θ is written back, so training continues from the raw iterate
    and the optimizer's state (θ̂ included) is never touched. Before the optimizer's
    first step (not built yet) the average is the weights, and nothing is swapped. With ``swap_on_epoch=True``
    the model also holds θ̂ from ``on_epoch_end`` to the next ``on_epoch_begin``:
    callbacks after this one in the list (``keras.callbacks.ModelCheckpoint``) save the
    averaged weights.

    Unlike ``keras.callbacks.SwapEMAWeights``, which swaps the model with the
    optimizer's slots in place, the average stays in the optimizer: a checkpoint of the
    optimizer taken while swapped holds the true average, and a ``fit`` that ends (or
    stops early) while swapped still ends with the average in the model (what
    ``finalize_variable_values`` writes anyway).

    Example:

    ```python
    model.compile(optimizer=keras_optlab.SGD(0.1, polyak="arithmetic"), loss="mse")
    model.fit(x, y, validation_data=(xv, yv), callbacks=[SwapAveragedWeights()])
    # val_loss is the averaged weights' loss; after fit the model holds the average.
    ```

    Args:
        swap_on_epoch: Bool, defaults to `False`. Also hold the averaged weights
            between epochs (for checkpoints).

    Reference: Goodfellow, Bengio & Courville, *Deep Learning*, 2016, Sec. 8.7.3;
    Polyak & Juditsky (1992), "Acceleration of Stochastic Approximation by Averaging",
    SIAM J. Control Optim. 30(4).
    """

    def __init__(self, swap_on_epoch=False):
        super().__init__()
        self.swap_on_epoch = _checks.boolean("swap_on_epoch", swap_on_epoch)
        self._raw = None  # the raw weights while the average is in the model
        self._held = False  # the average was in the model before evaluation began

    @property
    def swapped(self):
        """Whether the model holds the averaged weights now."""
        return self._raw is not None

    def _swap_in(self):
        if self.swapped:
            return
        optimizer = averaging_optimizer(self.model)
        if not optimizer.built:
            return  # no step taken yet: the average is the weights themselves
        _sync(self.model)
        variables = list(self.model.trainable_variables)
        averages = [optimizer.average_of(v) for v in variables]
        self._raw = [ops.convert_to_numpy(v.value) for v in variables]
        for variable, average in zip(variables, averages):
            variable.assign(ops.copy(average.value))  # not the slot's own buffer (JAX)

    def _swap_out(self):
        if not self.swapped:
            return
        _sync(self.model)
        for variable, raw in zip(self.model.trainable_variables, self._raw):
            variable.assign(raw)
        self._raw = None

    def on_train_begin(self, logs=None):
        averaging_optimizer(self.model)  # fail before the first step, not at validation

    def on_train_end(self, logs=None):
        # finalize_variable_values wrote the average into the model already: the raw
        # weights of the last epoch are dropped, as Keras drops them.
        self._raw = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.swap_on_epoch:
            self._swap_out()

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch:
            self._swap_in()

    def on_test_begin(self, logs=None):
        self._held = self.swapped  # swapped already (swap_on_epoch): stays so after
        self._swap_in()

    def on_test_end(self, logs=None):
        if not self._held:
            self._swap_out()

    def on_predict_begin(self, logs=None):
        self.on_test_begin(logs)

    def on_predict_end(self, logs=None):
        self.on_test_end(logs)


__all__ = ["SwapAveragedWeights", "averaging_optimizer"]
