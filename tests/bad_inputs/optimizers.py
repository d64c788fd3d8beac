"""Bad inputs: optimizers, the learning-rate schedule, clipping and Optimizer.apply
(see tests/bad_inputs/__init__.py).

The constructor rows came from tests/optimizers/test_validation.py (issue 13); Newton's
rows stay there (another area owns Newton). Every row but the speed-path switch runs on
every backend.
"""

import keras
import numpy as np

import keras_optlab as ko
from keras_optlab import clipping
from tests.bad_inputs import Bad


def _ctor(cls, kwargs, error, argument):
    """``cls(**kwargs)`` refused, naming ``argument`` and echoing ``argument=value``
    (the value as ``repr`` shows it), as keras_optlab/_checks.py words it."""
    value = kwargs[argument]
    return Bad(lambda: cls(**kwargs), error, argument, f"{argument}={value!r}")


def _echo(cls, kwargs, error, argument, echo):
    """A row whose message shows the value otherwise (Keras' own checks)."""
    return Bad(lambda: cls(**kwargs), error, argument, echo)


def _apply(grads, variables, optimizer=ko.SGD, **kwargs):
    """``optimizer().apply(grads(), variables())``: both made at call time."""
    return lambda: optimizer(**kwargs).apply(grads(), variables())


def _v(*shape, dtype="float32"):
    # torch refuses requires_grad on an integer tensor: an integer variable is made
    # non-trainable (what the optimizer must still refuse to update).
    trainable = np.issubdtype(np.dtype(dtype), np.floating)
    return keras.Variable(np.ones(shape, dtype), dtype=dtype, name="w", trainable=trainable)


def _g(*shape):
    return np.ones(shape, "float32")


def _paths(*names):
    from keras_optlab import accel  # needs TensorFlow

    with accel.paths(*names):
        pass


_ONE = lambda: [_g(2)]  # noqa: E731


