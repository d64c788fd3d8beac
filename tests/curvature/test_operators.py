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


# ----------------------------------------------------------------- the operator itself
# exact.einsum_mlp: the same network through EinsumDense (no float32 matmul on torch),
# 37 samples with sample weights: a float64 product differs from the exact Hessian's
# only by rounding over a few dozen O(1) terms (≤ 5e-16 measured on TensorFlow and JAX);
# 1e-12 relative is the bar for a data set against one batch, and far below a
# wrong weighting (a batch of 5 of 37 samples weighed like one of 8 is off by 1e-1).
# On torch Keras 3.15's own loss reduction rounds to float32 (its divide_no_nan computes
# float64 in result_type(float64, float) = float32), so every product of the compiled
# loss carries a relative 6e-8 there: exact.rtol's 2e-6.
EXACT = exact.rtol(1e-12)


@pytest.fixture(scope="module")
def einsum():
    with exact.float64():
        model, x, y, w = exact.einsum_mlp()
        _, hessian = exact.gradient_and_hessian(exact.mlp_loss(model, x, y, w), model.trainable_variables)
    return model, x, y, w, hessian


def _close(got, expected, rtol=EXACT):
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def test_operator_is_the_exact_hessian(einsum):
    model, x, y, w, hessian = einsum
    op = curvature.operator(model, x, y, sample_weight=w)
    assert op.shape == (26, 26) and op.dtype == np.float64 and op.curvature == "hessian"
    assert op.num_samples == 37
    _close(op.to_dense(), hessian)
    v = np.random.default_rng(0).standard_normal(26)
    m = np.random.default_rng(1).standard_normal((26, 3))
    _close(op @ v, hessian @ v)
    _close(op.matvec(v), hessian @ v)
    _close(op @ m, hessian @ m)
    _close(op.matmat(m), hessian @ m)
    _close(v @ op, hessian @ v)  # symmetric: vᵀH = (Hv)ᵀ
    _close(m.T @ op, m.T @ hessian)
    _close(op(v), hessian @ v)


def test_operator_algebra(einsum):
    model, x, y, w, hessian = einsum
    h = curvature.operator(model, x, y, sample_weight=w)
    g = curvature.operator(model, x, y, sample_weight=w, curvature="gauss_newton")
    gauss_newton = g.to_dense()
    v = np.random.default_rng(2).standard_normal(26)
    cases = {
        "2H": (2.0 * h, 2.0 * hessian),
        "H*3": (h * 3, 3.0 * hessian),
        "np.float64(2)*H": (np.float64(2.0) * h, 2.0 * hessian),
        "H/4": (h / 4, hessian / 4),
        "-H": (-h, -hessian),
        "H+G": (h + g, hessian + gauss_newton),
        "H-G": (h - g, hessian - gauss_newton),
        "sum": (sum([h, g, h]), 2 * hessian + gauss_newton),
        "H+0.5I": (h.damped(0.5), hessian + 0.5 * np.eye(26)),
        "H+λI": (h + 0.25 * h.identity(), hessian + 0.25 * np.eye(26)),
        "2(H-G)+I": (2 * (h - g) + h.identity(), 2 * (hessian - gauss_newton) + np.eye(26)),
    }
    for name, (op, matrix) in cases.items():
        assert op.shape == (26, 26), name
        np.testing.assert_allclose(op @ v, matrix @ v, rtol=EXACT, atol=EXACT * np.abs(matrix @ v).max(), err_msg=name)
    assert isinstance(h.damped(0.0), curvature.LinearOperator)


def test_per_layer_blocks_are_views_of_the_operator(einsum):
    model, x, y, w, hessian = einsum
    h = curvature.operator(model, x, y, sample_weight=w)
    damped = h.damped(1.5)
    blocks = damped.per_layer()
    assert list(blocks) == [layer.name for layer in model.layers]
    for (name, block), part in zip(blocks.items(), SLICES):
        assert block.shape == (part.stop - part.start,) * 2
        assert block.shapes == [tuple(v.shape) for v in model.get_layer(name).trainable_variables]
        _close(block.to_dense(), hessian[part, part] + 1.5 * np.eye(part.stop - part.start))
    # The parent is untouched (a block is a view, no copy was changed) and a block of
    # variables in any order is that principal submatrix.
    _close(damped.to_dense(), hessian + 1.5 * np.eye(26))
    order = np.r_[16:24, 0:12]  # W2 then W1
    _close(h.block([2, 0]).to_dense(), hessian[np.ix_(order, order)])


