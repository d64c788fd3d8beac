"""Callbacks that put curvature and optimizer telemetry into Keras' ``logs``.

Both write into the ``logs`` dict that ``fit`` hands to every callback, so History,
CSVLogger, TensorBoard and any callback of the user's record their values like any
metric, **whatever the order of the ``callbacks`` list**.

Why the order would matter, and how it is made not to: ``fit`` calls every callback's
``on_train_batch_end`` (and ``on_epoch_end``) in list order with one shared ``logs``
dict, and ``keras.callbacks.TensorBoard`` writes ``batch_<key>`` / ``epoch_<key>``
scalars from that dict inside its own call (keras/src/callbacks/tensorboard.py) — a
TensorBoard listed before the monitor has written its summaries before the monitor
measured, and its event files would silently lack every curvature key (CSVLogger, which
fixes its columns at the first epoch, likewise). The values cannot be measured earlier
(they are of the weights *after* the batch's step). So when ``fit``'s
``keras.callbacks.CallbackList`` hands the model to these callbacks (``set_model``),
each moves itself ahead of the callbacks before it that are not keras_optlab logging
callbacks: every other callback then reads logs that already hold the values. The
values go through TensorBoard's own path — tags ``batch_<key>`` at TensorBoard's step
and ``epoch_<key>`` — so nothing is written twice and no private writer is touched.
(Writing them ourselves with ``tf.summary`` would not do: with ``update_freq="epoch"``
TensorBoard installs no default writer, and a TensorBoard after the monitor would
write them a second time.) A callback called by hand, outside a ``CallbackList``,
stays where it is.

Neither is registered with ``keras.saving.register_keras_serializable``: Keras never
serializes callbacks (``fit`` takes instances, ``.keras`` files do not hold them), and a
CurvatureMonitor's configuration would embed a data batch.

Both run on TensorFlow, JAX and PyTorch; on another backend their constructors raise
``RuntimeError`` naming ``keras.backend.backend()``.
"""

import math
import warnings

import keras
import numpy as np

from keras_optlab import _checks
from keras_optlab.curvature.along_gradient import gradient_curvature
from keras_optlab.curvature.density import hessian_spectral_density
from keras_optlab.curvature.autodiff import for_backend
from keras_optlab.curvature.data import batches
from keras_optlab.curvature.oracle import NonFiniteError, loss_closure, model_oracle
from keras_optlab.curvature import devices
from keras_optlab.curvature.spectrum import gradient_curvature_and_lambda_max, top_eigenvalues
from keras_optlab import _keras_hooks
from keras_optlab.averaging import SwapAveragedWeights
from keras_optlab.optimizers.base import BookOptimizer
from keras_optlab.optimizers.sgd import SGD

CURVATURE_KEYS = ("g_norm_sq", "gHg", "critical_learning_rate", "lambda_max", "ill_conditioned")
SPECTRUM_KEYS = ("spectrum_lambda_max", "spectrum_lambda_min", "spectrum_negative_mass")
TELEMETRY_KEYS = ("gradient_norm", "clipped_steps", "skipped_steps")