ROWS = [
    # (class, kwargs, exception, the argument named in the message)
    _ctor(ko.SGD, dict(learning_rate=-0.1), ValueError, "learning_rate"),
    _ctor(ko.SGD, dict(learning_rate="fast"), TypeError, "learning_rate"),
    _ctor(ko.SGD, dict(learning_rate=float("nan")), ValueError, "learning_rate"),
    _ctor(ko.SGD, dict(learning_rate=True), TypeError, "learning_rate"),
    _ctor(ko.SGD, dict(clipnorm=0.0), ValueError, "clipnorm"),
    _ctor(ko.SGD, dict(clipnorm=-1.0), ValueError, "clipnorm"),
    _ctor(ko.SGD, dict(clipvalue=-0.5), ValueError, "clipvalue"),
    _ctor(ko.SGD, dict(global_clipnorm=0), ValueError, "global_clipnorm"),
    _ctor(ko.SGD, dict(adaptive_clipnorm=0.0), ValueError, "adaptive_clipnorm"),
    _ctor(ko.SGD, dict(adaptive_clipnorm=-0.01), ValueError, "adaptive_clipnorm"),
    _ctor(ko.SGD, dict(adaptive_clipnorm="1"), TypeError, "adaptive_clipnorm"),
    _ctor(ko.SGD, dict(skip_nonfinite="yes"), TypeError, "skip_nonfinite"),
    _ctor(ko.SGD, dict(track_gradient_norm=1), TypeError, "track_gradient_norm"),
    _ctor(ko.Adam, dict(polyak="geometric"), ValueError, "polyak"),
    _ctor(ko.Adam, dict(polyak=True), TypeError, "polyak"),
    _ctor(ko.Momentum, dict(polyak_start=-1), ValueError, "polyak_start"),
    _ctor(ko.Momentum, dict(polyak_start=2.0), TypeError, "polyak_start"),
    _echo(ko.RMSProp, dict(polyak="arithmetic", use_ema=True), ValueError, "polyak", "use_ema=True"),
    _ctor(ko.SGD, dict(weight_decay=-1e-4), ValueError, "weight_decay"),
    _ctor(ko.SGD, dict(loss_scale_factor=0.0), ValueError, "loss_scale_factor"),
    _ctor(ko.SGD, dict(gradient_accumulation_steps=1), ValueError, "gradient_accumulation_steps"),
    _ctor(ko.SGD, dict(gradient_accumulation_steps=2.5), TypeError, "gradient_accumulation_steps"),
    _ctor(ko.SGD, dict(clipnorm=1.0, clipvalue=1.0), ValueError, "clipnorm"),
    _ctor(ko.SGD, dict(use_ema=True, ema_momentum=1.5), ValueError, "ema_momentum"),
    _ctor(ko.Momentum, dict(momentum=1.0), ValueError, "momentum"),
    _ctor(ko.Momentum, dict(momentum=-0.1), ValueError, "momentum"),
    _ctor(ko.Momentum, dict(momentum=None), TypeError, "momentum"),
    _ctor(ko.Nesterov, dict(momentum=1.2), ValueError, "momentum"),
    _ctor(ko.Nesterov, dict(learning_rate=-1.0), ValueError, "learning_rate"),
    _ctor(ko.AdaGrad, dict(epsilon=0.0), ValueError, "epsilon"),
    _ctor(ko.AdaGrad, dict(epsilon=-1e-7), ValueError, "epsilon"),
    _ctor(ko.AdaGrad, dict(initial_accumulator_value=-0.1), ValueError, "initial_accumulator_value"),
    _ctor(ko.RMSProp, dict(rho=1.0), ValueError, "rho"),
    _ctor(ko.RMSProp, dict(rho=-0.5), ValueError, "rho"),
    _ctor(ko.RMSProp, dict(epsilon=0.0), ValueError, "epsilon"),
    _ctor(ko.NesterovRMSProp, dict(momentum=1.0), ValueError, "momentum"),
    _ctor(ko.NesterovRMSProp, dict(rho=2.0), ValueError, "rho"),
    _ctor(ko.NesterovRMSProp, dict(epsilon=-1.0), ValueError, "epsilon"),
    _ctor(ko.Adam, dict(beta_1=1.0), ValueError, "beta_1"),
    _ctor(ko.Adam, dict(beta_1=-0.1), ValueError, "beta_1"),
    _ctor(ko.Adam, dict(beta_2=1.0), ValueError, "beta_2"),
    _ctor(ko.Adam, dict(beta_2="0.999"), TypeError, "beta_2"),
    _ctor(ko.Adam, dict(epsilon=0.0), ValueError, "epsilon"),
    _echo(ko.Adam, dict(not_an_argument=1), ValueError, "not_an_argument", "'not_an_argument': 1"),
    # infinity, where the math needs a finite number (accepted before, NaN weights later)
    _ctor(ko.SGD, dict(learning_rate=float("inf")), ValueError, "learning_rate"),
    _ctor(ko.AdaGrad, dict(epsilon=float("inf")), ValueError, "epsilon"),
    _ctor(ko.AdaGrad, dict(initial_accumulator_value=float("inf")), ValueError, "initial_accumulator_value"),
    _ctor(ko.SGD, dict(clipvalue=float("inf")), ValueError, "clipvalue"),
    _ctor(ko.SGD, dict(clipnorm=float("inf")), ValueError, "clipnorm"),
    _ctor(ko.SGD, dict(global_clipnorm=np.float32("inf")), ValueError, "global_clipnorm"),
    _ctor(ko.Adam, dict(epsilon=float("-inf")), ValueError, "epsilon"),
    _ctor(ko.SGD, dict(weight_decay=float("inf")), ValueError, "weight_decay"),
    # a class is callable but is no schedule (accepted before, UnimplementedError at fit)
    _ctor(ko.SGD, dict(learning_rate=str), TypeError, "learning_rate"),
    _ctor(ko.Adam, dict(learning_rate=ko.LinearDecay), TypeError, "learning_rate"),
    # 0 meant "no accumulation" silently while 1 raised: both are refused
    _ctor(ko.SGD, dict(gradient_accumulation_steps=0), ValueError, "gradient_accumulation_steps"),
    _ctor(ko.SGD, dict(gradient_accumulation_steps=-3), ValueError, "gradient_accumulation_steps"),
    _ctor(ko.SGD, dict(use_ema="yes"), TypeError, "use_ema"),
    _ctor(ko.SGD, dict(use_ema=True, ema_overwrite_frequency=0), ValueError, "ema_overwrite_frequency"),
    _ctor(ko.SGD, dict(use_ema=True, ema_overwrite_frequency=1.5), TypeError, "ema_overwrite_frequency"),
    _ctor(ko.Momentum, dict(momentum=np.bool_(True)), TypeError, "momentum"),
    _ctor(ko.LinearDecay, dict(initial_learning_rate=-0.1, final_learning_rate=0.0, decay_steps=10), ValueError, "initial_learning_rate"),
    _ctor(ko.LinearDecay, dict(initial_learning_rate=0.1, final_learning_rate=-1.0, decay_steps=10), ValueError, "final_learning_rate"),
    _ctor(ko.LinearDecay, dict(initial_learning_rate=0.1, final_learning_rate=0.0, decay_steps=0), ValueError, "decay_steps"),
    _ctor(ko.LinearDecay, dict(initial_learning_rate=0.1, final_learning_rate=0.0, decay_steps=2.5), TypeError, "decay_steps"),
    # ------------------------------------------------------------------ more constructors
    _ctor(ko.SGD, dict(name=3), TypeError, "name"),
    _ctor(ko.Adam, dict(name=["adam"]), TypeError, "name"),
    _ctor(ko.SGD, dict(weight_decay="0.1"), TypeError, "weight_decay"),
    _ctor(ko.SGD, dict(use_ema=True, ema_momentum="a"), TypeError, "ema_momentum"),
    _ctor(ko.SGD, dict(use_ema=True, ema_momentum=float("nan")), ValueError, "ema_momentum"),
    _ctor(ko.SGD, dict(loss_scale_factor=float("inf")), ValueError, "loss_scale_factor"),
    _ctor(ko.SGD, dict(loss_scale_factor=-2.0), ValueError, "loss_scale_factor"),
    _ctor(ko.SGD, dict(learning_rate=[0.1]), TypeError, "learning_rate"),
    _ctor(ko.Momentum, dict(learning_rate=-0.01), ValueError, "learning_rate"),
    _ctor(ko.Nesterov, dict(momentum="0.9"), TypeError, "momentum"),
    _ctor(ko.AdaGrad, dict(epsilon="1e-7"), TypeError, "epsilon"),
    _ctor(ko.AdaGrad, dict(initial_accumulator_value="0.1"), TypeError, "initial_accumulator_value"),
    _ctor(ko.RMSProp, dict(epsilon=float("inf")), ValueError, "epsilon"),
    _ctor(ko.RMSProp, dict(learning_rate=float("nan")), ValueError, "learning_rate"),
    _ctor(ko.NesterovRMSProp, dict(epsilon=float("nan")), ValueError, "epsilon"),
    _ctor(ko.NesterovRMSProp, dict(momentum=np.float32(-0.5)), ValueError, "momentum"),
    _ctor(ko.Adam, dict(beta_1=float("nan")), ValueError, "beta_1"),
    _ctor(ko.Adam, dict(beta_2=-0.5), ValueError, "beta_2"),
    _ctor(ko.Adam, dict(epsilon=np.float64(float("nan"))), ValueError, "epsilon"),
    _ctor(ko.Adam, dict(clipvalue="1"), TypeError, "clipvalue"),
    _ctor(ko.RMSProp, dict(adaptive_clipnorm=float("inf")), ValueError, "adaptive_clipnorm"),
    # ------------------------------------------------------------------ the schedule
    _ctor(ko.LinearDecay, dict(initial_learning_rate="a", final_learning_rate=0.0, decay_steps=10), TypeError, "initial_learning_rate"),
    _ctor(ko.LinearDecay, dict(initial_learning_rate=float("inf"), final_learning_rate=0.0, decay_steps=10), ValueError, "initial_learning_rate"),
    _ctor(ko.LinearDecay, dict(initial_learning_rate=0.1, final_learning_rate=float("nan"), decay_steps=10), ValueError, "final_learning_rate"),
    _ctor(ko.LinearDecay, dict(initial_learning_rate=0.1, final_learning_rate=0.0, decay_steps=True), TypeError, "decay_steps"),
    _ctor(ko.LinearDecay, dict(initial_learning_rate=0.1, final_learning_rate=0.0, decay_steps="10"), TypeError, "decay_steps"),
    _ctor(ko.LinearDecay, dict(initial_learning_rate=0.1, final_learning_rate=0.0, decay_steps=-5), ValueError, "decay_steps"),
    # ------------------------------------------------------------------ clipping functions
    Bad(lambda: clipping.clip_by_value([_g(2)], -1.0), ValueError, "clipvalue", "clipvalue=-1.0"),
    Bad(lambda: clipping.clip_by_value([_g(2)], 0.0), ValueError, "clipvalue", "clipvalue=0.0"),
    Bad(lambda: clipping.clip_by_value([_g(2)], float("inf")), ValueError, "clipvalue", "clipvalue=inf"),
    Bad(lambda: clipping.clip_by_value([_g(2)], "1"), TypeError, "clipvalue", "clipvalue='1'"),
    Bad(lambda: clipping.clip_by_norm([_g(2)], 0.0), ValueError, "clipnorm", "clipnorm=0.0"),
    Bad(lambda: clipping.clip_by_norm([_g(2)], float("nan")), ValueError, "clipnorm", "clipnorm=nan"),
    Bad(lambda: clipping.clip_by_global_norm([_g(2)], -1.0), ValueError, "clipnorm", "clipnorm=-1.0"),
    Bad(lambda: clipping.clip_by_global_norm([_g(2)], "1"), TypeError, "clipnorm", "clipnorm='1'"),
    Bad(lambda: clipping.adaptive_clip([_g(2)], [_g(2)], 0.0), ValueError, "clipnorm", "clipnorm=0.0"),
    Bad(lambda: clipping.adaptive_clip([_g(2)], [_g(2)], 0.1, eps=-1e-3), ValueError, "eps", "eps=-0.001"),
    Bad(lambda: clipping.adaptive_clip([_g(2)], [_g(2), _g(2)], 0.1), ValueError, "params", "len(params)=2"),
    Bad(lambda: clipping.global_norm("abc"), TypeError, "grads", "type str"),
    Bad(lambda: clipping.all_finite(_g(2)), TypeError, "grads", "type ndarray"),
    Bad(lambda: clipping.clip_by_norm([_g(2), "g"], 1.0), TypeError, "grads[1]", "grads[1]='g'"),
    # ------------------------------------------------------------------ Optimizer.apply
    Bad(_apply(_ONE, lambda: [_v(2), _v(3)]), ValueError, "grads", "len(grads)=1, len(trainable_variables)=2"),
    Bad(_apply(lambda: [_g(3)], lambda: [_v(2)]), ValueError, "grads[0]", "of shape (3,)"),
    Bad(_apply(lambda: [_g(2, 1)], lambda: [_v(2)], ko.Adam), ValueError, "grads[0]", "of shape (2, 1)"),
    Bad(_apply(lambda: _g(2), lambda: [_v(2)]), TypeError, "grads", "type ndarray"),
    Bad(_apply(_ONE, lambda: [_g(2)]), TypeError, "trainable_variables[0]", "array([1., 1.]"),
    Bad(_apply(_ONE, lambda: {"w": _v(2)}), TypeError, "trainable_variables", "type dict"),
    Bad(_apply(lambda: [_g(2)], lambda: [_v(2, dtype="int32")]), TypeError, "variable 'w'", "dtype=int32"),
    Bad(_apply(lambda: [_g(2)], lambda: [_v(2, dtype="int32")], ko.Adam), TypeError, "variable 'w'", "dtype=int32"),
    Bad(_apply(_ONE, lambda: [_v(2), _v(3)], skip_nonfinite=True), ValueError, "grads", "len(grads)=1"),
    Bad(lambda: ko.SGD().apply_gradients([_g(2)]), TypeError, "grads_and_vars", "array([1., 1.]"),
    Bad(lambda: ko.Adam().apply_gradients("gv"), TypeError, "grads_and_vars", "'gv'"),
    # ------------------------------------------------------------------ the speed-path switch (TF)
    Bad(lambda: _paths("gpu"), ValueError, "path", "'gpu'", tensorflow_only=True),
    Bad(lambda: _paths(3), TypeError, "path", "3", tensorflow_only=True),
    Bad(lambda: _paths(), ValueError, "paths", "paths()", tensorflow_only=True),
]