def test_to_scipy_hands_the_operator_to_scipy(einsum):
    scipy_linalg = pytest.importorskip("scipy.sparse.linalg")
    model, x, y, w, hessian = einsum
    op = curvature.operator(model, x, y, sample_weight=w).to_scipy()
    assert isinstance(op, scipy_linalg.LinearOperator) and op.dtype == np.float64 and op.shape == (26, 26)
    top = scipy_linalg.eigsh(op, k=2, which="LA", tol=1e-12, return_eigenvectors=False)
    # ARPACK to tol 1e-12 on a 26×26 operator: its Ritz values are the eigenvalues to ~1e-12.
    np.testing.assert_allclose(np.sort(top), np.linalg.eigvalsh(hessian)[-2:], rtol=exact.rtol(1e-10))
    b = np.random.default_rng(3).standard_normal(26)
    damped = curvature.operator(model, x, y, sample_weight=w, curvature="gauss_newton").damped(0.1).to_scipy()
    solution, info = scipy_linalg.cg(damped, b, rtol=1e-13, maxiter=500)
    assert info == 0
    g = curvature.operator(model, x, y, sample_weight=w, curvature="gauss_newton").to_dense()
    # CG to a residual of 1e-13 ‖b‖ on a matrix of condition ~1e2: error ≤ 1e-10.
    np.testing.assert_allclose(solution, np.linalg.solve(g + 0.1 * np.eye(26), b), rtol=exact.rtol(1e-9),
                               atol=exact.rtol(1e-10))
    np.testing.assert_allclose(op.matvec(b.reshape(26, 1)).ravel(), hessian @ b, rtol=EXACT, atol=EXACT * 10)


def test_to_scipy_without_scipy_says_so(einsum, monkeypatch):
    import sys

    model, x, y, w, _ = einsum
    monkeypatch.setitem(sys.modules, "scipy.sparse.linalg", None)
    with pytest.raises(ImportError, match="to_scipy needs SciPy, which keras_optlab does not depend on"):
        curvature.operator(model, x, y).to_scipy()


@pytest.mark.parametrize("name", ["hessian", "gauss_newton", "fisher"])
def test_a_data_set_in_batches_equals_one_batch(einsum, name):
    # 37 samples in batches of 8: four full ones and one of 5 — a weighting by anything
    # but the batch's sample count (or by Σ w) would show at once.
    model, x, y, w, _ = einsum
    whole = curvature.operator(model, x, y, sample_weight=w, curvature=name).to_dense()
    batched = curvature.operator(model, x, y, sample_weight=w, curvature=name, batch_size=8)
    assert batched.num_samples == 37 and batched.data.num_batches == 5
    _close(batched.to_dense(), whole)
    m = np.random.default_rng(4).standard_normal((26, 2))
    first, second = batched @ m, batched @ m
    np.testing.assert_array_equal(first, second)  # deterministic, bit for bit
    _close(first, whole @ m)


def test_sample_weights_are_weighed_as_keras_weighs_them(einsum):
    # Keras' sum_over_batch_size divides Σ wᵢℓᵢ by the number of samples, not by Σ wᵢ:
    # the operator's loss is model.evaluate's on the same batches (mlp_loss: the same
    # by hand), and its gradient the hand-written loss's.
    model, x, y, w, _ = einsum
    op = curvature.operator(model, x, y, sample_weight=w, batch_size=8)
    loss, g = op.loss_and_gradient()
    reference_g, _ = exact.gradient_and_hessian(exact.mlp_loss(model, x, y, w), model.trainable_variables)
    np.testing.assert_allclose(loss, float(keras.ops.convert_to_numpy(exact.mlp_loss(model, x, y, w)())), rtol=EXACT)
    np.testing.assert_allclose(loss, model.evaluate(x, y, sample_weight=w, batch_size=8, verbose=0), rtol=EXACT)
    _close(g, reference_g)


def test_every_curvature_function_on_a_data_set_equals_one_batch(einsum):
    model, x, y, w, _ = einsum
    both = [dict(sample_weight=w), dict(sample_weight=w, batch_size=8)]
    vectors = exact.split_like(np.linspace(-1.0, 1.0, 26), model.trainable_variables)
    one, many = (exact.flatten(curvature.hvp(model, x, y, vectors, **kw)) for kw in both)
    _close(many, one)
    one, many = (curvature.gradient_curvature(model, x, y, learning_rate=0.1, **kw) for kw in both)
    for key in one:
        np.testing.assert_allclose(many[key], one[key], rtol=EXACT, err_msg=key)
    one, many = (curvature.top_eigenvalues(model, x, y, k=2, tol=1e-10, **kw) for kw in both)
    np.testing.assert_allclose(many, one, rtol=exact.rtol(1e-10))  # two Lanczos runs, each to 1e-10·λ_max
    for method in ("hutchinson", "hutch++"):
        one, many = (curvature.hessian_trace(model, x, y, num_samples=8, method=method, **kw) for kw in both)
        np.testing.assert_allclose(many, one, rtol=EXACT, atol=EXACT, err_msg=method)  # the same probes
    one, many = (curvature.hessian_diagonal(model, x, y, num_probes=4, **kw) for kw in both)
    _close(np.concatenate([d.ravel() for d in many.diagonal]), np.concatenate([d.ravel() for d in one.diagonal]))
    one, many = (curvature.hessian_spectral_density(model, x, y, num_probes=2, lanczos_steps=6, **kw).summary
                 for kw in both)
    for key in ("lambda_max", "lambda_min", "trace_estimate"):
        np.testing.assert_allclose(many[key], one[key], rtol=exact.rtol(1e-10), err_msg=key)


