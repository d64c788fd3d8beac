"""Local minima from non-identifiability (Goodfellow et al. 2016, Sec. 8.2.2).

Permuting the hidden units of a layer (columns of W₁ and b₁, rows of W₂) gives another
point in weight space that computes exactly the same function, hence the same loss: a
net with one hidden layer of n units has n! equivalent minima for every one it finds.
ReLU units add a continuum: scaling a unit's incoming weights by c > 0 and its outgoing
weights by 1/c changes nothing either. Trains the lab's digits MLP briefly, applies
both symmetries and prints how much the outputs and the loss moved.

Run: python examples/local_minima.py
"""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_optlab.lab import build_mlp, load_digits  # noqa: E402
from keras_optlab.optimizers import Adam  # noqa: E402


def main():
    keras.utils.set_random_seed(0)
    x, y, x_val, y_val = load_digits()
    model = build_mlp(64, 10, hidden_units=(64,), seed=0)
    model.compile(Adam(0.003), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    w1, b1, w2, b2 = model.get_weights()
    loss = model.evaluate(x_val, y_val, verbose=0)
    out = model.predict(x_val, verbose=0)

    rng = np.random.default_rng(0)
    perm = rng.permutation(w1.shape[1])
    permuted = keras.models.clone_model(model)
    permuted.set_weights([w1[:, perm], b1[perm], w2[perm, :], b2])
    permuted.compile(loss="sparse_categorical_crossentropy")
    scale = rng.uniform(0.2, 5.0, size=w1.shape[1]).astype("float32")
    rescaled = keras.models.clone_model(model)
    rescaled.set_weights([w1 * scale, b1 * scale, w2 / scale[:, None], b2])
    rescaled.compile(loss="sparse_categorical_crossentropy")

    units = w1.shape[1]
    print(f"hidden layer of {units} ReLU units: {units}! = {math.factorial(units):.3e} permutations of it")
    print(f"trained weights: validation loss {loss:.6f}")
    for name, other in (("permuted hidden units", permuted), ("ReLU rescaled by c∈[0.2, 5]", rescaled)):
        distance = math.sqrt(sum(float(np.sum((a - b) ** 2)) for a, b in zip(model.get_weights(), other.get_weights())))
        diff = float(np.abs(other.predict(x_val, verbose=0) - out).max())
        other_loss = other.evaluate(x_val, y_val, verbose=0)
        print(
            f"{name:28s}: weight-space distance {distance:8.3f}, max |Δ output| {diff:.2e}, "
            f"validation loss {other_loss:.6f} (Δ {abs(other_loss - loss):.1e})"
        )
    print("Same function, different weights: the model is not identifiable, so its minima come in families.")


if __name__ == "__main__":
    main()
