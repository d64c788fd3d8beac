"""Optimizer state loaded from disk is checked before it is used (issue 13, item 7).

Before: a ``.keras`` file whose optimizer slots or step count held NaN/Inf loaded
silently, and the first step made the weights NaN even with ``skip_nonfinite=True``
(which checks gradients, not state). Now ``BookOptimizer.load_own_variables`` refuses
it with a ValueError naming the variable, before anything is assigned.
"""

import keras
import numpy as np
import pytest

from tests.optimizers.cases import NAMES, OPTIMIZERS

pytestmark = pytest.mark.backend_agnostic

# name -> a slot the algorithm needs >= 0 (the second-moment accumulator)
NONNEGATIVE = {"AdaGrad": "accumulator", "RMSProp": "accumulator", "NesterovRMSProp": "accumulator", "Adam": "second_moment"}
# name -> a slot that may be any finite number
SIGNED = {"Momentum": "velocity", "Nesterov": "velocity", "NesterovRMSProp": "velocity", "Adam": "first_moment"}


def _trained(name, **kwargs):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=OPTIMIZERS[name](**kwargs), loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    model.fit(x, x[:, :2], epochs=1, verbose=0)
    return model


def _variable(optimizer, suffix):
    found = [v for v in optimizer.variables if v.path.endswith(suffix) or v.name.endswith(suffix)]
    assert found, [v.path for v in optimizer.variables]
    return found[0]


def _save_with(model, tmp_path, suffix, value):
    variable = _variable(model.optimizer, suffix)
    variable.assign(np.full(variable.shape, value, keras.backend.standardize_dtype(variable.dtype)))
    path = str(tmp_path / "corrupt.keras")
    model.save(path)
    return path, variable.path


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("name", sorted(set(NONNEGATIVE) | set(SIGNED)))
def test_non_finite_slot_is_refused_at_load(name, bad, tmp_path):
    model = _trained(name, skip_nonfinite=True)
    slot = SIGNED.get(name) or NONNEGATIVE[name]
    path, _ = _save_with(model, tmp_path, slot, bad)
    with pytest.raises(ValueError, match="NaN/Inf") as info:
        keras.saving.load_model(path)
    # the loaded model's variable paths differ from the saved one's (layer renamed)
    assert f"_kernel_{slot}'" in str(info.value) or f"_bias_{slot}'" in str(info.value), str(info.value)


@pytest.mark.parametrize("name", sorted(NONNEGATIVE))
def test_negative_second_moment_is_refused_at_load(name, tmp_path):
    slot = NONNEGATIVE[name]
    path, _ = _save_with(_trained(name), tmp_path, slot, -1.0)
    with pytest.raises(ValueError, match=">= 0") as info:
        keras.saving.load_model(path)
    assert f"_{slot}'" in str(info.value) and "-1." in str(info.value), str(info.value)


@pytest.mark.parametrize("name", sorted(SIGNED))
def test_negative_signed_slot_loads(name, tmp_path):
    path, _ = _save_with(_trained(name), tmp_path, SIGNED[name], -1.0)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(_variable(loaded.optimizer, SIGNED[name])), -1.0)


@pytest.mark.parametrize("name", NAMES)
def test_negative_step_count_is_refused_at_load(name, tmp_path):
    path, _ = _save_with(_trained(name), tmp_path, "iteration", -3)
    with pytest.raises(ValueError, match=">= 0") as info:
        keras.saving.load_model(path)
    assert "iteration" in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_learning_rate_is_refused_at_load(name, tmp_path):
    path, _ = _save_with(_trained(name), tmp_path, "learning_rate", float("nan"))
    with pytest.raises(ValueError, match="learning_rate"):
        keras.saving.load_model(path)


@pytest.mark.parametrize("name", NAMES)
def test_sound_state_loads_and_an_unmeasured_gradient_norm_is_fine(name, tmp_path):
    """gradient_norm is NaN until measured ("not measured"): that is no corruption."""
    model = _trained(name)
    assert np.isnan(keras.ops.convert_to_numpy(model.optimizer.gradient_norm))
    path = str(tmp_path / "ok.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
