"""The data a curvature is measured on: one batch, arrays cut into batches, or a data set.

The book's J(θ) is a mean over the training set (Goodfellow et al. 2016, Sec. 8.1); a
curvature of J is a mean of per-batch curvatures. :func:`batches` turns what a user
passes — the ``x, y, sample_weight`` of ``fit`` — into a :class:`Batches`: a source of
``(x, y, sample_weight)`` batches, each converted to tensors and checked
(:func:`~keras_optlab.curvature.hvp.check_batch`), that can be iterated once per
product, always in the same order:

* arrays (a NumPy array, a backend tensor, a dict/list/tuple of them for a model with
  several inputs or outputs): one batch (``batch_size=None``, what every curvature
  function did before data sets), or slices of ``batch_size`` samples in order, the
  last one possibly shorter; only the slice being computed is converted (memory: one
  batch);
* a ``tf.data.Dataset`` (finite; TensorFlow installed), a ``keras.utils.PyDataset``
  (finite; read by index, in order, without its workers), a torch ``DataLoader`` or any
  other iterable that restarts on ``iter()``: its elements, unpacked as Keras' ``fit``
  unpacks them (``keras.utils.unpack_x_y_sample_weight``: ``x``, ``(x,)``, ``(x, y)`` or
  ``(x, y, sample_weight)``);
* a callable (not a class) returning a fresh iterable of such batches: how to pass a
  **Python generator**. A generator (any iterator: ``iter(x) is x``) is refused with a
  ``TypeError``: it is consumed by one pass, and every product needs one.

Each pass must yield the same batches: the number of batches and of samples of every
pass is compared with the first one's, and a difference (a generator function that
draws fresh random data, an exhausted iterator returned twice) is a ``ValueError``.
Which element order a data set has is its own (a ``tf.data.Dataset`` shuffled with
``reshuffle_each_iteration=True`` changes the order but not the mean; its float sums
then differ in the last bits from pass to pass).
"""

import keras

from keras_optlab import _checks
from keras_optlab.curvature.oracle import check_batch


def _is_dataset(value):
    """A ``tf.data.Dataset`` (without importing TensorFlow when it is not loaded)."""
    import sys

    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(value, tf.data.Dataset)


def _is_arrays(value):
    """Arrays (or a nested dict/list/tuple of them) rather than an iterable of batches."""
    if isinstance(value, (dict, list, tuple)):
        return True
    if hasattr(value, "shape") and not _is_dataset(value):
        return True
    return False


def _kind(x):
    """``"arrays"``, ``"iterable"`` or ``"factory"`` for ``x``; a ``TypeError`` for
    anything else (``None``, a string, a number, an iterator)."""
    if x is None or isinstance(x, (str, bytes)):
        raise TypeError(
            "`x` must be an array (or a nested structure of arrays), a tf.data.Dataset, a keras.utils.PyDataset, "
            f"an iterable of (x, y[, sample_weight]) batches or a callable returning one. Received: x={_checks.shown(x)}"
        )
    if _is_arrays(x):
        return "arrays"
    if isinstance(x, keras.utils.PyDataset) or _is_dataset(x):
        return "iterable"
    if callable(x) and not isinstance(x, type) and not hasattr(x, "__iter__"):
        return "factory"
    if not hasattr(x, "__iter__"):
        raise TypeError(
            "`x` must be an array (or a nested structure of arrays), a tf.data.Dataset, a keras.utils.PyDataset, "
            f"an iterable of (x, y[, sample_weight]) batches or a callable returning one. Received: x={_checks.shown(x)}"
        )
    if iter(x) is x:
        raise TypeError(
            "`x` is an iterator (a generator?), which one pass over the data consumes, and every curvature "
            "product is a pass over the data. Pass a callable that returns a fresh iterator instead (e.g. "
            "`lambda: make_batches()` for a generator function `make_batches`), or a tf.data.Dataset, a "
            f"keras.utils.PyDataset or a torch DataLoader. Received: x={_checks.shown(x)}"
        )
    return "iterable"


def _num_samples(x):
    return int(keras.tree.flatten(x)[0].shape[0])


