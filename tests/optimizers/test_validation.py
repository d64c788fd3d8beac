"""Hyperparameters at their boundaries and as NumPy scalars are accepted; Newton's bad
arguments are refused. The impossible hyperparameters of the other optimizers (refused
at construction, naming the argument and echoing the value) are rows of the bad-input
table, tests/bad_inputs/optimizers.py. Every check is one of keras_optlab/_checks.py."""

import numpy as np
import pytest

import keras_optlab as ko

pytestmark = pytest.mark.backend_agnostic


def test_the_bad_input_table_is_large():
    """The rows of bad hyperparameters live in tests/bad_inputs/optimizers.py (run by
    tests/test_bad_inputs.py); this file keeps what is accepted."""
    from tests.bad_inputs.optimizers import ROWS

    assert len(ROWS) >= 75, len(ROWS)


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

