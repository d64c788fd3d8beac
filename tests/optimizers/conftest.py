import keras
import pytest


@pytest.fixture(scope="session")
def digits():
    """A small standardized slice of scikit-learn's bundled digits (no download)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = ((x - x.mean(0)) / (x.std(0) + 1e-6)).astype("float32")
    return x[:512], y[:512].astype("int32")


def make_mlp(seed=0, hidden=32):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(hidden, activation="tanh"), keras.layers.Dense(10)]
    )


LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
