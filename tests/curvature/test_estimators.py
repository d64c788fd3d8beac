"""Trace and diagonal estimators (keras_optlab.curvature.estimators) against the exact
Hessian: Hutch++ beats Hutchinson's variance at equal products on a network's Hessian,
the reported standard errors are the estimators' own, the diagonal estimator is exact
for a diagonal Hessian and unbiased otherwise, per-layer traces from both."""

import keras
import numpy as np
import pytest

from keras_optlab import curvature
from keras_optlab.curvature.operators import DenseOperator
from tests.curvature import exact

pytestmark = pytest.mark.backend_agnostic


def _digits_network():
    """64 → 2 tanh → 10 logits on the first 128 digits shifted by +1 (160 parameters),
    float64, EinsumDense (float64-exact on every backend), Glorot-normal weights drawn
    by NumPy (the same network on every backend: Keras' seeded initializers draw
    differently on each). Inputs that are not centred give the Hessian an outlier pair
    (eigenvalues ±4.5 against a bulk within ±1.1, measured) along the mean input, as
    un-normalized data does (Sec. 8.2.1, 8.7.1); its weight is mostly off the diagonal."""
    from tests.helpers import digits_subset

    x, y = digits_subset(128)
    x = x.astype("float64") + 1.0
    model = keras.Sequential([
        keras.Input((64,), dtype="float64"),
        keras.layers.EinsumDense("ab,bc->ac", output_shape=2, bias_axes="c", activation=exact.tanh, dtype="float64"),
        keras.layers.EinsumDense("ab,bc->ac", output_shape=10, bias_axes="c", dtype="float64"),
    ], name="digits_2")
    rng = np.random.default_rng(0)
    model.set_weights([rng.standard_normal((64, 2)) * np.sqrt(2 / 66), np.zeros(2),
                       rng.standard_normal((2, 10)) * np.sqrt(2 / 12), np.zeros(10)])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, x, y


@pytest.fixture(scope="module")
def network():
    with exact.float64():
        model, x, y = _digits_network()
        dense = curvature.operator(model, x, y).to_dense()
    return model, x, y, 0.5 * (dense + dense.T)


def test_hutch_plus_plus_beats_hutchinson_at_equal_products(network):
    model, x, y, hessian = network
    off_diagonal = hessian - np.diag(np.diag(hessian))
    assert np.sum(off_diagonal**2) > np.sum(np.diag(hessian) ** 2)  # mostly off the diagonal
    trace = np.trace(hessian)
    # The model's estimator is the operator's: the same probes give the same estimate.
    for method in ("hutchinson", "hutch++"):
        on_model = curvature.hessian_trace(model, x, y, num_samples=24, method=method, seed=7)
        on_matrix = curvature.estimate_trace(DenseOperator(hessian), 24, method, seed=7)
        np.testing.assert_allclose(on_model, on_matrix, rtol=exact.rtol(1e-10), err_msg=method)
    # 400 runs of each with 24 products, seeds 0..399, on the exact Hessian: empirical
    # mean squared errors around the exact trace (measured: Hutchinson 4.80, Hutch++
    # 0.71 — the sketch takes the outliers, whose share dominates Hutchinson's variance).
    errors = {}
    for method in ("hutchinson", "hutch++"):
        runs = [curvature.estimate_trace(DenseOperator(hessian), 24, method, seed=s) for s in range(400)]
        estimates = np.array([r.trace for r in runs])
        errors[method] = np.mean((estimates - trace) ** 2)
        reported = np.mean([r.standard_error**2 for r in runs])
        # The reported standard error is the estimator's: its mean square matches the
        # empirical one (each a mean of 400 draws: ±20% covers their spread).
        assert 0.8 < reported / errors[method] < 1.25, (method, reported, errors[method])
        assert abs(estimates.mean() - trace) < 4 * np.sqrt(errors[method] / 400), method  # unbiased
        assert all(r.num_samples == 24 for r in runs)
    assert errors["hutch++"] < 0.5 * errors["hutchinson"], errors


def test_hutch_plus_plus_is_exact_on_a_low_rank_matrix():
    # rank 3 ≤ the sketch of 4 columns (12 products): tr(QᵀAQ) is the whole trace.
    u = np.random.default_rng(0).standard_normal((20, 3))
    estimate = curvature.estimate_trace(DenseOperator(u @ u.T), num_samples=12, method="hutch++", seed=1)
    np.testing.assert_allclose(estimate.trace, np.sum(u**2), rtol=1e-12)
    assert estimate.standard_error < 1e-12 * np.sum(u**2)


