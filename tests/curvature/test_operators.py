"""curvature="gauss_newton" / "fisher" against explicit float64 matrices built in NumPy,
per_layer=True against the exact Hessian's diagonal blocks, and return_vectors.

The references are written out here, not through keras_optlab: the Jacobian of the
model outputs of tests/curvature/exact.py's MLP (3 → 4 tanh → 2, 26 parameters) by
hand (exact.mlp_jacobians), G = Σᵢ JᵢᵀH_LJᵢ and F = (1/N) Σᵢ gᵢgᵢᵀ from it; the exact
Hessian by each backend's own route (exact.gradient_and_hessian).
"""

import keras
import numpy as np
import pytest

from keras_optlab import curvature
from tests.curvature import exact

pytestmark = pytest.mark.backend_agnostic

# float64 throughout: the NumPy references and the products are exact up to rounding
# over a few dozen O(1) terms; 1e-10 relative leaves a wide margin above 1e-16 and none
# for a wrong formula (exact.rtol: float32-accurate matmuls on torch, see exact.py).
RTOL = exact.rtol(1e-10)
WEIGHTS = np.linspace(0.2, 1.7, 16)  # sample weights of exact.mlp()'s 16 samples


def _gauss_newton_and_fisher(model, x, y, w):
    """G and F of Σᵢ wᵢ ℓᵢ / N, ℓᵢ = (1/K) Σₖ (zᵢₖ − yᵢₖ)² (the L2 penalty is not
    a function of z: it adds nothing to either)."""
    z, jac = exact.mlp_jacobians(model, x)
    n, k = z.shape
    gauss_newton = (2.0 / (n * k)) * np.einsum("i,ika,ikb->ab", w, jac, jac)
    per_example = w[:, None] * np.einsum("ika,ik->ia", jac, 2.0 * (z - y) / k)  # gᵢ = ∇(wᵢℓᵢ)
    return gauss_newton, per_example.T @ per_example / n, z


class ExactMSE(keras.losses.Loss):
    """exact.mse as a keras.losses.Loss (the Loss-instance branch of per-example losses)."""

    def call(self, y_true, y_pred):
        return exact.mse(y_true, y_pred)


@pytest.fixture(scope="module")
def references():
    with exact.float64():
        model, x, y = exact.mlp()
        gauss_newton, fisher, z = _gauss_newton_and_fisher(model, x, y, WEIGHTS)
        unweighted = _gauss_newton_and_fisher(model, x, y, np.ones(len(x)))
        _, hessian = exact.gradient_and_hessian(exact.mlp_loss(model, x, y), model.trainable_variables)
    return model, x, y, {"gauss_newton": gauss_newton, "fisher": fisher}, unweighted, z, hessian


def _apply(model, x, y, matrix_name, v, sample_weight=None):
    return exact.flatten(
        curvature.hvp(model, x, y, exact.split_like(v, model.trainable_variables), sample_weight=sample_weight,
                      curvature=matrix_name)
    )


def test_the_numpy_transcription_is_the_model(references):
    model, x, _, _, _, z, _ = references
    np.testing.assert_allclose(exact.flatten([model(x)]), z.ravel(), rtol=RTOL)


@pytest.mark.parametrize("name", ["gauss_newton", "fisher"])
def test_products_match_the_explicit_matrices_with_sample_weights(references, name):
    model, x, y, matrices, _, _, _ = references
    rng = np.random.default_rng(1)
    for _ in range(2):
        v = rng.standard_normal(26)
        expected = matrices[name] @ v
        got = _apply(model, x, y, name, v, sample_weight=WEIGHTS)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=RTOL * np.abs(expected).max())


def test_fisher_of_a_loss_instance_and_of_a_loss_name(references):
    model, x, y, _, (_, fisher, _), _, _ = references
    v = np.random.default_rng(2).standard_normal(26)
    expected = fisher @ v
    model.compile(loss=ExactMSE())
    try:
        got = _apply(model, x, y, "fisher", v)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=RTOL * np.abs(expected).max())
        model.compile(loss="mse")
        got = _apply(model, x, y, "fisher", v)
        # Keras' own "mse" takes ops.mean, which Keras 3.15 computes in float32 on JAX:
        # float32 rounding (~6e-8) over a few dozen terms stays under 1e-5.
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    finally:
        model.compile(loss=exact.mse)