def test_operator_arguments_are_checked(einsum):
    model, x, y, w, _ = einsum
    op = curvature.operator(model, x, y)
    bad = [
        (lambda: op @ np.ones(25), ValueError, "shape (26,)"),
        (lambda: op @ np.ones((26, 0)), ValueError, "k >= 1"),
        (lambda: op @ np.full(26, np.nan), ValueError, "must be finite"),
        (lambda: op @ "v", TypeError, "v='v'"),
        (lambda: op @ op, TypeError, "product of two operators"),
        (lambda: op.matvec(np.ones((26, 2))), ValueError, "shape (26,)"),
        (lambda: op.matmat(np.ones(26)), ValueError, "matrix of shape (26,)"),
        (lambda: op * "2", TypeError, "scalar='2'"),
        (lambda: op * np.ones(3), TypeError, "scalar=array"),
        (lambda: op / 0, ValueError, "divided by 0"),
        (lambda: op * np.inf, ValueError, "scalar=inf"),
        (lambda: op + np.eye(26), TypeError, "H.damped"),
        (lambda: op + curvature.operators.DenseOperator(np.eye(3)), ValueError, "different variables"),
        (lambda: op.damped(-1.0), ValueError, "damping=-1.0"),
        (lambda: op.damped("a"), TypeError, "damping='a'"),
        (lambda: op.block([]), ValueError, "variable_indices=[]"),
        (lambda: op.block([0, 0]), ValueError, "distinct"),
        (lambda: op.block([4]), ValueError, "variable_indices=4"),
        (lambda: op.block("0"), TypeError, "variable_indices='0'"),
        (lambda: op.to_dense(max_size=10), ValueError, "max_size=10"),
        (lambda: op.to_dense(max_size=1.5), TypeError, "max_size=1.5"),
        (lambda: curvature.operator(model, x, y, curvature="newton"), ValueError, "curvature='newton'"),
        (lambda: curvature.operator(model, x, y, batch_size=0), ValueError, "batch_size=0"),
        (lambda: curvature.operator(model, x, y, batch_size=2.0), TypeError, "batch_size=2.0"),
        (lambda: curvature.operator("model", x, y), TypeError, "model='model'"),
        (lambda: curvature.operator(model, x, y[:5]), ValueError, "same number of samples"),
        (lambda: curvature.operator(model, x, y[:5], batch_size=4), ValueError, "same number of samples"),
        (lambda: curvature.operators.DenseOperator(np.ones((2, 3))), ValueError, "square matrix"),
        (lambda: curvature.operators.DenseOperator("m"), TypeError, "matrix='m'"),
        (lambda: curvature.operators.LinearOperator([(2,)]).per_layer(), ValueError, "has no layers"),
    ]
    for call, error, echo in bad:
        with pytest.raises(error) as info:
            call()
        assert echo in str(info.value), (echo, str(info.value))


def test_closure_product_is_the_operators_product_and_traces(einsum):
    # What a Hessian-free solver calls inside its compiled step: the same H v, G v, F v
    # for a loss closure, eagerly and traced (tf.function / jax.jit / eager torch).
    from keras_optlab.curvature.autodiff import for_backend
    from keras_optlab.curvature.hvp import per_example_loss_fn

    model, x, y, w, _ = einsum
    variables = model.trainable_variables
    flat = np.linspace(-1.0, 1.0, 26)
    per_example = per_example_loss_fn(model)
    closures = {
        "hessian": dict(loss_fn=curvature.loss_closure(model, x, y, w)),
        "gauss_newton": dict(outputs_fn=lambda: model(x, training=False),
                             output_loss_fn=lambda z: model.compute_loss(x=x, y=y, y_pred=z, sample_weight=w,
                                                                         training=False)),
        "fisher": dict(losses_fn=lambda: per_example(y, model(x, training=False), w)),
    }
    for name, given in closures.items():
        product = curvature.closure_product(variables=variables, curvature=name, **given)
        traced = for_backend().compiled(lambda vectors, product=product: product(vectors), list(model.variables))
        expected = curvature.operator(model, x, y, sample_weight=w, curvature=name) @ flat
        for got in (product(exact.split_like(flat, variables)), traced(exact.split_like(flat, variables))):
            _close(exact.flatten(got), expected)
    with pytest.raises(ValueError, match="curvature='gauss_newton' needs `outputs_fn`. Received: outputs_fn=None"):
        curvature.closure_product(None, variables, "gauss_newton")
    with pytest.raises(TypeError, match="losses_fn"):
        curvature.closure_product(None, variables, "fisher", losses_fn="losses")
    with pytest.raises(ValueError, match="curvature='newton'"):
        curvature.closure_product(lambda: 0.0, variables, "newton")