def current_learning_rate(optimizer):
    """The learning rate ``optimizer`` applies at its next step, as a float.

    Reads the public ``optimizer.learning_rate``, which Keras evaluates at the
    optimizer's current ``iterations`` when it is a schedule.
    """
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def gradient_step_rule(optimizer):
    """``None`` when ``optimizer``'s step is θ ← θ − εg, ε its learning rate (the step
    Eq. 8.10 predicts, whose critical ε is 2gᵀg/gᵀHg); else why it is not.

    Plain SGD only: :class:`keras_optlab.optimizers.SGD` (Alg. 8.1) and
    ``keras.optimizers.SGD`` with ``momentum=0`` (its ``nesterov`` flag then does
    nothing), without ``weight_decay`` (a decoupled decay adds −ελθ to the step); a
    ``keras.optimizers.LossScaleOptimizer`` is looked through (the scale cancels).
    Momentum and Nesterov (Alg. 8.2, 8.3) step by the velocity v ← αv − εg, not εg:
    on a quadratic, heavy-ball momentum is stable up to ελ < 2(1 + α) (Polyak 1964),
    a criterion on eigenvalues over many steps, not Eq. 8.10's on one step along g.
    Adaptive methods (AdaGrad, RMSProp, Adam, Alg. 8.4–8.7) scale each coordinate of g
    by its own factor, so ε is not the length of the step along g; the closure
    optimizers (Newton, L-BFGS, nonlinear CG) choose their own steps. Gradient clipping
    (``clipnorm``, ``adaptive_clipnorm``, …) is not a reason: it shortens the step only
    on the steps where it triggers, and the flag compares the unclipped step.
    """
    inner = getattr(optimizer, "inner_optimizer", None)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) and inner is not None:
        optimizer = inner
    name = f"{type(optimizer).__module__}.{type(optimizer).__name__}"
    decay = getattr(optimizer, "weight_decay", None)
    if isinstance(optimizer, SGD) or (
        isinstance(optimizer, keras.optimizers.SGD) and float(getattr(optimizer, "momentum", 0.0) or 0.0) == 0.0
    ):
        if decay:
            return f"{name} with weight_decay={decay!r} steps by −ε(g + λθ), not −εg"
        return None
    if isinstance(optimizer, keras.optimizers.SGD):
        return f"{name} with momentum={optimizer.momentum!r} steps by its velocity, not −εg"
    return f"{name} does not step by −εg (only SGD without momentum does)"


def _move_ahead(callback):
    """Move ``callback`` ahead of the callbacks before it in the ``CallbackList`` that
    is calling its ``set_model`` (``fit``'s), stopping behind keras_optlab's own
    logging callbacks so that their relative order is kept.

    The list is found on the call stack (:func:`keras_optlab._keras_hooks.
    calling_callback_list`): ``CallbackList.set_model`` loops over its public
    ``callbacks`` attribute and calls ``set_model`` on each. Moving the current element
    to an earlier index does not disturb that loop (no callback is skipped or visited
    twice). Without a CallbackList on the stack nothing happens.
    """
    owner = _keras_hooks.calling_callback_list()
    if owner is None or not isinstance(getattr(owner, "callbacks", None), list):
        return
    callbacks = owner.callbacks
    position = next((i for i, c in enumerate(callbacks) if c is callback), None)
    if position is None:
        return
    target = position
    while target > 0 and not isinstance(callbacks[target - 1], _LOGGING_CALLBACKS):
        target -= 1
    if target != position:
        callbacks.insert(target, callbacks.pop(position))


