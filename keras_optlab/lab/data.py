"""Real data for the lab: scikit-learn's handwritten digits (bundled, no download), and
the CURVES images of Hinton & Salakhutdinov (2006), generated here.

8×8 grey-level images of the digits 0–9, 1797 samples, 64 features with values 0–16.
Small enough that every optimizer of Goodfellow et al. (2016), ch. 8, trains an MLP on it
in seconds on a CPU, yet a real classification problem with a non-convex loss.

:func:`load_digits` is the one loader of digits in keras_optlab: the lab, the
initialization search, the examples, the benchmarks and the tests all call it.
:func:`curves` draws the synthetic 28×28 curve images of the deep-autoencoder benchmarks
(Hinton & Salakhutdinov 2006; Martens 2010; Sutskever et al. 2013) with NumPy alone.
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


CURVES_SIDE = 28
CURVES_SAMPLES = 200  # points on each curve: ≤ 0.35 px apart on the longest curves


def curves(n, seed=0, *, stroke_width=2.0, margin=4.0, return_points=False):
    """``n`` CURVES images: random smooth curves rendered to 28×28 grey-level pixels.

    The data set of the deep autoencoders of Hinton & Salakhutdinov (2006) (the
    784-400-200-100-50-25-6 network, also Martens 2010 and Sutskever et al. 2013): images
    of curves "generated from three randomly chosen points in two dimensions" (the
    paper), which its supporting online material draws as a cubic spline through the
    points, rendered with a stroke width. An image is a deterministic function of its
    6 numbers (the three points' coordinates), so the images lie on a 6-dimensional
    manifold — what the autoencoder's 6-unit code is sized for. Generated, per image:

    1. three control points P₀, P₁, P₂, each coordinate uniform on
       [``margin``, 28 − ``margin``] (pixel units, pixel centres at 0.5, 1.5, …);
    2. the natural cubic spline through them at parameters t = 0, ½, 1 (second
       derivative 0 at both ends; in closed form the middle knot's second derivative is
       M = 6 (P₀ − 2P₁ + P₂)), sampled at 200 values of t;
    3. each pixel's intensity from the distance d of its centre to the nearest sample:
       an anti-aliased stroke, ``clip(w/2 + 1/2 − d, 0, 1)`` for ``stroke_width`` w — 1
       inside the stroke, a linear one-pixel ramp at its edge, 0 beyond.

    Differences from the original file (``digs3pts_1.mat``, 20,000 training and 10,000
    test images, which is not shipped with keras_optlab and was not compared here):
    the authors' exact point distribution, spline parametrization, stroke width and
    intensity profile are not published in full, so those above are this package's
    choices; curves may leave the image where the spline overshoots (they are clipped,
    as pixels outside are not drawn); there is no fixed train/test file — any ``n``,
    any seed, and disjoint sets come from different seeds. Squared errors on these
    images are comparable with the papers' in kind (same image size, intensities in
    [0, 1], same manifold dimension), not digit for digit.

    Args:
        n: Number of images, an int ≥ 1 (a Python or NumPy integer, not a bool).
        seed: Seed of NumPy's ``default_rng``, an int ≥ 0 (Python or NumPy integer, not
            a bool): same seed, same images.
        stroke_width: Stroke width w in pixels, a float > 0. Defaults to 2.
        margin: Distance of the control points from the border in pixels, a float in
            [0, 14). Defaults to 4.
        return_points: Also return the control points (a bool).

    Returns:
        ``x``: float32 of shape ``(n, 784)`` (row-major 28×28 images), values in [0, 1];
        with ``return_points=True``, ``(x, points)`` where ``points`` is float64 of
        shape ``(n, 3, 2)`` — (column, row) of P₀, P₁, P₂ in pixel units.

    Raises:
        TypeError: an argument of the wrong type (``n`` or ``seed`` not an integer, a
            bool among them; ``stroke_width`` or ``margin`` not a real number;
            ``return_points`` not a bool). The message names the argument.
        ValueError: an argument out of its range (``n`` < 1, ``seed`` < 0,
            ``stroke_width`` ≤ 0 or not finite, ``margin`` outside [0, 14)).

    References: Hinton & Salakhutdinov (2006), "Reducing the dimensionality of data with
    neural networks", Science 313, and its supporting online material.
    """
    n = _checks.integer("n", n, low=1)
    seed = _checks.integer("seed", seed, low=0)
    stroke_width = _checks.positive("stroke_width", stroke_width)
    margin = _checks.number("margin", margin, low=0.0, high=CURVES_SIDE / 2, high_open=True)
    return_points = _checks.boolean("return_points", return_points)
    rng = np.random.default_rng(seed)
    points = rng.uniform(margin, CURVES_SIDE - margin, size=(n, 3, 2))
    trace = _natural_spline(points, samples=CURVES_SAMPLES)  # (n, samples, 2), (column, row)
    x = np.zeros((n, CURVES_SIDE * CURVES_SIDE), np.float32)
    # Each sample point lights the pixels of a window around it; a pixel keeps the
    # brightest value any sample gives it, i.e. the value at its distance to the curve.
    reach = int(np.ceil(stroke_width / 2 + 1.0))
    offsets = np.arange(-reach, reach + 1)
    chunk = 1024
    for first in range(0, n, chunk):
        c = trace[first:first + chunk]
        base = np.floor(c).astype(np.int64)  # the pixel each sample falls in
        col = base[..., 0, None, None] + offsets[None, None, None, :]  # (m, s, 1, k)
        row = base[..., 1, None, None] + offsets[None, None, :, None]  # (m, s, k, 1)
        distance = np.hypot(col + 0.5 - c[..., 0, None, None], row + 0.5 - c[..., 1, None, None])
        value = np.clip(stroke_width / 2 + 0.5 - distance, 0.0, 1.0).astype(np.float32)
        inside = (col >= 0) & (col < CURVES_SIDE) & (row >= 0) & (row < CURVES_SIDE) & (value > 0)
        image = np.broadcast_to(np.arange(len(c))[:, None, None, None], value.shape)
        flat = (first + image) * CURVES_SIDE**2 + row * CURVES_SIDE + col
        np.maximum.at(x.reshape(-1), flat[inside], value[inside])
    return (x, points) if return_points else x


def _natural_spline(points, samples):
    """The natural cubic spline through P₀, P₁, P₂ at t = 0, ½, 1, at ``samples`` values
    of t in [0, 1]: shape ``(n, samples, 2)``.

    With knots spaced h = ½ and end second derivatives 0, the continuity equations give
    the middle knot's second derivative M = 6 (P₀ − 2P₁ + P₂); on each half the spline is
    the linear interpolant plus the cubic correction of that second derivative.
    """
    p0, p1, p2 = points[:, 0, None], points[:, 1, None], points[:, 2, None]  # (n, 1, 2)
    m = 6.0 * (p0 - 2.0 * p1 + p2)
    t = np.linspace(0.0, 1.0, samples)[None, :, None]
    h = 0.5
    first = t <= h
    # On [t_i, t_i+1] with second derivatives M_i, M_i+1 and u = (t − t_i)/h:
    # S = (1−u) P_i + u P_i+1 + h²/6 [((1−u)³ − (1−u)) M_i + (u³ − u) M_i+1].
    u = np.where(first, t / h, (t - h) / h)
    start = np.where(first, p0, p1)
    end = np.where(first, p1, p2)
    m_start = np.where(first, 0.0, m)
    m_end = np.where(first, m, 0.0)
    v = 1.0 - u
    return v * start + u * end + h * h / 6.0 * ((v**3 - v) * m_start + (u**3 - u) * m_end)
