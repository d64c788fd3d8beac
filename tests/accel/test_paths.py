"""The public switch over the update paths (``keras_optlab.accel.paths``) and what
``optimizer.update_path`` reports."""

import keras
import numpy as np
import pytest

import keras_optlab as ko
from keras_optlab import accel


def variable(dtype="float32"):
    return keras.Variable(np.ones(3), dtype=dtype)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "names, error", [((), ValueError), (("gpu",), ValueError), (("fused", "xla"), ValueError), ((1,), TypeError)]
)
def test_bad_paths_are_refused(names, error):
    with pytest.raises(error, match="path"):
        with accel.paths(*names):
            pass


@pytest.mark.backend_agnostic
def test_ops_is_always_allowed_and_blocks_nest():
    assert accel.allowed_paths() == accel.PATHS
    with accel.paths("fused"):
        assert accel.allowed_paths() == ("fused", "ops")
        with accel.paths("ops"):
            assert accel.allowed_paths() == ("ops",)
        assert accel.allowed_paths() == ("fused", "ops")
    assert accel.allowed_paths() == accel.PATHS


@pytest.mark.backend_agnostic
def test_speed_paths_per_backend():
    """TensorFlow has the C++ kernel and TF's fused ops, torch the in-place path
    (keras_optlab.accel_torch), JAX only the keras.ops rule (XLA fuses it under jit)."""
    path = ko.Adam().update_path(variable())
    expected = {"tensorflow": ("kernel", "fused"), "torch": ("inplace",), "jax": ("ops",)}
    assert path in expected[keras.backend.backend()]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow speed paths")
def test_the_switch_decides_the_path():
    v = variable()
    with accel.paths("ops"):
        assert ko.Adam().update_path(v) == "ops"
    with accel.paths("fused"):
        assert ko.Adam().update_path(v) == "fused"
        assert ko.RMSProp().update_path(v) == "ops"  # TF has no kernel for the book's RMSProp


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow speed paths")
def test_a_subclass_that_changes_the_rule_gets_the_ops_path():
    """A speed path computes the class's rule; a user's own update_step is not it."""

    class HalfSteps(ko.Adam):
        def update_step(self, gradient, variable, learning_rate):
            super().update_step(0.5 * gradient, variable, learning_rate)

    v = variable()
    assert HalfSteps().update_path(v) == "ops"
    assert ko.Adam().update_path(v) != "ops"