class CurvatureMonitor(keras.callbacks.Callback):
    """Logs the book's ill-conditioning criterion during ``fit`` (Sec. 8.2.1, Eq. 8.10).

    Every ``every_n_batches`` training batches, counted across epochs from the start of
    ``fit`` — at the batches ``n, 2n, 3n, …`` (1-based), i.e. where ``(step + 1) % n ==
    0`` for the 0-based global step: Keras' convention, the steps at which
    ``keras.callbacks.TensorBoard(update_freq=n)`` writes batch summaries — measures on
    the fixed batch ``(x, y)`` at the weights after that batch's step (or on a fixed data
    set, the mean loss over all of it: arrays with ``batch_size``, a ``tf.data.Dataset``,
    a ``keras.utils.PyDataset``, a callable returning a generator —
    :mod:`keras_optlab.curvature.data`):

    * ``g_norm_sq`` — gᵀg of the compiled loss (see
      :func:`keras_optlab.curvature.gradient_curvature`);
    * ``gHg`` — gᵀHg;
    * ``critical_learning_rate`` — 2gᵀg/gᵀHg (``inf`` when gᵀHg ≤ 0, a finite loss with
      non-positive curvature along g): a gradient step larger than this increases the
      second-order model of the cost;
    * ``lambda_max`` — the largest Hessian eigenvalue (Lanczos on HVPs, warm-started
      from the previous measurement's eigenvector); absent when ``top_eigenvalue`` is
      ``False``;
    * ``ill_conditioned`` — 1.0 when the optimizer's current learning rate ε
      (schedules included: the rate of its next step) exceeds the critical one, else
      0.0. Eq. 8.10 is the change of the cost under the step −εg, so the comparison
      has that meaning only for an optimizer whose step is −εg: SGD without momentum
      (:class:`keras_optlab.optimizers.SGD`, ``keras.optimizers.SGD(momentum=0)``,
      no ``weight_decay``; :func:`gradient_step_rule`). For any other — Momentum and
      Nesterov (the step is the velocity), AdaGrad/RMSProp/Adam (per-coordinate
      scaling), the closure optimizers — ``ill_conditioned`` is NaN, with one warning
      naming the optimizer; the other keys are measured as usual.

    They are added to the batch logs of the measured batches, and every epoch's logs
    carry the last measurement (NaN for each key in epochs that end before the first
    measurement, so that History's lists stay one entry per epoch and CSVLogger has
    the columns) — so History, CSVLogger and TensorBoard see them, listed before or
    after the monitor (see the module's docstring). Each
    measurement is also appended to :attr:`measurements` (with ``step``, the number of
    training batches seen, ``learning_rate`` and ``loss``, the monitor batch's loss —
    kept out of ``logs``, where ``loss`` is the training loss).

    With ``spectrum_every=k``, every k-th measurement (the k-th, 2k-th, … — counted in
    measurements, not batches, so that it is a multiple of ``every_n_batches``) also
    runs a small stochastic Lanczos quadrature of the whole Hessian spectrum
    (:func:`keras_optlab.curvature.hessian_spectral_density`, ``spectrum_probes``
    probes × ``spectrum_steps`` Lanczos steps, the same probes every time) and logs

    * ``spectrum_lambda_max``, ``spectrum_lambda_min`` — its extreme Ritz values;
    * ``spectrum_negative_mass`` — the weight of its negative nodes, an estimate of the
      fraction of negative eigenvalues (Sec. 8.2.3: near a saddle point it is > 0).

    They are in the batch logs of those measurements (and in their
    :attr:`measurements` entries); each epoch's logs carry the last ones (NaN before
    the first).

    **A diverged model.** When the monitor batch's loss, its gradient or a
    Hessian-vector product is NaN or ±inf (the curvature functions raise
    :class:`~keras_optlab.curvature.hvp.NonFiniteError`), that measurement logs NaN for
    every key it would log — never ``inf`` or 0.0, which would read as "safe" — and the
    monitor warns once (``RuntimeWarning``, the first time only); ``fit`` goes on as
    Keras' own does (add ``keras.callbacks.TerminateOnNaN`` to stop it). The warm start
    of ``lambda_max`` is dropped.

    Cost per measurement: one Hessian-vector product along g (≈ 2 gradients of the
    monitor batch) plus ``eigen_iterations`` HVPs for ``lambda_max``, plus
    ``spectrum_probes · spectrum_steps`` HVPs at a spectrum measurement. TensorFlow, JAX and
    PyTorch backends (on JAX the trainer's state is synced into the model first, with
    the public ``model.jax_state_sync()``). With ``steps_per_execution > 1`` a "batch"
    is one execution.

    Every argument is checked here, at the call: ``x``, ``y`` and ``sample_weight``
    must convert to tensors and hold the same number of samples
    (:func:`keras_optlab.curvature.check_batch`); a data set must be re-iterable (a
    generator is refused: pass a callable returning one).

    Args:
        x, y: The monitor batch (keep it small: every measurement evaluates it whole),
            or a data set in ``x`` (``y`` ``None``): every product of a measurement is
            then a pass over it.
        every_n_batches: Measurement interval, integer >= 1.
        top_eigenvalue: Also measure ``lambda_max``.
        sample_weight: Optional sample weights of the monitor batch.
        eigen_iterations: Lanczos steps per ``lambda_max`` measurement, >= 1.
        seed: Seed of the first Lanczos start vector (and of the spectrum's probes).
        spectrum_every: ``None`` (default: no spectrum) or an integer >= 1, in
            measurements.
        spectrum_probes: Probes of each spectrum, >= 1.
        spectrum_steps: Lanczos steps per probe, >= 1.
        batch_size: With arrays ``x``, the samples per pass (``None``: all at once).
    """

    def __init__(
        self,
        x,
        y=None,
        every_n_batches=50,
        top_eigenvalue=True,
        sample_weight=None,
        eigen_iterations=5,
        seed=0,
        spectrum_every=None,
        spectrum_probes=2,
        spectrum_steps=10,
        batch_size=None,
    ):
        super().__init__()
        self.top_eigenvalue = _checks.boolean("top_eigenvalue", top_eigenvalue)
        self.every_n_batches = _checks.integer("every_n_batches", every_n_batches, low=1)
        self.eigen_iterations = _checks.integer("eigen_iterations", eigen_iterations, low=1)
        self.seed = _checks.integer("seed", seed, allow_none=True)
        self.spectrum_every = _checks.integer("spectrum_every", spectrum_every, low=1, allow_none=True)
        self.spectrum_probes = _checks.integer("spectrum_probes", spectrum_probes, low=1)
        self.spectrum_steps = _checks.integer("spectrum_steps", spectrum_steps, low=1)
        self._data = batches(x, y, sample_weight, batch_size)
        if self._data.single:  # one batch, converted once: what every measurement reads
            self.x, self.y, self.sample_weight = self._data.batch
            self._batch_size = None
        else:
            self.x, self.y, self.sample_weight, self._batch_size = x, y, sample_weight, batch_size
        # Arguments first (a bad value is a TypeError/ValueError on any backend).
        for_backend("keras_optlab.callbacks.CurvatureMonitor")
        self.measurements = []
        self._last = None
        self._last_spectrum = None
        self._seen = 0
        self._eigenvector = None
        self._warned_nonfinite = False  # one warning per monitor for each
        self._warned_rule = False

    @property
    def keys(self):
        """The keys this monitor writes into ``logs``."""
        keys = tuple(k for k in CURVATURE_KEYS if self.top_eigenvalue or k != "lambda_max")
        return keys + (SPECTRUM_KEYS if self.spectrum_every is not None else ())

    def set_model(self, model):
        super().set_model(model)
        _move_ahead(self)

    def on_train_begin(self, logs=None):
        # Clear errors now rather than at the first measurement: the model (built,
        # compiled, TensorFlow) and the monitor batch against it (one eager forward
        # pass and loss: a wrong feature size or a label shape the loss refuses).
        model_oracle(self.model, "keras_optlab.callbacks.CurvatureMonitor")
        x, y, sample_weight = self._data.batch if self._data.single else next(iter(self._data))
        try:
            loss_closure(self.model, x, y, sample_weight)()
        except Exception as error:
            raise ValueError(
                f"CurvatureMonitor's monitor batch does not fit model {self.model.name!r}: its compiled "
                f"loss cannot be evaluated on (x, y). Received: x of shape "
                f"{keras.tree.map_structure(lambda t: tuple(t.shape), x)}, y of shape "
                f"{keras.tree.map_structure(lambda t: tuple(t.shape), y)} ({type(error).__name__}: {error})"
            ) from error
        self._seen = 0
        self._last = None
        self._last_spectrum = None

    def measure(self):
        """Measure now, at the model's current weights; returns the logged dict.

        A non-finite loss, gradient or product on the monitor batch (a diverged model)
        gives NaN for every key, with one warning per monitor; see the class docstring.
        """
        synced(self.model)
        optimizer = self.model.optimizer
        learning_rate = current_learning_rate(optimizer)
        try:
            values, loss = self._measured()
        except NonFiniteError as error:
            self._eigenvector = None
            values, loss = {key: math.nan for key in self._measured_keys()}, error.loss
            if not self._warned_nonfinite:
                self._warned_nonfinite = True
                warnings.warn(
                    f"CurvatureMonitor at training batch {self._seen}: {error} Logging NaN for "
                    f"{', '.join(values)} while it lasts; fit goes on. (Warned once per monitor.)",
                    RuntimeWarning,
                    stacklevel=2,
                )
            if "spectrum_lambda_max" in values:  # a spectrum was due: it is NaN too
                self._last_spectrum = {key: math.nan for key in SPECTRUM_KEYS}
        else:
            reason = gradient_step_rule(optimizer)
            if reason is None:
                values["ill_conditioned"] = float(learning_rate > values["critical_learning_rate"])
            else:
                values["ill_conditioned"] = math.nan
                if not self._warned_rule:
                    self._warned_rule = True
                    warnings.warn(
                        f"CurvatureMonitor logs ill_conditioned=NaN: it compares the learning rate ε with the "
                        f"critical rate 2gᵀg/gᵀHg of a step −εg (Eq. 8.10), and {reason}. The other keys are "
                        "measured as usual. (Warned once per monitor.)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
        self.measurements.append({"step": self._seen, "learning_rate": learning_rate, "loss": loss, **values})
        return values

    def _measured_keys(self):
        keys = [key for key in CURVATURE_KEYS if self.top_eigenvalue or key != "lambda_max"]
        if self.spectrum_every is not None and (len(self.measurements) + 1) % self.spectrum_every == 0:
            keys += list(SPECTRUM_KEYS)
        return keys

    def _measured(self):
        """(values, loss) of one measurement, ``ill_conditioned`` left to the caller;
        NonFiniteError from any of the curvature functions."""
        data = {"sample_weight": self.sample_weight, "batch_size": self._batch_size}
        values = {}
        if self.top_eigenvalue and self._data.single and devices.tf_strategy(self.model) is None:
            # One batch on one device: gᵀg, gᵀHg and the Lanczos steps in one compiled
            # call, warm-started on the device (the same numbers; see the function).
            report, values["lambda_max"], self._eigenvector = gradient_curvature_and_lambda_max(
                self.model, self.x, self.y, self.sample_weight, max_iterations=self.eigen_iterations, seed=self.seed,
                warm_start=self._eigenvector, what="keras_optlab.callbacks.CurvatureMonitor",
            )
        else:
            report = gradient_curvature(self.model, self.x, self.y, **data)
            if self.top_eigenvalue:
                eigen, vectors = top_eigenvalues(
                    self.model,
                    self.x,
                    self.y,
                    k=1,
                    max_iterations=self.eigen_iterations,
                    seed=self.seed,
                    initial_vector=self._eigenvector,
                    return_eigenvectors=True,
                    **data,
                )
                values["lambda_max"] = float(eigen[0])
                self._eigenvector = vectors[0]
        values = {**{key: report[key] for key in ("g_norm_sq", "gHg", "critical_learning_rate")}, **values}
        values["ill_conditioned"] = math.nan  # set by measure()
        if self.spectrum_every is not None and (len(self.measurements) + 1) % self.spectrum_every == 0:
            summary = hessian_spectral_density(
                self.model, self.x, self.y, num_probes=self.spectrum_probes, lanczos_steps=self.spectrum_steps,
                grid=2, seed=self.seed, **data,
            ).summary
            self._last_spectrum = {f"spectrum_{key}": summary[key] for key in ("lambda_max", "lambda_min", "negative_mass")}
            values.update(self._last_spectrum)
        return values, report["loss"]

    def on_train_batch_end(self, batch, logs=None):
        self._seen += 1  # training batches of this fit so far: TensorBoard's step
        if self._seen % self.every_n_batches == 0:
            self._last = self.measure()
            if logs is not None:
                logs.update(self._last)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            nan = {key: math.nan for key in self.keys}
            logs.update({**nan, **(self._last or {}), **(self._last_spectrum or {})})


class GradientStats(keras.callbacks.Callback):
    """Logs a keras_optlab optimizer's telemetry into every batch's and epoch's logs.

    Keys: ``gradient_norm`` (global gradient norm of the last step, before clipping),
    ``clipped_steps`` and ``skipped_steps`` (running counts) — the optimizer's own
    variables (:class:`keras_optlab.optimizers.base.BookOptimizer`), read after each
    batch and at each epoch's end. A ``keras.optimizers.LossScaleOptimizer`` around a
    keras_optlab optimizer is looked through.

    The gradient norm costs the optimizer an extra pass over the gradients, so
    keras_optlab optimizers measure it only when clipping or ``track_gradient_norm``
    is on: GradientStats switches ``track_gradient_norm`` on when the model is handed
    to it (and leaves it on; the next ``fit`` re-traces its training step once).

    Any other optimizer has no such telemetry: ``fit`` then fails at its start with a
    ``TypeError`` naming the optimizer (asking for statistics that cannot exist is a
    configuration error; a silent no-op would hide it). Like CurvatureMonitor it puts
    itself ahead of the other callbacks of ``fit`` (TensorBoard, CSVLogger, …), so the
    order of the ``callbacks`` list does not matter. TensorFlow, JAX and PyTorch
    backends; on another the constructor raises ``RuntimeError``.
    """

    def __init__(self):
        super().__init__()
        for_backend("keras_optlab.callbacks.GradientStats")

    def set_model(self, model):
        super().set_model(model)
        _move_ahead(self)
        optimizer = model.optimizer
        inner = getattr(optimizer, "inner_optimizer", None)
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) and inner is not None:
            optimizer = inner
        if not isinstance(optimizer, BookOptimizer):
            raise TypeError(
                "GradientStats reads the telemetry of keras_optlab optimizers (gradient_norm, "
                "clipped_steps, skipped_steps). Received an optimizer of type "
                f"{type(optimizer).__module__}.{type(optimizer).__name__}: compile with a "
                "keras_optlab.optimizers optimizer, or drop GradientStats."
            )
        if not optimizer.track_gradient_norm:
            optimizer.track_gradient_norm = True
            # A training step traced before (an earlier fit) read the flag at tracing
            # time: drop it so that fit traces one that measures the norm. Dropping
            # it is a private Keras touch, which only _keras_hooks makes.
            _keras_hooks.reset_train_function(model)
        self._optimizer = optimizer

    def _values(self):
        synced(self.model)
        opt = self._optimizer
        if opt.gradient_norm is None:  # not built yet: no step taken
            return {}
        return {
            "gradient_norm": float(keras.ops.convert_to_numpy(opt.gradient_norm)),
            "clipped_steps": int(keras.ops.convert_to_numpy(opt.clipped_steps)),
            "skipped_steps": int(keras.ops.convert_to_numpy(opt.skipped_steps)),
        }

    def on_train_batch_end(self, batch, logs=None):
        if logs is not None:
            logs.update(self._values())

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self._values())


def synced(model):
    """Bring ``model``'s variables up to date during ``fit`` on JAX, where the trainer
    keeps the state outside the variables between steps (``model.jax_state_sync()``,
    public on Keras' JAX trainer); nothing to do on the other backends."""
    sync = getattr(model, "jax_state_sync", None)
    if callable(sync):
        sync()


_LOGGING_CALLBACKS = (CurvatureMonitor, GradientStats)

__all__ = ["CurvatureMonitor", "GradientStats", "SwapAveragedWeights", "gradient_step_rule"]
