"""Real data for the lab: scikit-learn's handwritten digits (bundled, no download).

8×8 grey-level images of the digits 0–9, 1797 samples, 64 features with values 0–16.
Small enough that every optimizer of Goodfellow et al. (2016), ch. 8, trains an MLP on it
in seconds on a CPU, yet a real classification problem with a non-convex loss.

:func:`load_digits` is the one loader of digits in keras_optlab: the lab, the
initialization search, the examples, the benchmarks and the tests all call it.
"""

import numpy as np

from keras_optlab import _checks
from keras_optlab.lab._optional import require

SAMPLES = 1797


def load_digits(validation_split=0.2, seed=0, *, limit=None):
    """Digits as standardized float32 arrays, split into training and validation sets.

    The split is stratified (every class keeps its share in both sets) and
    deterministic for a given ``seed``. Features are standardized with the training
    set's per-feature mean and standard deviation (features constant on the training
    set — the always-blank corner pixels — are only centred), so the validation set
    never leaks into the scaling. Standardized inputs keep the loss surface from being
    needlessly ill-conditioned (Goodfellow et al. 2016, Sec. 8.2.1 and 8.7.1).

    Args:
        validation_split: Fraction of the samples held out, in (0, 1); or ``None``:
            no split, the samples in scikit-learn's bundled order (what the tests
            use: a fixed, ordered slice).
        seed: Seed of the split (an int, or ``None`` for a fresh one each call).
        limit: Use only the first ``limit`` samples of the bundled order (before the
            split), an int in [1, 1797]; ``None`` uses all 1797.

    Returns:
        ``(x_train, y_train, x_val, y_val)``: ``x_*`` float32 of shape ``(n, 64)``,
        ``y_*`` int32 class labels of shape ``(n,)``. With ``validation_split=None``,
        ``(x, y)``, standardized with their own statistics.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: ``validation_split`` outside (0, 1) or ``limit`` outside [1, 1797].
        MissingExtraError: scikit-learn is not installed.
    """
    validation_split = _checks.number(
        "validation_split", validation_split, low=0.0, high=1.0, low_open=True, high_open=True, allow_none=True
    )
    seed = _checks.integer("seed", seed, allow_none=True)
    limit = _checks.integer("limit", limit, low=1, high=SAMPLES, allow_none=True)
    datasets = require("sklearn.datasets", "load_digits")
    digits = datasets.load_digits()
    x, y = digits.data[:limit], digits.target[:limit]
    if validation_split is None:
        scale = _standardizer(x)
        return scale(x), y.astype(np.int32)
    model_selection = require("sklearn.model_selection", "load_digits")
    x_train, x_val, y_train, y_val = model_selection.train_test_split(
        x,
        y,
        test_size=validation_split,
        stratify=y,
        random_state=seed,
    )
    scale = _standardizer(x_train)
    return scale(x_train), y_train.astype(np.int32), scale(x_val), y_val.astype(np.int32)


def _standardizer(x_train):
    """x ↦ (x − mean) / std with the statistics of ``x_train``, as float32."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0.0] = 1.0

    def scale(x):
        return ((x - mean) / std).astype(np.float32)

    return scale
