"""Impossible hyperparameters are refused at construction, naming the argument and
echoing the value received; NumPy scalars are accepted wherever Python numbers are.
Every check here is one of keras_optlab/_checks.py."""

import numpy as np
import pytest

import keras_optlab as ko

pytestmark = pytest.mark.backend_agnostic

BAD = [
    # (class, kwargs, exception, the argument named in the message)
    (ko.SGD, dict(learning_rate=-0.1), ValueError, "learning_rate"),
    (ko.SGD, dict(learning_rate="fast"), TypeError, "learning_rate"),
    (ko.SGD, dict(learning_rate=float("nan")), ValueError, "learning_rate"),
    (ko.SGD, dict(learning_rate=True), TypeError, "learning_rate"),
    (ko.SGD, dict(clipnorm=0.0), ValueError, "clipnorm"),
    (ko.SGD, dict(clipnorm=-1.0), ValueError, "clipnorm"),
    (ko.SGD, dict(clipvalue=-0.5), ValueError, "clipvalue"),
    (ko.SGD, dict(global_clipnorm=0), ValueError, "global_clipnorm"),
    (ko.SGD, dict(adaptive_clipnorm=0.0), ValueError, "adaptive_clipnorm"),
    (ko.SGD, dict(adaptive_clipnorm=-0.01), ValueError, "adaptive_clipnorm"),
    (ko.SGD, dict(adaptive_clipnorm="1"), TypeError, "adaptive_clipnorm"),
    (ko.SGD, dict(skip_nonfinite="yes"), TypeError, "skip_nonfinite"),
    (ko.SGD, dict(track_gradient_norm=1), TypeError, "track_gradient_norm"),
    (ko.SGD, dict(weight_decay=-1e-4), ValueError, "weight_decay"),
    (ko.SGD, dict(loss_scale_factor=0.0), ValueError, "loss_scale_factor"),
    (ko.SGD, dict(gradient_accumulation_steps=1), ValueError, "gradient_accumulation_steps"),
    (ko.SGD, dict(gradient_accumulation_steps=2.5), TypeError, "gradient_accumulation_steps"),
    (ko.SGD, dict(clipnorm=1.0, clipvalue=1.0), ValueError, "clipnorm"),
    (ko.SGD, dict(use_ema=True, ema_momentum=1.5), ValueError, "ema_momentum"),
    (ko.Momentum, dict(momentum=1.0), ValueError, "momentum"),
    (ko.Momentum, dict(momentum=-0.1), ValueError, "momentum"),
    (ko.Momentum, dict(momentum=None), TypeError, "momentum"),
    (ko.Nesterov, dict(momentum=1.2), ValueError, "momentum"),
    (ko.Nesterov, dict(learning_rate=-1.0), ValueError, "learning_rate"),
    (ko.AdaGrad, dict(epsilon=0.0), ValueError, "epsilon"),
    (ko.AdaGrad, dict(epsilon=-1e-7), ValueError, "epsilon"),
    (ko.AdaGrad, dict(initial_accumulator_value=-0.1), ValueError, "initial_accumulator_value"),
    (ko.RMSProp, dict(rho=1.0), ValueError, "rho"),
    (ko.RMSProp, dict(rho=-0.5), ValueError, "rho"),
    (ko.RMSProp, dict(epsilon=0.0), ValueError, "epsilon"),
    (ko.NesterovRMSProp, dict(momentum=1.0), ValueError, "momentum"),
    (ko.NesterovRMSProp, dict(rho=2.0), ValueError, "rho"),
    (ko.NesterovRMSProp, dict(epsilon=-1.0), ValueError, "epsilon"),
    (ko.Adam, dict(beta_1=1.0), ValueError, "beta_1"),
    (ko.Adam, dict(beta_1=-0.1), ValueError, "beta_1"),
    (ko.Adam, dict(beta_2=1.0), ValueError, "beta_2"),
    (ko.Adam, dict(beta_2="0.999"), TypeError, "beta_2"),
    (ko.Adam, dict(epsilon=0.0), ValueError, "epsilon"),
    (ko.Adam, dict(not_an_argument=1), ValueError, "not_an_argument"),
    # infinity, where the math needs a finite number (accepted before, NaN weights later)
    (ko.SGD, dict(learning_rate=float("inf")), ValueError, "learning_rate"),
    (ko.AdaGrad, dict(epsilon=float("inf")), ValueError, "epsilon"),
    (ko.AdaGrad, dict(initial_accumulator_value=float("inf")), ValueError, "initial_accumulator_value"),
    (ko.SGD, dict(clipvalue=float("inf")), ValueError, "clipvalue"),
    (ko.SGD, dict(clipnorm=float("inf")), ValueError, "clipnorm"),
    (ko.SGD, dict(global_clipnorm=np.float32("inf")), ValueError, "global_clipnorm"),
    (ko.Adam, dict(epsilon=float("-inf")), ValueError, "epsilon"),
    (ko.SGD, dict(weight_decay=float("inf")), ValueError, "weight_decay"),
    # a class is callable but is no schedule (accepted before, UnimplementedError at fit)
    (ko.SGD, dict(learning_rate=str), TypeError, "learning_rate"),
    (ko.Adam, dict(learning_rate=ko.LinearDecay), TypeError, "learning_rate"),
    # 0 meant "no accumulation" silently while 1 raised: both are refused
    (ko.SGD, dict(gradient_accumulation_steps=0), ValueError, "gradient_accumulation_steps"),
    (ko.SGD, dict(gradient_accumulation_steps=-3), ValueError, "gradient_accumulation_steps"),
    (ko.SGD, dict(use_ema="yes"), TypeError, "use_ema"),
    (ko.SGD, dict(use_ema=True, ema_overwrite_frequency=0), ValueError, "ema_overwrite_frequency"),
    (ko.SGD, dict(use_ema=True, ema_overwrite_frequency=1.5), TypeError, "ema_overwrite_frequency"),
    (ko.Momentum, dict(momentum=np.bool_(True)), TypeError, "momentum"),
    (ko.LinearDecay, dict(initial_learning_rate=-0.1, final_learning_rate=0.0, decay_steps=10), ValueError, "initial_learning_rate"),
    (ko.LinearDecay, dict(initial_learning_rate=0.1, final_learning_rate=-1.0, decay_steps=10), ValueError, "final_learning_rate"),
    (ko.LinearDecay, dict(initial_learning_rate=0.1, final_learning_rate=0.0, decay_steps=0), ValueError, "decay_steps"),
    (ko.LinearDecay, dict(initial_learning_rate=0.1, final_learning_rate=0.0, decay_steps=2.5), TypeError, "decay_steps"),
]


