"""Callbacks that put curvature and optimizer telemetry into Keras' ``logs``.

Both write into the ``logs`` dict that ``fit`` hands to every callback, so History,
CSVLogger and TensorBoard record their values like any metric — provided they come
*before* those callbacks in the ``callbacks`` list (Keras appends its own History last,
so ``model.fit(...).history`` always has them).

Neither is registered with ``keras.saving.register_keras_serializable``: Keras never
serializes callbacks (``fit`` takes instances, ``.keras`` files do not hold them), and a
CurvatureMonitor's configuration would embed a data batch.
"""

import keras
import numpy as np

from keras_optlab import _checks
from keras_optlab.curvature.along_gradient import gradient_curvature
from keras_optlab.curvature.hvp import model_oracle, require_tensorflow, to_tensors
from keras_optlab.curvature.spectrum import top_eigenvalues
from keras_optlab.optimizers import _keras_hooks
from keras_optlab.optimizers.base import BookOptimizer

CURVATURE_KEYS = ("g_norm_sq", "gHg", "critical_learning_rate", "lambda_max", "ill_conditioned")
TELEMETRY_KEYS = ("gradient_norm", "clipped_steps", "skipped_steps")


def current_learning_rate(optimizer):
    """The learning rate ``optimizer`` applies at its next step, as a float.

    Reads the public ``optimizer.learning_rate``, which Keras evaluates at the
    optimizer's current ``iterations`` when it is a schedule.
    """
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class CurvatureMonitor(keras.callbacks.Callback):
    """Logs the book's ill-conditioning criterion during ``fit`` (Sec. 8.2.1, Eq. 8.10).

    Every ``every_n_batches`` training batches (counted across epochs, the first batch
    included), measures on the fixed batch ``(x, y)`` at the current weights:

    * ``g_norm_sq`` — gᵀg of the compiled loss (see
      :func:`keras_optlab.curvature.gradient_curvature`);
    * ``gHg`` — gᵀHg;
    * ``critical_learning_rate`` — 2gᵀg/gᵀHg (``inf`` when gᵀHg ≤ 0): a gradient step
      larger than this increases the second-order model of the cost;
    * ``lambda_max`` — the largest Hessian eigenvalue (Lanczos on HVPs, warm-started
      from the previous measurement's eigenvector); absent when ``top_eigenvalue`` is
      ``False``;
    * ``ill_conditioned`` — 1.0 when the optimizer's current learning rate (schedules
      included: the rate of its next step) exceeds the critical one, else 0.0.

    They are added to the batch logs of the measured batches, and every epoch's logs
    carry the last measurement — so History, CSVLogger and TensorBoard see them. Each
    measurement is also appended to :attr:`measurements` (with ``step``, the number of
    training batches seen, ``learning_rate`` and ``loss``, the monitor batch's loss —
    kept out of ``logs``, where ``loss`` is the training loss).

    Cost per measurement: one Hessian-vector product along g (≈ 2 gradients of the
    monitor batch) plus ``eigen_iterations`` HVPs for ``lambda_max``. TensorFlow backend
    only. With ``steps_per_execution > 1`` a "batch" is one execution.

    Args:
        x, y: The monitor batch (keep it small: every measurement evaluates it whole).
        every_n_batches: Measurement interval, integer >= 1.
        top_eigenvalue: Also measure ``lambda_max``.
        sample_weight: Optional sample weights of the monitor batch.
        eigen_iterations: Lanczos steps per ``lambda_max`` measurement, >= 1.
        seed: Seed of the first Lanczos start vector.
    """

    def __init__(
        self,
        x,
        y,
        every_n_batches=50,
        top_eigenvalue=True,
        sample_weight=None,
        eigen_iterations=5,
        seed=0,
    ):
        super().__init__()
        require_tensorflow("CurvatureMonitor")
        self.top_eigenvalue = _checks.boolean("top_eigenvalue", top_eigenvalue)
        self.every_n_batches = _checks.integer("every_n_batches", every_n_batches, low=1)
        self.eigen_iterations = _checks.integer("eigen_iterations", eigen_iterations, low=1)
        self.seed = _checks.integer("seed", seed, allow_none=True)
        self.x, self.y, self.sample_weight = to_tensors(x), to_tensors(y), to_tensors(sample_weight)
        self.measurements = []
        self._last = None
        self._seen = 0
        self._eigenvector = None

    def on_train_begin(self, logs=None):
        model_oracle(self.model)  # a clear error now rather than at the first batch
        self._seen = 0
        self._last = None

    def measure(self):
        """Measure now, at the model's current weights; returns the logged dict."""
        learning_rate = current_learning_rate(self.model.optimizer)
        report = gradient_curvature(self.model, self.x, self.y, sample_weight=self.sample_weight)
        values = {key: report[key] for key in ("g_norm_sq", "gHg", "critical_learning_rate")}
        if self.top_eigenvalue:
            eigen, vectors = top_eigenvalues(
                self.model,
                self.x,
                self.y,
                k=1,
                max_iterations=self.eigen_iterations,
                seed=self.seed,
                sample_weight=self.sample_weight,
                initial_vector=self._eigenvector,
                return_eigenvectors=True,
            )
            values["lambda_max"] = float(eigen[0])
            self._eigenvector = vectors[0] if np.all(np.isfinite(eigen)) else None
        values["ill_conditioned"] = float(learning_rate > values["critical_learning_rate"])
        self.measurements.append({"step": self._seen, "learning_rate": learning_rate, "loss": report["loss"], **values})
        return values

    def on_train_batch_end(self, batch, logs=None):
        self._seen += 1
        if (self._seen - 1) % self.every_n_batches == 0:
            self._last = self.measure()
            if logs is not None:
                logs.update(self._last)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._last is not None:
            logs.update(self._last)


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
    configuration error; a silent no-op would hide it).
    """

    def set_model(self, model):
        super().set_model(model)
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


__all__ = ["CurvatureMonitor", "GradientStats"]
