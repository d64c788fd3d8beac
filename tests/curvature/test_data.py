"""Data sources of the curvature functions (keras_optlab.curvature.data): arrays by
batch_size, a tf.data.Dataset, a keras.utils.PyDataset, a re-iterable of batches and a
callable returning a generator all give the curvature of the mean loss over every
sample — the one-batch result — and what cannot be read twice or is infinite is refused
at the call with a message naming it."""

import keras
import numpy as np
import pytest

from keras_optlab import curvature
from tests.curvature import exact

pytestmark = pytest.mark.backend_agnostic

# See test_operators.py: float64-exact products, 1e-12 (exact.rtol: Keras' float32
# loss reduction on torch).
EXACT = exact.rtol(1e-12)


@pytest.fixture(scope="module")
def einsum():
    with exact.float64():
        model, x, y, w = exact.einsum_mlp()
        dense = curvature.operator(model, x, y, sample_weight=w).to_dense()
    return model, x, y, w, dense


def _pieces(x, y, w, size=10):
    return [(x[s:s + size], y[s:s + size], w[s:s + size]) for s in range(0, len(x), size)]


class Batches(keras.utils.PyDataset):
    """Batches of 10 (the last of 7), read by index."""

    def __init__(self, x, y, w):
        super().__init__()
        self.pieces = _pieces(x, y, w)

    def __len__(self):
        return len(self.pieces)

    def __getitem__(self, index):
        return self.pieces[index]


class Reiterable:
    """A user's own re-iterable: a fresh iterator each time."""

    def __init__(self, pieces):
        self.pieces = pieces

    def __iter__(self):
        return iter(self.pieces)


def _sources(x, y, w):
    def generator():
        for piece in _pieces(x, y, w, 9):
            yield piece

    sources = {
        "pydataset": Batches(x, y, w),
        "generator function": lambda: generator(),
        "reiterable": Reiterable(_pieces(x, y, w, 16)),
        "lists": Reiterable([list(p) for p in _pieces(x, y, w, 11)]),  # (x, y, w) as lists, as a DataLoader yields
    }
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        sources["tf.data"] = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(6)
    return sources


@pytest.mark.parametrize("kind", ["pydataset", "generator function", "reiterable", "lists", "tf.data"])
def test_every_source_gives_the_one_batch_operator(einsum, kind):
    model, x, y, w, dense = einsum
    sources = _sources(x, y, w)
    if kind not in sources:
        pytest.skip("tf.data with the TensorFlow backend")
    op = curvature.operator(model, sources[kind])
    got = op.to_dense()
    np.testing.assert_allclose(got, dense, rtol=EXACT, atol=EXACT * np.abs(dense).max())
    assert op.num_samples == 37
    np.testing.assert_array_equal(op.to_dense(), got)  # a second pass: the same, bit for bit


def test_unweighted_batches_are_weight_one(einsum):
    model, x, y, _, _ = einsum
    pairs = Reiterable([(x[s:s + 8], y[s:s + 8]) for s in range(0, 37, 8)])
    v = np.linspace(-1.0, 1.0, 26)
    expected = curvature.operator(model, x, y) @ v
    np.testing.assert_allclose(curvature.operator(model, pairs) @ v, expected, rtol=EXACT,
                               atol=EXACT * np.abs(expected).max())


def test_a_generator_is_refused_and_says_what_to_pass(einsum):
    model, x, y, w, _ = einsum
    generator = (piece for piece in _pieces(x, y, w))
    with pytest.raises(TypeError, match=r"an iterator \(a generator\?\).*callable that returns a fresh iterator"):
        curvature.operator(model, generator)
    with pytest.raises(TypeError, match="iterator"):
        curvature.top_eigenvalues(model, iter(_pieces(x, y, w)))


def test_a_callable_returning_the_same_iterator_is_caught_on_the_second_pass(einsum):
    model, x, y, w, _ = einsum
    shared = iter(_pieces(x, y, w))
    op = curvature.operator(model, lambda: shared)
    op @ np.ones(26)  # the first pass consumes it
    with pytest.raises(ValueError, match="yielded no batch"):
        op @ np.ones(26)
    rng = np.random.default_rng(0)
    fresh = curvature.operator(model, lambda: _pieces(x, y, w, int(rng.integers(5, 15))))
    fresh @ np.ones(26)
    with pytest.raises(ValueError, match=r"batches of 37 samples in all on this pass, but .* on the first"):
        for _ in range(5):  # another batch count sooner or later (seeded)
            fresh @ np.ones(26)


def test_infinite_or_wrong_sources_are_refused(einsum):
    model, x, y, w, _ = einsum

    class Endless(keras.utils.PyDataset):
        @property
        def num_batches(self):
            return None

        def __getitem__(self, index):
            return x[:4], y[:4]

    cases = [
        (lambda: curvature.operator(model, Endless()) @ np.ones(26), ValueError, "without a number of batches"),
        (lambda: curvature.operator(model, Reiterable(_pieces(x, y, w)), y), ValueError, "Received: y=array"),
        (lambda: curvature.operator(model, Batches(x, y, w), sample_weight=w), ValueError, "sample_weight=array"),
        (lambda: curvature.operator(model, Batches(x, y, w), batch_size=4), ValueError, "batch_size=4"),
        (lambda: curvature.operator(model, None, y), TypeError, "x=None"),
        (lambda: curvature.operator(model, "x.npz", y), TypeError, "x='x.npz'"),
        (lambda: curvature.operator(model, 3.0, y), TypeError, "x=3.0"),
        (lambda: curvature.operator(model, lambda: 5) @ np.ones(26), TypeError, "x() returned 5"),
        (lambda: curvature.operator(model, Reiterable([(x[:3], y[:4])])) @ np.ones(26), ValueError,
         "batch 0 of `x`"),
        (lambda: curvature.operator(model, Reiterable([])) @ np.ones(26), ValueError, "yielded no batch"),
    ]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        endless = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat()
        cases.append((lambda: curvature.operator(model, endless) @ np.ones(26), ValueError, "repeats forever"))
    for call, error, echo in cases:
        with pytest.raises(error) as info:
            call()
        assert echo in str(info.value), (echo, str(info.value))


def test_a_matrix_of_columns_is_one_pass_in_order(einsum):
    # Each batch is read once per product pass, whatever the number of columns, in order.
    model, x, y, w, _ = einsum
    reads = []

    class Logged(Reiterable):
        def __iter__(self):
            for i, piece in enumerate(self.pieces):
                reads.append(i)
                yield piece

    op = curvature.operator(model, Logged(_pieces(x, y, w)))
    op @ np.ones((26, 3))  # three columns, one pass
    assert reads == [0, 1, 2, 3]
