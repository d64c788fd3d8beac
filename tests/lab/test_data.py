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


def test_arguments_are_checked():
    with pytest.raises(TypeError, match="validation_split='0.2'"):
        load_digits(validation_split="0.2")
    with pytest.raises(TypeError, match="seed=1.5"):
        load_digits(seed=1.5)
    with pytest.raises(ValueError, match="limit=0"):
        load_digits(limit=0)
    with pytest.raises(ValueError, match="limit=1798"):
        load_digits(limit=1798)
    first = load_digits(validation_split=np.float64(0.25), seed=np.int64(1))
    assert len(first[1]) == 1347


def test_unsplit_keeps_the_bundled_order_and_standardizes_what_it_returns():
    from sklearn.datasets import load_digits as sklearn_digits

    x, y = load_digits(validation_split=None, limit=512)
    assert x.shape == (512, 64) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(y, sklearn_digits().target[:512])
    std = x.std(axis=0)
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(std[std > 0], 1.0, atol=1e-4)
    whole, _ = load_digits(validation_split=None)
    assert whole.shape == (1797, 64)


def test_limit_applies_before_the_split():
    x_train, y_train, x_val, y_val = load_digits(limit=500)
    assert len(y_train) + len(y_val) == 500 and len(y_val) == 100


def test_missing_extra_says_how_to_install():
    with pytest.raises(MissingExtraError, match=r"pip install keras-optlab\[lab\]") as info:
        require("keras_optlab_no_such_module", "a feature")
    assert isinstance(info.value, ImportError)
    assert "a feature" in str(info.value)


# --------------------------------------------------------------------------- curves()
def test_curves_shapes_range_and_seed():
    from keras_optlab.lab.data import curves

    x, points = curves(64, seed=3, return_points=True)
    assert x.shape == (64, 784) and x.dtype == np.float32 and points.shape == (64, 3, 2)
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(x, curves(64, seed=3))
    assert not np.array_equal(x, curves(64, seed=4))
    ink = (x > 0).mean(axis=1)  # a 2-px stroke covers a few % of the image, never nothing
    assert ink.min() > 0.01 and ink.max() < 0.4
    assert (curves(64, seed=3, stroke_width=4.0) > 0).mean() > (x > 0).mean()


def test_curves_stroke_passes_through_the_three_points():
    from keras_optlab.lab.data import curves

    x, points = curves(32, seed=0, return_points=True)
    images = x.reshape(-1, 28, 28)
    col, row = np.floor(points[..., 0]).astype(int), np.floor(points[..., 1]).astype(int)
    # The pixel holding a control point is within 0.71 px of the curve: value ≥ 1.5 − 0.71.
    lit = images[np.arange(32)[:, None], row, col]
    assert lit.min() > 0.75


def test_curves_spline_is_the_natural_cubic_spline():
    from scipy.interpolate import CubicSpline

    from keras_optlab.lab import data

    points = np.random.default_rng(0).uniform(4, 24, size=(5, 3, 2))
    ours = data._natural_spline(points, samples=11)
    t = np.linspace(0, 1, 11)
    for p, trace in zip(points, ours):
        np.testing.assert_allclose(trace, CubicSpline([0, 0.5, 1], p, bc_type="natural")(t), atol=1e-12)


def test_curves_arguments_are_checked():
    from keras_optlab.lab.data import curves

    with pytest.raises(ValueError, match="n=0"):
        curves(0)
    with pytest.raises(TypeError, match="n=1.5"):
        curves(1.5)
    with pytest.raises(ValueError, match="stroke_width"):
        curves(2, stroke_width=0.0)
    with pytest.raises(ValueError, match="margin"):
        curves(2, margin=14.0)
    with pytest.raises(TypeError, match="n=True"):
        curves(True)
    with pytest.raises(TypeError, match="n='3'"):
        curves("3")
    with pytest.raises(ValueError, match="seed=-1"):
        curves(2, seed=-1)
    with pytest.raises(TypeError, match="seed=0.5"):
        curves(2, seed=0.5)
    with pytest.raises(TypeError, match="seed=None"):
        curves(2, seed=None)
    with pytest.raises(TypeError, match="seed=False"):
        curves(2, seed=False)
    with pytest.raises(TypeError, match="stroke_width"):
        curves(2, stroke_width="2")
    with pytest.raises(TypeError, match="return_points"):
        curves(2, return_points=1)


def test_curves_takes_numpy_integers():
    from keras_optlab.lab.data import curves

    x = curves(np.int64(3), seed=np.uint32(7))
    assert x.shape == (3, 784)
    np.testing.assert_array_equal(x, curves(3, seed=7))
    np.testing.assert_array_equal(curves(np.array(2), seed=np.array(7)), x[:2])
