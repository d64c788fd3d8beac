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
ones. Beside it, ``keras.callbacks.EarlyStopping``, ``ModelCheckpoint`` and
``BackupAndRestore`` store the weights their monitored quantity was measured on, in any
order of the callbacks.

:func:`update_batch_norm` recomputes BatchNormalization's moving statistics for the
weights the model holds (``torch.optim.swa_utils.update_bn``'s role): the moving
statistics of a run belong to the raw iterates, not to their average.
"""

import keras
import numpy as np
from keras import ops

from keras_optlab import _checks, _keras_hooks

# The batch size `update_batch_norm` cuts arrays into when none is given (fit's default).
DEFAULT_BATCH_SIZE = 32


def _sync(model):
    """Bring ``model``'s variables up to date on JAX (``model.jax_state_sync()``, public on
    Keras' JAX trainer: between steps the trainer holds the state outside the variables)."""
    sync = getattr(model, "jax_state_sync", None)
    if callable(sync):
        sync()


def _host(variables):
    """The variables' values, copied to NumPy."""
    return [np.array(ops.convert_to_numpy(v.value)) for v in variables]


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


def _batch_norm_layers(model):
    """The BatchNormalization layers of ``model`` whose statistics training moves (built,
    trainable: a frozen one runs in inference mode and keeps its statistics, as in fit)."""
    return [
        layer for layer in _keras_hooks.all_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.built and layer.trainable
    ]


def _statistics(model):
    """The moving mean and variance variables of ``model``'s BatchNormalization layers."""
    return [v for layer in _batch_norm_layers(model) for v in (layer.moving_mean, layer.moving_variance)]


def _input_batches(x, kind, batch_size, steps):
    """The model inputs of each batch: ``x`` cut into batches of ``batch_size``, or the
    batches of an iterable (the first entry of a tuple ``(x, y[, sample_weight])``, as
    Keras reads a dataset's elements); at most ``steps`` of them."""
    if kind == "arrays":
        n = int(keras.tree.flatten(x)[0].shape[0])
        starts = range(0, n, batch_size)
        for count, start in enumerate(starts):
            if steps is not None and count >= steps:
                return
            yield keras.tree.map_structure(lambda a, s=start: a[s:s + batch_size], x)
        return
    for count, batch in enumerate(x):
        if steps is not None and count >= steps:
            return
        yield batch[0] if isinstance(batch, tuple) else batch


def _recompute(model, batches, name, value):
    """Set the moving statistics of ``model``'s BatchNormalization layers to the mean over
    ``batches`` of each batch's statistics, from forward passes in training mode.

    Keras' own update is used, with ``momentum`` 0 for each pass: the moving statistics
    are then exactly that batch's mean and (biased) variance as the layer computes them,
    read back and summed in float64. Every other non-trainable variable (a Dropout's seed
    state) is restored after the passes; on an error, or with no batch, everything is.
    """
    layers = _batch_norm_layers(model)
    statistics = [v for layer in layers for v in (layer.moving_mean, layer.moving_variance)]
    if not statistics:
        return 0
    states = list(model.non_trainable_variables)
    kept = _host(states)
    momenta = [layer.momentum for layer in layers]
    totals = [np.zeros(v.shape, "float64") for v in statistics]
    count = 0
    done = False
    try:
        for layer in layers:
            layer.momentum = 0.0
        for v in statistics:  # moving × 0 must be 0: no NaN from non-finite old statistics
            v.assign(ops.zeros(v.shape, v.dtype))
        for inputs in batches:
            model(inputs, training=True)
            for total, v in zip(totals, statistics):
                total += ops.convert_to_numpy(v.value)
            count += 1
        if count == 0:
            raise ValueError(
                f"`{name}` yielded no batch: the statistics need at least one. Received: {name}={_checks.shown(value)}"
            )
        done = True
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        ids = {id(v) for v in statistics} if done else set()
        for v, value in zip(states, kept):
            if id(v) not in ids:
                v.assign(value)
    for total, v in zip(totals, statistics):
        v.assign(ops.cast(total / count, v.dtype))
    return count


def update_batch_norm(model, x, batch_size=None, steps=None):
    """Recompute the moving mean and variance of ``model``'s BatchNormalization layers for
    the weights it holds now (after ``fit``: the Polyak average θ̂).

    The moving statistics a run leaves are averages over the *raw* iterates θ; for the
    averaged weights they are stale (Izmailov et al. 2018's SWA; torch's
    ``torch.optim.swa_utils.update_bn``). This runs ``model(inputs, training=True)`` on each
    batch of ``x`` — BatchNormalization normalizes with the batch's own statistics, as in
    ``fit``, so a later layer's inputs are what training would give it; Dropout is active,
    as in ``fit`` and in torch's ``update_bn`` — and sets each layer's ``moving_mean`` and
    ``moving_variance`` to the mean over the batches of the batch mean and of the batch
    variance (biased, as Keras' BatchNormalization computes it), every batch weighted
    equally (torch's cumulative average). Nothing else changes: the trainable weights,
    other non-trainable variables (Dropout's seed state) and the layers' ``momentum`` are
    as before. Frozen layers (``trainable=False``) keep their statistics, as in ``fit``. A
    model without BatchNormalization is left alone.

    Args:
        model: A built ``keras.Model``.
        x: The model's inputs: an array (or a dict/list/tuple of arrays, as ``fit``'s
            ``x``), cut into batches of ``batch_size``; or an iterable of batches (a
            ``tf.data.Dataset``, a ``keras.utils.PyDataset``, a torch ``DataLoader``, a
            generator), each the inputs or a tuple ``(x, y[, sample_weight])`` of which
            the first entry is used.
        batch_size: Integer ≥ 1, defaults to 32 for arrays; use the training batch size
            (the batch variance depends on it). Not with an iterable of batches.
        steps: Integer ≥ 1 or `None` (default: every batch). The number of batches.

    Example:

    ```python
    model.fit(x, y, batch_size=64, epochs=10)   # ends with θ̂ in the model
    keras_optlab.averaging.update_batch_norm(model, x, batch_size=64)
    ```

    Reference: Izmailov, Podoprikhin, Garipov, Vetrov & Wilson (2018), "Averaging Weights
    Leads to Wider Optima and Better Generalization", UAI.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={_checks.shown(model)}")
    if not model.built:
        raise ValueError(
            "`model` must be built (its BatchNormalization layers have no statistics before). "
            f"Received: model={_checks.shown(model)} (built=False)"
        )
    kind = _checks.data_source("x", x)
    batch_size = _checks.integer("batch_size", batch_size, low=1, allow_none=True)
    steps = _checks.integer("steps", steps, low=1, allow_none=True)
    if kind == "batches" and batch_size is not None:
        raise ValueError(
            "`batch_size` cuts arrays into batches; `x` is an iterable of batches already. "
            f"Received: batch_size={batch_size}"
        )
    _sync(model)
    _recompute(model, _input_batches(x, kind, batch_size or DEFAULT_BATCH_SIZE, steps), "x", x)


def _stores_raw_weights(callback):
    """Whether ``callback`` must find the raw weights θ in the model at ``on_epoch_end``:
    ``BackupAndRestore`` (training resumes from what it saved), and a callback that keeps
    the best weights (``restore_best_weights`` / ``save_best_only``: EarlyStopping,
    ModelCheckpoint) of a training metric — measured on the raw iterates, not θ̂."""
    if isinstance(callback, keras.callbacks.BackupAndRestore):
        return True
    keeps = getattr(callback, "restore_best_weights", False) or getattr(callback, "save_best_only", False)
    monitor = getattr(callback, "monitor", None)
    return bool(keeps) and isinstance(monitor, str) and not monitor.startswith("val_")


class _Hold(keras.callbacks.Callback):
    """Placed by :class:`SwapAveragedWeights` around a callback of ``fit``'s list that
    stores the raw weights: at ``on_epoch_end`` the model takes θ (``raw=True``) or the
    epoch's state again (``raw=False``)."""

    def __init__(self, swap, raw):
        super().__init__()
        self.swap = swap
        self.raw = raw

    def on_epoch_end(self, epoch, logs=None):
        if self.raw:
            self.swap._swap_out()
        else:
            self.swap._epoch_state()


class SwapAveragedWeights(keras.callbacks.Callback):
    """Swap the optimizer's Polyak average θ̂ into the model for evaluation, back after.

    ``evaluate`` / ``predict`` called with it: at ``on_test_begin`` / ``on_predict_begin``
    the model's trainable variables take their averages θ̂ (``optimizer.average_of``),
    their raw values θ kept in host memory; at the end θ is written back. The optimizer's
    state (θ̂ included) is never touched. Before the optimizer's first step (not built
    yet) the average is the weights, and nothing is swapped.

    In ``fit`` the model holds θ̂ from the start of each validation pass until the next
    epoch begins, so every callback's ``on_epoch_end`` sees the weights the ``val_``
    metrics were measured on: ``keras.callbacks.EarlyStopping(restore_best_weights=True)``
    keeps, and ``ModelCheckpoint`` saves, θ̂ — a restored or reloaded model evaluates to
    the logged best ``val_loss``. Training goes on from θ: the run is the one without
    this callback, bit for bit. At ``on_train_begin`` the callback moves itself to the
    front of ``fit``'s callback list and wraps the callbacks that must see θ instead:

    * ``keras.callbacks.BackupAndRestore`` saves θ (and the optimizer, average intact),
      so a resumed run continues exactly as an uninterrupted one;
    * ``EarlyStopping(restore_best_weights=True)`` / ``ModelCheckpoint(save_best_only=True)``
      monitoring a training metric (no ``val_`` prefix: measured on the raw iterates)
      keep θ, as Keras does without averaging.

    The order the callbacks are listed in does not matter. An epoch without validation
    (``validation_freq`` > 1, no validation data) ends with θ in the model, unless
    ``swap_on_epoch=True``. Batch-level checkpoints (``save_freq`` an integer) hold θ.
    Two ``SwapAveragedWeights`` in one ``fit`` are refused at ``on_train_begin``.

    At the end of ``fit`` the model holds θ̂ (``finalize_variable_values``); an
    ``EarlyStopping(restore_best_weights=True)`` then restores what it kept: θ̂ of the
    best epoch (θ for a training metric).

    BatchNormalization: the moving statistics of the run are those of the raw iterates.
    With ``update_batch_norm=data`` they are recomputed for θ̂ (:func:`update_batch_norm`,
    once per optimizer step count) whenever θ̂ is swapped in, and the run's own come back
    with θ; ``fit`` then ends with θ̂ and its statistics. Without it the statistics stay
    the raw iterates' (call :func:`update_batch_norm` yourself).

    Unlike ``keras.callbacks.SwapEMAWeights``, which swaps the model with the
    optimizer's slots in place, the average stays in the optimizer: a checkpoint of the
    optimizer taken while swapped holds the true average.

    Example:

    ```python
    model.compile(optimizer=keras_optlab.SGD(0.1, polyak="arithmetic"), loss="mse")
    model.fit(x, y, validation_data=(xv, yv), callbacks=[
        keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True),
        SwapAveragedWeights(update_batch_norm=x, batch_norm_batch_size=32),
    ])
    # val_loss is the averaged weights' loss; the model holds θ̂ of the best epoch.
    ```

    Args:
        swap_on_epoch: Bool, defaults to `False`. Also hold θ̂ at the end of epochs
            without a validation pass (for checkpoints).
        update_batch_norm: `None` (default) or the inputs to recompute the
            BatchNormalization statistics on, as :func:`update_batch_norm`'s `x`, but
            iterable more than once (not a generator).
        batch_norm_batch_size: Integer ≥ 1, defaults to 32: :func:`update_batch_norm`'s
            `batch_size`, with arrays only.
        batch_norm_steps: Integer ≥ 1 or `None`: :func:`update_batch_norm`'s `steps`.

    Reference: Goodfellow, Bengio & Courville, *Deep Learning*, 2016, Sec. 8.7.3;
    Polyak & Juditsky (1992), "Acceleration of Stochastic Approximation by Averaging",
    SIAM J. Control Optim. 30(4).
    """

    def __init__(self, swap_on_epoch=False, update_batch_norm=None, batch_norm_batch_size=None,
                 batch_norm_steps=None):
        super().__init__()
        self.swap_on_epoch = _checks.boolean("swap_on_epoch", swap_on_epoch)
        kind = None
        if update_batch_norm is not None:
            kind = _checks.data_source("update_batch_norm", update_batch_norm, reiterable=True)
        self.update_batch_norm = update_batch_norm
        self.batch_norm_batch_size = _checks.integer(
            "batch_norm_batch_size", batch_norm_batch_size, low=1, allow_none=True
        )
        self.batch_norm_steps = _checks.integer("batch_norm_steps", batch_norm_steps, low=1, allow_none=True)
        if self.batch_norm_batch_size is not None and kind != "arrays":
            raise ValueError(
                "`batch_norm_batch_size` cuts the arrays of `update_batch_norm` into batches; "
                + ("there is none. " if kind is None else "it is an iterable of batches already. ")
                + f"Received: batch_norm_batch_size={self.batch_norm_batch_size}"
            )
        if self.batch_norm_steps is not None and kind is None:
            raise ValueError(
                "`batch_norm_steps` counts the batches of `update_batch_norm`; there is none. "
                f"Received: batch_norm_steps={self.batch_norm_steps}"
            )
        self._kind = kind
        self._raw = None  # (θ, the run's BN statistics) on the host while θ̂ is in the model
        self._average_statistics = None  # (step count, BN statistics recomputed for θ̂ then)
        self._held = False  # the average was in the model before evaluate/predict began
        self._fit = None  # fit's CallbackList (True: none found) from on_train_begin to on_train_end
        self._validated = False  # this epoch ran its validation pass
        self._trained = False  # an epoch of this fit began

    @property
    def swapped(self):
        """Whether the model holds the averaged weights now."""
        return self._raw is not None

    def _statistic_variables(self):
        return _statistics(self.model) if self.update_batch_norm is not None else []

    def _swap_in(self):
        if self.swapped:
            return
        optimizer = averaging_optimizer(self.model)
        if not optimizer.built:
            return  # no step taken yet: the average is the weights themselves
        _sync(self.model)
        variables = list(self.model.trainable_variables)
        averages = [optimizer.average_of(v) for v in variables]
        self._raw = (_host(variables), _host(self._statistic_variables()))
        for variable, average in zip(variables, averages):
            variable.assign(ops.copy(average.value))  # not the slot's own buffer (JAX)
        self._use_average_statistics(optimizer)

    def _use_average_statistics(self, optimizer):
        """With ``update_batch_norm``: the BN statistics of θ̂ (now in the model) into the
        model, recomputed once per step count."""
        if self.update_batch_norm is None:
            return
        step = int(ops.convert_to_numpy(optimizer.iterations))
        statistics = self._statistic_variables()
        if self._average_statistics is not None and self._average_statistics[0] == step:
            for v, value in zip(statistics, self._average_statistics[1]):
                v.assign(value)
            return
        batches = _input_batches(
            self.update_batch_norm, self._kind, self.batch_norm_batch_size or DEFAULT_BATCH_SIZE,
            self.batch_norm_steps,
        )
        _recompute(self.model, batches, "update_batch_norm", self.update_batch_norm)
        self._average_statistics = (step, _host(statistics))

    def _swap_out(self):
        if not self.swapped:
            return
        _sync(self.model)
        weights, statistics = self._raw
        for variable, raw in zip(self.model.trainable_variables, weights):
            variable.assign(raw)
        for variable, raw in zip(self._statistic_variables(), statistics):
            variable.assign(raw)
        self._raw = None

    def _epoch_state(self):
        """θ̂ in the model at an epoch's end after its validation pass (or with
        ``swap_on_epoch``), θ otherwise."""
        if self._validated or self.swap_on_epoch:
            self._swap_in()
        else:
            self._swap_out()

    def _arrange(self, owner):
        """``fit``'s callback list, rebuilt: this callback first, each callback that
        stores θ between a ``_Hold`` to θ and one back. A new list is bound (the loop
        calling ``on_train_begin`` goes on over the old one: no callback is called twice
        or skipped)."""
        callbacks = [c for c in owner.callbacks if not isinstance(c, _Hold)]
        swaps = [c for c in callbacks if isinstance(c, SwapAveragedWeights)]
        if len(swaps) > 1:
            raise ValueError(
                f"fit got {len(swaps)} SwapAveragedWeights callbacks; use one: the second would take the "
                "average the first swapped in for the raw weights, and training would continue from it. "
                f"Received: callbacks={_checks.shown(callbacks, limit=200)}"
            )
        arranged = [self]
        for callback in callbacks:
            if callback is self:
                continue
            if _stores_raw_weights(callback):
                if isinstance(arranged[-1], _Hold) and not arranged[-1].raw:
                    arranged.pop()  # two in a row: θ stays for the second
                else:
                    arranged.append(_Hold(self, raw=True))
                arranged += [callback, _Hold(self, raw=False)]
            else:
                arranged.append(callback)
        for callback in arranged:
            if isinstance(callback, _Hold):
                callback.set_model(self.model)
        owner.callbacks = arranged

    def _validating(self):
        """Whether the ``on_test_*`` being called is ``fit``'s validation pass."""
        if self._fit is None:
            return False
        return self._fit is True or _keras_hooks.calling_callback_list() is self._fit

    def on_train_begin(self, logs=None):
        averaging_optimizer(self.model)  # fail before the first step, not at validation
        self._raw = None  # a fit that raised while swapped: BackupAndRestore may have loaded since
        self._validated = False
        self._trained = False
        owner = _keras_hooks.calling_callback_list()
        self._fit = True if owner is None else owner
        if owner is not None:
            self._arrange(owner)

    def on_train_end(self, logs=None):
        # finalize_variable_values wrote θ̂ into the trainable weights (the raw weights of
        # the last epoch are dropped, as Keras drops them); its BN statistics with it.
        # EarlyStopping, after this callback, may restore the weights it kept.
        if self._trained and not self.swapped and self.update_batch_norm is not None:
            optimizer = averaging_optimizer(self.model)
            if optimizer.built:
                _sync(self.model)
                self._use_average_statistics(optimizer)
        self._raw = None
        self._fit = None

    def on_epoch_begin(self, epoch, logs=None):
        self._validated = False
        self._trained = True
        self._swap_out()

    def on_epoch_end(self, epoch, logs=None):
        self._epoch_state()

    def on_test_begin(self, logs=None):
        if self._validating():
            self._validated = True  # θ̂ stays in until the next epoch begins
        else:
            self._held = self.swapped  # swapped already: stays so after
        self._swap_in()

    def on_test_end(self, logs=None):
        if not self._validating() and not self._held:
            self._swap_out()

    def on_predict_begin(self, logs=None):
        self._held = self.swapped
        self._swap_in()

    def on_predict_end(self, logs=None):
        if not self._held:
            self._swap_out()


__all__ = ["SwapAveragedWeights", "averaging_optimizer", "update_batch_norm"]