def test_the_table_is_large():
    assert len(BAD) >= 55


@pytest.mark.parametrize("cls, kwargs, error, argument", BAD, ids=[f"{c.__name__}-{k}" for c, k, _, _ in BAD])
def test_bad_hyperparameter_is_refused(cls, kwargs, error, argument):
    with pytest.raises(error) as info:
        cls(**kwargs)
    message = str(info.value)
    assert argument in message
    value = kwargs[argument]
    assert repr(value) in message or str(value) in message, message


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (ko.SGD, dict(learning_rate=0)),  # an int learning rate is accepted as a float
        (ko.Momentum, dict(momentum=0.0)),
        (ko.AdaGrad, dict(initial_accumulator_value=0.0)),
        (ko.Adam, dict(beta_1=0.0, beta_2=0.0)),
        (ko.SGD, dict(clipnorm=1)),
    ],
)
def test_boundary_values_are_accepted(cls, kwargs):
    cls(**kwargs)


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (ko.SGD, dict(learning_rate=np.float32(0.1), clipnorm=np.float64(1.0), gradient_accumulation_steps=np.int64(2))),
        (ko.Momentum, dict(momentum=np.float32(0.9), weight_decay=np.float16(1e-3))),
        (ko.AdaGrad, dict(epsilon=np.float64(1e-7), initial_accumulator_value=np.float32(0.1))),
        (ko.RMSProp, dict(rho=np.float32(0.9), epsilon=np.array(1e-6))),
        (ko.Adam, dict(beta_1=np.float32(0.9), beta_2=np.float64(0.999), adaptive_clipnorm=np.float32(0.01))),
        (ko.NesterovRMSProp, dict(momentum=np.float64(0.5), skip_nonfinite=np.bool_(True))),
    ],
)
def test_numpy_scalars_are_accepted_as_python_numbers(cls, kwargs):
    config = cls(**kwargs).get_config()
    for key, value in kwargs.items():
        if key == "learning_rate":
            continue  # stored as a variable; its config value is float32-rounded by Keras
        got = config[key]
        assert type(got) in (float, int, bool), (key, type(got))  # plain Python, so the config is JSON
        np.testing.assert_allclose(got, float(value), rtol=1e-7)


NEWTON_BAD = [
    (dict(damping=-1.0), ValueError, "damping"),
    (dict(solver="lbfgs"), ValueError, "solver"),
    (dict(max_cg_iterations=0), ValueError, "max_cg_iterations"),
    (dict(max_cg_iterations=2.5), TypeError, "max_cg_iterations"),
    (dict(cg_tolerance=0.0), ValueError, "cg_tolerance"),
    (dict(adaptive_damping="yes"), TypeError, "adaptive_damping"),
    (dict(adaptive_damping=True, damping=0.0), ValueError, "damping"),
    (dict(saddle_free=True, solver="cg"), ValueError, "solver"),
    (dict(weight_decay=0.1), ValueError, "weight_decay"),
    (dict(curvature="fisher"), ValueError, "curvature"),
    (dict(curvature="gauss_newton", solver="exact"), ValueError, "solver"),
    (dict(clipnorm=1.0), ValueError, "clipnorm"),
    (dict(damping=float("inf")), ValueError, "damping"),
    (dict(solver=3), TypeError, "solver"),
    (dict(cg_tolerance=float("inf")), ValueError, "cg_tolerance"),
    (dict(max_cg_iterations=True), TypeError, "max_cg_iterations"),
    (dict(saddle_free=1), TypeError, "saddle_free"),
    (dict(curvature=None), TypeError, "curvature"),
]


@pytest.mark.parametrize("kwargs, error, argument", NEWTON_BAD, ids=[str(k) for k, _, _ in NEWTON_BAD])
def test_bad_newton_argument_is_refused(kwargs, error, argument):
    with pytest.raises(error) as info:
        ko.Newton(**kwargs)
    assert argument in str(info.value)
