"""Helpers shared by tests in several folders (a test module never imports another one).

* :func:`digits_subset` — the tests' digits: the first ``n`` samples in scikit-learn's
  bundled order, standardized (``keras_optlab.lab.data.load_digits``, the package's one
  loader, with no split);
* :func:`make_mlp` — the tests' small digits MLP, 64 → ``hidden`` tanh → 10 logits, from
  ``keras.utils.set_random_seed(seed)`` (``keras_optlab.lab.models.digits_mlp``, the
  package's one builder);
* :data:`LOSS` — its loss: sparse categorical cross-entropy on logits.
"""

import keras

from keras_optlab.lab.data import load_digits
from keras_optlab.lab.models import digits_mlp

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def digits_subset(n=512):
    """``(x, y)``: the first ``n`` digits (bundled order, no shuffling), standardized,
    float32 inputs and int32 labels. ``n=512`` with batch 64 makes every batch full,
    which MirroredStrategy's equality with one device needs."""
    return load_digits(validation_split=None, limit=n)


def make_mlp(seed=0, hidden=32):
    """64 → ``hidden`` tanh → 10 logits, uncompiled; Keras' default (unseeded) Glorot
    kernels drawn after ``keras.utils.set_random_seed(seed)``: the same seed gives the
    same weights, in this process or another."""
    keras.utils.set_random_seed(seed)
    return digits_mlp((hidden,), "tanh", kernel_initializer="glorot_uniform", output_activation=None,
                      name=f"mlp_{hidden}")


def load_script(path, name=None):
    """Import the script at ``path`` (a benchmark, a tuning script) as a module."""
    import importlib.util
    import pathlib

    path = pathlib.Path(path)
    spec = importlib.util.spec_from_file_location(name or f"{path.stem}_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