def test_gauss_newton_is_the_hessian_of_a_linear_model():
    # A linear model's outputs have no curvature: G = H (no regularizer here).
    model = keras.Sequential([keras.Input((3,), dtype="float64"), keras.layers.Dense(2, dtype="float64")])
    model.compile(loss=exact.mse)
    x = np.random.default_rng(3).standard_normal((8, 3))
    y = np.random.default_rng(4).standard_normal((8, 2))
    v = np.random.default_rng(5).standard_normal(8)
    split = exact.split_like(v, model.trainable_variables)
    np.testing.assert_allclose(
        exact.flatten(curvature.hvp(model, x, y, split, curvature="gauss_newton")),
        exact.flatten(curvature.hvp(model, x, y, split)), rtol=RTOL, atol=RTOL,
    )


@pytest.mark.parametrize("name", ["gauss_newton", "fisher"])
def test_spectrum_trace_and_gradient_curvature_of_the_other_matrices(references, name):
    model, x, y, _, unweighted, _, _ = references
    matrix = {"gauss_newton": unweighted[0], "fisher": unweighted[1]}[name]
    expected = np.linalg.eigvalsh(matrix)[::-1][:2]
    values = curvature.top_eigenvalues(model, x, y, k=2, tol=1e-10, curvature=name)
    # Lanczos residual tolerance 1e-10 · λ_max bounds each Ritz value's error (see
    # test_spectrum.py); G and F are positive semi-definite.
    assert np.all(np.linalg.eigvalsh(matrix) > -1e-12 * expected[0])
    np.testing.assert_allclose(values, expected, rtol=exact.rtol(1e-8))
    g, _ = exact.gradient_and_hessian(exact.mlp_loss(model, x, y), model.trainable_variables)
    report = curvature.gradient_curvature(model, x, y, curvature=name)
    np.testing.assert_allclose(report["gHg"], g @ matrix @ g, rtol=RTOL)
    np.testing.assert_allclose(report["g_norm_sq"], g @ g, rtol=RTOL)
    estimate = curvature.hessian_trace(model, x, y, num_samples=60, curvature=name)
    # Unbiased; |error| > 4 standard errors has probability < 1e-4 for a near-normal mean.
    assert abs(estimate.trace - np.trace(matrix)) <= 4 * estimate.standard_error
    assert estimate.standard_error < 0.2 * np.trace(matrix)


def _check_ritz_values(values, matrix, name):
    """``values[0]`` is λ_max of ``matrix`` and every value is one of its eigenvalues.
    (Not "the top k": Lanczos from one start vector sees a repeated eigenvalue once in
    exact arithmetic — the output layer's block here is (2/NK) Σ [h;1][h;1]ᵀ ⊗ I₂, every
    eigenvalue twice — and twice when rounding (float32 matmuls on torch) splits it.)
    Residual tolerance 1e-10 · λ_max bounds each Ritz value's distance to the spectrum."""
    exact_values = np.linalg.eigvalsh(matrix)
    tol = exact.rtol(1e-9) * abs(exact_values).max()
    np.testing.assert_allclose(values[0], exact_values[-1], rtol=exact.rtol(1e-8), atol=tol, err_msg=name)
    distance = np.abs(values[:, None] - exact_values[None, :]).min(axis=1)
    assert np.all(distance <= tol), (name, values, exact_values)


SLICES = (slice(0, 16), slice(16, 26))  # W1, b1 | W2, b2


def _blocks(model):
    """{layer name: its slice of the flat parameters} (names depend on what ran before)."""
    return {layer.name: block for layer, block in zip(model.layers, SLICES)}


def test_per_layer_blocks_match_the_exact_hessian(references):
    model, x, y, _, _, _, hessian = references
    blocks = _blocks(model)
    assert [name for name, _ in curvature.layer_blocks(model)] == list(blocks)
    g, _ = exact.gradient_and_hessian(exact.mlp_loss(model, x, y), model.trainable_variables)
    reports = curvature.gradient_curvature(model, x, y, learning_rate=0.1, per_layer=True)
    values = curvature.top_eigenvalues(model, x, y, k=2, tol=1e-10, per_layer=True)
    traces = curvature.hessian_trace(model, x, y, num_samples=60, seed=4, per_layer=True)
    assert set(reports) == set(values) == set(traces) == set(blocks)
    for name, block in blocks.items():
        h, gb = hessian[block, block], g[block]
        np.testing.assert_allclose(reports[name]["gHg"], gb @ h @ gb, rtol=RTOL, err_msg=name)
        np.testing.assert_allclose(reports[name]["g_norm_sq"], gb @ gb, rtol=RTOL, err_msg=name)
        np.testing.assert_allclose(
            reports[name]["predicted_change"], 0.5 * 0.01 * (gb @ h @ gb) - 0.1 * (gb @ gb), rtol=RTOL
        )
        _check_ritz_values(values[name], h, name)
        # Hutchinson on the block alone: within 4 standard errors (see above).
        assert abs(traces[name].trace - np.trace(h)) <= 4 * traces[name].standard_error, name