class Batches:
    """A re-iterable source of checked ``(x, y, sample_weight)`` batches (tensors).

    Attributes:
        single: ``True`` when the source is one batch held in memory (arrays with
            ``batch_size`` ``None`` or at least their length); then :attr:`batch` is it.
        num_samples: The number of samples of a pass (known at once for arrays, after
            the first pass for a data set; ``None`` before).
        num_batches: Likewise, the number of batches of a pass.
    """

    def __init__(self, kind, x, y, sample_weight, batch_size):
        self._check_batch = check_batch
        self.kind = kind
        self.source = x
        self.batch_size = batch_size
        self.batch = None
        self.single = False
        self.num_samples = None
        self.num_batches = None
        if kind == "arrays":
            if batch_size is None:
                self.batch = check_batch(x, y, sample_weight)
                self.single = True
                self.num_samples = _num_samples(self.batch[0])
                self.num_batches = 1
                return
            # Check the whole structure once without converting it (one batch of the
            # first sample converts; lengths compared on the shapes).
            try:
                first = [None if v is None else keras.tree.map_structure(lambda a: a[:1], v) for v in (x, y, sample_weight)]
            except (TypeError, IndexError) as error:
                raise TypeError(
                    "`x`, `y` and `sample_weight` must be arrays with a leading sample axis to be cut into batches of "
                    f"`batch_size`. Received: x={_checks.shown(x)}"
                ) from error
            check_batch(*first)
            lengths = {int(leaf.shape[0]) for v in (x, y, sample_weight) if v is not None for leaf in keras.tree.flatten(v)}
            if len(lengths) != 1:
                check_batch(x, y, sample_weight)  # raises, naming the arrays of other lengths
            self.num_samples = lengths.pop()
            self.num_batches = -(-self.num_samples // batch_size)
            if self.num_batches == 1:
                self.batch = check_batch(x, y, sample_weight)
                self.single = True
            self._arrays = (x, y, sample_weight)

    def _raw(self):
        """The unconverted batches of one pass."""
        if self.kind == "arrays":
            x, y, sample_weight = self._arrays
            size = self.batch_size
            for start in range(0, self.num_samples, size):
                yield tuple(
                    None if v is None else keras.tree.map_structure(lambda a, s=start: a[s:s + size], v)
                    for v in (x, y, sample_weight)
                )
            return
        source = self.source
        if self.kind == "factory":
            source = self.source()
            if isinstance(source, (str, bytes)) or not hasattr(source, "__iter__"):
                raise TypeError(
                    "`x` is a callable, which must return an iterable of (x, y[, sample_weight]) batches. "
                    f"Received: x() returned {_checks.shown(source)}"
                )
        elif isinstance(source, keras.utils.PyDataset):
            try:
                count = source.num_batches
            except NotImplementedError:
                count = None
            if count is None:
                raise ValueError(
                    "`x` is a keras.utils.PyDataset without a number of batches (infinite): a mean over the data "
                    f"needs a finite set. Define `num_batches` (or `__len__`). Received: x={_checks.shown(source)}"
                )
            dataset = source
            source = (dataset[i] for i in range(count))
        elif _is_dataset(source):
            import tensorflow as tf

            if int(source.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
                raise ValueError(
                    "`x` is a tf.data.Dataset that repeats forever: a mean over the data needs a finite set "
                    f"(e.g. `dataset.take(n)`, or no `.repeat()`). Received: x={_checks.shown(source)}"
                )
            if keras.backend.backend() != "tensorflow":
                source = source.as_numpy_iterator()
        for element in source:
            yield keras.utils.unpack_x_y_sample_weight(element)

    def __iter__(self):
        """One pass: the checked batches, in order (a ``ValueError`` when a pass differs
        from the first in its number of batches or samples, or yields none)."""
        if self.single:
            yield self.batch
            return
        batches = samples = 0
        for x, y, sample_weight in self._raw():
            try:
                batch = self._check_batch(x, y, sample_weight)
            except (TypeError, ValueError) as error:
                raise type(error)(f"batch {batches} of `x`: {error}") from error
            batches += 1
            samples += _num_samples(batch[0])
            yield batch
        if batches == 0:
            raise ValueError(f"`x` yielded no batch: a curvature needs at least one sample. Received: x={_checks.shown(self.source)}")
        if self.num_batches is None:
            self.num_batches, self.num_samples = batches, samples
        elif (batches, samples) != (self.num_batches, self.num_samples):
            raise ValueError(
                f"`x` yielded {batches} batches of {samples} samples in all on this pass, but {self.num_batches} "
                f"batches of {self.num_samples} samples on the first: every product is a pass over the same data. "
                "A callable must return a fresh iterator over the same batches each time. "
                f"Received: x={_checks.shown(self.source)}"
            )


def batches(x, y=None, sample_weight=None, batch_size=None):
    """``x``, ``y``, ``sample_weight`` and ``batch_size`` as a :class:`Batches`
    (see the module's docstring); every argument checked here.

    ``y`` and ``sample_weight`` go with arrays; a data set carries them in its batches,
    so there they must be ``None`` (``ValueError``), as must ``batch_size`` (its batches
    are already made).
    """
    kind = _kind(x)
    batch_size = _checks.integer("batch_size", batch_size, low=1, allow_none=True)
    if kind != "arrays":
        for name, value in (("y", y), ("sample_weight", sample_weight), ("batch_size", batch_size)):
            if value is not None:
                raise ValueError(
                    f"`{name}` goes with arrays; `x` is a data set whose batches carry their own targets and "
                    f"sample weights (and sizes). Received: {name}={_checks.shown(value)}"
                )
    return Batches(kind, x, y, sample_weight, batch_size)


__all__ = ["Batches", "batches"]