def test_diagonal_is_exact_for_a_diagonal_hessian():
    # Linear least squares on one-hot inputs: H = 2 diag(counts)/N (test_spectrum.py).
    with exact.float64():
        model = keras.Sequential([keras.Input((4,), dtype="float64"),
                                  keras.layers.Dense(1, use_bias=False, dtype="float64")])
        model.compile(loss=exact.mse)  # Keras' "mse" computes its mean in float32 on JAX (exact.mean)
        x = np.eye(4)[[0, 1, 1, 2, 3, 3, 3, 0]]
        estimate = curvature.hessian_diagonal(model, x, np.ones((8, 1)), num_probes=3, batch_size=3)
    np.testing.assert_allclose(estimate.diagonal[0].ravel(), [0.5, 0.5, 0.25, 0.75], rtol=exact.rtol(1e-12))
    assert estimate.diagonal[0].shape == (4, 1) and estimate.num_probes == 3
    assert np.all(estimate.standard_error[0] <= 1e-12)
    np.testing.assert_allclose(estimate.trace, 2.0, rtol=exact.rtol(1e-12))


def test_diagonal_and_per_layer_traces_are_unbiased(network):
    model, x, y, hessian = network
    estimate = curvature.hessian_diagonal(model, x, y, num_probes=100, seed=2)
    got = np.concatenate([d.ravel() for d in estimate.diagonal])
    errors = np.concatenate([e.ravel() for e in estimate.standard_error])
    assert [d.shape for d in estimate.diagonal] == [tuple(v.shape) for v in model.trainable_variables]
    # Each entry within 4 standard errors of the exact diagonal, and the standard errors
    # the estimator's own: one draw's variance of entry i is Σ_{j≠i} H_ij².
    # (Digits' constant corner pixels give their weights zero rows of H: exact zeros.)
    theory = np.sqrt(np.maximum(np.sum(hessian**2, axis=1) - np.diag(hessian) ** 2, 0.0) / 100)
    live = theory > 0
    assert np.mean(np.abs(got - np.diag(hessian)) <= 4 * errors + 1e-12) > 0.99
    np.testing.assert_allclose(np.median(errors[live] / theory[live]), 1.0, rtol=0.15)
    assert np.all(np.abs(got[~live]) <= 1e-12) and np.all(errors[~live] <= 1e-12)
    assert abs(estimate.trace - np.trace(hessian)) <= 4 * estimate.trace_standard_error
    layers = curvature.hessian_diagonal(model, x, y, num_probes=100, seed=2, per_layer=True)
    blocks = {"hidden": slice(0, 130), "output": slice(130, 160)}
    assert list(layers) == [layer.name for layer in model.layers]
    for (name, part), (layer_name, layer_estimate) in zip(blocks.items(), layers.items()):
        np.testing.assert_array_equal(np.concatenate([d.ravel() for d in layer_estimate.diagonal]), got[part])
        assert abs(layer_estimate.trace - np.trace(hessian[part, part])) <= 4 * layer_estimate.trace_standard_error
    traces = {method: curvature.hessian_trace(model, x, y, num_samples=16, method=method, seed=3, per_layer=True)
              for method in ("hutchinson", "hutch++")}
    for method, per_layer in traces.items():
        for (name, part), estimate in zip(blocks.items(), per_layer.values()):
            exact_trace = np.trace(hessian[part, part])
            assert abs(estimate.trace - exact_trace) <= 4 * estimate.standard_error + 1e-12 * abs(exact_trace), (
                method, name)


def test_estimator_arguments_are_checked(network):
    model, x, y, _ = network
    dense = DenseOperator(np.eye(3))
    cases = [
        (lambda: curvature.hessian_trace(model, x, y, method="hutch"), ValueError, "method='hutch'"),
        (lambda: curvature.hessian_trace(model, x, y, method=None), TypeError, "method=None"),
        (lambda: curvature.hessian_trace(model, x, y, method="hutch++", num_samples=3), ValueError, "num_samples=3"),
        (lambda: curvature.hessian_trace(model, x, y, num_samples=1), ValueError, "num_samples=1"),
        (lambda: curvature.hessian_diagonal(model, x, y, num_probes=1), ValueError, "num_probes=1"),
        (lambda: curvature.hessian_diagonal(model, x, y, num_probes=2.0), TypeError, "num_probes=2.0"),
        (lambda: curvature.hessian_diagonal(model, x, y, seed="s"), TypeError, "seed='s'"),
        (lambda: curvature.hessian_diagonal(model, x, y, per_layer="yes"), TypeError, "per_layer='yes'"),
        (lambda: curvature.hessian_diagonal(model, x, y, curvature="GN"), ValueError, "curvature='GN'"),
        (lambda: curvature.estimate_trace(np.eye(3)), TypeError, "op=array"),
        (lambda: curvature.estimate_diagonal(dense, num_probes=0), ValueError, "num_probes=0"),
    ]
    for call, error, echo in cases:
        with pytest.raises(error) as info:
            call()
        assert echo in str(info.value), (echo, str(info.value))