def test_per_layer_gauss_newton_eigenvectors(references):
    model, x, y, _, (gauss_newton, _, _), _, _ = references
    result = curvature.top_eigenvalues(model, x, y, tol=1e-10, curvature="gauss_newton", per_layer=True,
                                       return_vectors=True)
    for name, block in _blocks(model).items():
        values, vectors = result[name]
        u = np.concatenate([np.ravel(p) for p in vectors[0]])
        assert [np.shape(p) for p in vectors[0]] == [
            tuple(v.shape) for v in model.get_layer(name).trainable_variables]
        g = gauss_newton[block, block]
        np.testing.assert_allclose(g @ u, values[0] * u, atol=exact.rtol(1e-6) * values[0], err_msg=name)


def test_return_vectors_is_return_eigenvectors(references):
    model, x, y, _, _, _, hessian = references
    values, vectors = curvature.top_eigenvalues(model, x, y, k=2, tol=1e-10, return_vectors=True)
    for value, vector in zip(values, vectors):
        u = exact.flatten(vector)
        np.testing.assert_allclose(hessian @ u, value * u, atol=exact.rtol(1e-6) * abs(values[0]))
    same = curvature.top_eigenvalues(model, x, y, k=2, tol=1e-10, return_eigenvectors=True, return_vectors=True)
    np.testing.assert_array_equal(same[0], values)
    plain = curvature.top_eigenvalues(model, x, y, k=2, tol=1e-10, return_vectors=False)
    np.testing.assert_array_equal(plain, values)
    with pytest.raises(ValueError, match="return_vectors=False, return_eigenvectors=True"):
        curvature.top_eigenvalues(model, x, y, return_eigenvectors=True, return_vectors=False)


def test_fisher_refuses_several_outputs():
    inputs = keras.Input((3,), dtype="float64")
    model = keras.Model(inputs, [keras.layers.Dense(1, dtype="float64")(inputs),
                                 keras.layers.Dense(1, dtype="float64")(inputs)])
    model.compile(loss=["mse", "mse"])
    x, y = np.ones((4, 3)), [np.ones((4, 1)), np.ones((4, 1))]
    with pytest.raises(ValueError, match="curvature='fisher' needs per-example losses"):
        curvature.top_eigenvalues(model, x, y, curvature="fisher")
    # Gauss-Newton splits at the outputs, however many (G of a linear model is H).
    np.testing.assert_allclose(curvature.top_eigenvalues(model, x, y, curvature="gauss_newton", tol=1e-10),
                               curvature.top_eigenvalues(model, x, y, tol=1e-10), rtol=exact.rtol(1e-8))


@pytest.mark.parametrize(
    "call, error, echo",
    [
        (lambda m, x, y: curvature.hvp(m, x, y, [], curvature="newton"), ValueError, "curvature='newton'"),
        (lambda m, x, y: curvature.hvp(m, x, y, [], curvature=2), TypeError, "curvature=2"),
        (lambda m, x, y: curvature.top_eigenvalues(m, x, y, curvature="GN"), ValueError, "curvature='GN'"),
        (lambda m, x, y: curvature.hessian_trace(m, x, y, curvature=None), TypeError, "curvature=None"),
        (lambda m, x, y: curvature.gradient_curvature(m, x, y, curvature="fischer"), ValueError,
         "curvature='fischer'"),
        (lambda m, x, y: curvature.gradient_curvature(m, x, y, per_layer="yes"), TypeError, "per_layer='yes'"),
        (lambda m, x, y: curvature.top_eigenvalues(m, x, y, per_layer=1), TypeError, "per_layer=1"),
        (lambda m, x, y: curvature.hessian_trace(m, x, y, per_layer=None), TypeError, "per_layer=None"),
        (lambda m, x, y: curvature.top_eigenvalues(m, x, y, return_vectors="yes"), TypeError,
         "return_vectors='yes'"),
        (lambda m, x, y: curvature.top_eigenvalues(m, x, y, per_layer=True, initial_vector=np.ones(26)),
         ValueError, "initial_vector=array"),
    ],
)
def test_bad_arguments_name_themselves(references, call, error, echo):
    model, x, y = references[:3]
    with pytest.raises(error) as info:
        call(model, x, y)
    assert echo in str(info.value), str(info.value)


def test_numpy_scalars_and_bools_are_accepted(references):
    model, x, y = references[:3]
    reports = curvature.gradient_curvature(model, x, y, per_layer=np.bool_(True), learning_rate=np.float32(0.5))
    assert set(reports) == set(_blocks(model))
