"""keras_optlab.lab.data: the digits split and its standardization."""

import numpy as np
import pytest

from keras_optlab.lab import MissingExtraError, load_digits
from keras_optlab.lab._optional import require


def test_shapes_and_dtypes():
    x_train, y_train, x_val, y_val = load_digits()
    assert x_train.shape == (1437, 64) and x_val.shape == (360, 64)
    assert y_train.shape == (1437,) and y_val.shape == (360,)
    assert x_train.dtype == x_val.dtype == np.float32
    assert y_train.dtype == y_val.dtype == np.int32
    assert set(np.unique(y_train)) == set(np.unique(y_val)) == set(range(10))


def test_standardized_with_training_statistics():
    x_train, _, x_val, _ = load_digits()
    std = x_train.std(axis=0)
    varying = std > 0
    np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(std[varying], 1.0, atol=1e-4)
    # Constant training features (blank corner pixels) are centred, not blown up.
    assert np.all(x_train[:, ~varying] == 0.0)
    # The validation set is scaled with the training statistics, so it is only roughly standard.
    assert abs(float(x_val.mean())) < 0.1
    assert np.all(np.isfinite(x_val))


def test_split_is_stratified():
    _, y_train, _, y_val = load_digits(validation_split=0.2)
    train_share = np.bincount(y_train) / len(y_train)
    val_share = np.bincount(y_val) / len(y_val)
    np.testing.assert_allclose(train_share, val_share, atol=0.01)


def test_deterministic_for_a_seed():
    first, again, other = load_digits(seed=3), load_digits(seed=3), load_digits(seed=4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])


def test_validation_split_size_and_range():
    _, y_train, _, y_val = load_digits(validation_split=0.5)
    assert abs(len(y_train) - len(y_val)) <= 1
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="validation_split"):
            load_digits(validation_split=bad)


def test_missing_extra_says_how_to_install():
    with pytest.raises(MissingExtraError, match=r"pip install keras-optlab\[lab\]") as info:
        require("keras_optlab_no_such_module", "a feature")
    assert isinstance(info.value, ImportError)
    assert "a feature" in str(info.value)
