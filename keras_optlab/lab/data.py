"""Real data for the lab: scikit-learn's handwritten digits (bundled, no download).

8×8 grey-level images of the digits 0–9, 1797 samples, 64 features with values 0–16.
Small enough that every optimizer of Goodfellow et al. (2016), ch. 8, trains an MLP on it
in seconds on a CPU, yet a real classification problem with a non-convex loss.
"""

import numpy as np

from keras_optlab.lab._optional import require


def load_digits(validation_split=0.2, seed=0):
    """Digits as standardized float32 arrays, split into training and validation sets.

    The split is stratified (every class keeps its share in both sets) and
    deterministic for a given ``seed``. Features are standardized with the training
    set's per-feature mean and standard deviation (features constant on the training
    set — the always-blank corner pixels — are only centred), so the validation set
    never leaks into the scaling. Standardized inputs keep the loss surface from being
    needlessly ill-conditioned (Goodfellow et al. 2016, Sec. 8.2.1 and 8.7.1).

    Args:
        validation_split: Fraction of the samples held out, in (0, 1).
        seed: Seed of the split.

    Returns:
        ``(x_train, y_train, x_val, y_val)``: ``x_*`` float32 of shape ``(n, 64)``,
        ``y_*`` int32 class labels of shape ``(n,)``.
    """
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"`validation_split` must be in (0, 1). Received: validation_split={validation_split!r}")
    datasets = require("sklearn.datasets", "load_digits")
    model_selection = require("sklearn.model_selection", "load_digits")
    digits = datasets.load_digits()
    x_train, x_val, y_train, y_val = model_selection.train_test_split(
        digits.data,
        digits.target,
        test_size=validation_split,
        stratify=digits.target,
        random_state=seed,
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0.0] = 1.0

    def scale(x):
        return ((x - mean) / std).astype(np.float32)

    return scale(x_train), y_train.astype(np.int32), scale(x_val), y_val.astype(np.int32)
