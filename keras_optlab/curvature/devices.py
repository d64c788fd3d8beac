"""Curvature products on several devices: the batch split over them, the product summed.

Training with the data split over devices equals one device (tests/optimizers/
test_distributed.py, test_multi_device.py); so do the curvature products, by the same
means as Keras' own training step on each backend:

* **TensorFlow, ``tf.distribute``** (``MirroredStrategy`` and any strategy with
  replicas): when a product is asked inside ``strategy.scope()`` (cross-replica
  context), or of a model whose variables were made in one (``model.distribute_strategy``),
  each of the R replicas takes its share of the batch — samples
  [⌊Nr/R⌋, ⌊N(r+1)/R⌋) — and computes the product of its share's loss under
  ``strategy.run``; the shares are summed (``strategy.reduce("SUM")``). Keras scales a
  replica's loss by 1/R (``scale_loss_for_distribution``: the mean-type reductions of
  compiled losses and the regularizers), so that the replicas' sum is the batch's loss
  when the shares are equal — the invariant Keras' training relies on. Each replica's
  product is weighted by R·N_r/N, which is 1 for equal shares and makes the sum the
  batch's mean for unequal ones (a batch of N not a multiple of R) when every compiled
  loss reduces by a mean (``"sum_over_batch_size"``, Keras' default, ``"mean"``,
  ``"mean_with_sample_weight"``: all of the loss is scaled by 1/R). A loss with another
  reduction (``"sum"``) on a batch that does not split evenly is refused with a
  ``ValueError`` (Keras' own training is not the one-device one there either). A
  replica with no sample (N < R) computes on one sample and is weighted 0.
* **JAX, ``keras.distribution``** (``DataParallel``, ``ModelParallel``): when a
  distribution is set (``keras.distribution.set_distribution`` or its ``scope()``), each
  batch is laid out along the distribution's batch axis
  (``keras.distribution.distribute_tensor`` with ``distribution.get_data_layout``) and the
  jitted product runs on the whole mesh: XLA partitions the computation and sums the
  shares (the same program as one device, on sharded inputs). A batch whose size is not
  a multiple of the mesh's batch axis is not laid out: the product runs on it as given
  (the same result, on one device's share of the work).
* **PyTorch**: one device (Keras 3.15 has no torch distribution for ``fit`` either).
"""

import keras

MEAN_REDUCTIONS = ("sum_over_batch_size", "mean", "mean_with_sample_weight")


# ----------------------------------------------------------------------------- TensorFlow


def tf_strategy(model):
    """The ``tf.distribute.Strategy`` whose replicas compute ``model``'s products, or
    ``None`` (no strategy; or called from inside a replica, where the caller's own
    ``strategy.run`` does the splitting)."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if tf.distribute.has_strategy():
        return tf.distribute.get_strategy() if tf.distribute.in_cross_replica_context() else None
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is None or strategy is tf.distribute.get_strategy():
        return None
    return strategy


def compiled_loss_reductions(model):
    """The reduction of each compiled loss of ``model`` (a name or a function reduces by
    Keras' default, ``"sum_over_batch_size"``)."""
    loss = model.loss
    losses = list(loss.values()) if isinstance(loss, dict) else list(loss) if isinstance(loss, (list, tuple)) else [loss]
    return [getattr(item, "reduction", "sum_over_batch_size") if isinstance(item, keras.losses.Loss)
            else "sum_over_batch_size" for item in losses if item is not None]


def check_even_split(model, strategy, n):
    """Refuse a batch of ``n`` samples that the replicas of ``strategy`` cannot share
    exactly: unequal shares under a compiled loss that does not reduce by a mean."""
    replicas = strategy.num_replicas_in_sync
    if n % replicas == 0:
        return
    other = [r for r in compiled_loss_reductions(model) if r not in MEAN_REDUCTIONS]
    if other:
        raise ValueError(
            f"Under {type(strategy).__name__} with {replicas} replicas, a batch of {n} samples splits into unequal "
            f"shares, and model {model.name!r}'s compiled loss reduces by {other[0]!r}: Keras scales a replica's "
            f"loss for equal shares (its regularizers by 1/{replicas}, a {other[0]!r}-reduced loss not at all), so "
            f"the replicas' products add up to the batch's only for equal shares. Use batches of a multiple of "
            f"{replicas} samples (`batch_size`), or a loss reduced by one of {list(MEAN_REDUCTIONS)}. "
            f"Received: a batch of {n} samples"
        )


def tf_replicated(fn, kind, strategy):
    """``fn(x, y, sample_weight, *rest)`` (a product: ``kind="product"`` returning
    ``(product, finite, loss)``; or ``kind="gradient"`` returning ``(loss, grads)``) as
    one ``tf.function`` that runs it on each replica's share of the batch and sums the
    shares (see the module's docstring)."""
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync

    def replica(x, y, sample_weight, *rest):
        context = tf.distribute.get_replica_context()
        index = tf.cast(context.replica_id_in_sync_group, tf.int64)
        n = tf.shape(tf.nest.flatten(x)[0], out_type=tf.int64)[0]
        start, end = (n * index) // replicas, (n * (index + 1)) // replicas
        empty = tf.equal(start, end)
        start, end = tf.where(empty, tf.constant(0, tf.int64), start), tf.where(empty, tf.constant(1, tf.int64), end)

        def share(value):
            return None if value is None else tf.nest.map_structure(lambda a: a[start:end], value)

        out = fn(share(x), share(y), share(sample_weight), *rest)
        weight = tf.where(empty, tf.constant(0.0, tf.float64), tf.cast(replicas * (end - start), tf.float64) / tf.cast(n, tf.float64))

        def weighted(t):
            return tf.where(empty, tf.zeros_like(t), t * tf.cast(weight, t.dtype))

        if kind == "gradient":
            loss, grads = out
            return weighted(loss), [weighted(g) for g in grads]
        product, finite, loss = out
        finite = tf.cast(tf.logical_or(empty, finite), tf.float32)
        return [weighted(p) for p in product], finite, weighted(loss)

    def run(x, y, sample_weight, *rest):
        per_replica = strategy.run(replica, args=(x, y, sample_weight, *rest))
        total = tf.nest.map_structure(lambda t: strategy.reduce(tf.distribute.ReduceOp.SUM, t, axis=None), per_replica)
        if kind == "gradient":
            return total
        product, finite, loss = total
        return product, finite > replicas - 0.5, loss

    return tf.function(run, reduce_retracing=True)


# ----------------------------------------------------------------------------- JAX


def jax_distribution():
    """The ``keras.distribution`` distribution set now (JAX backend), or ``None``."""
    if keras.backend.backend() != "jax":
        return None
    return keras.distribution.distribution()


def batch_axis_size(distribution):
    """The number of devices along ``distribution``'s batch axis."""
    mesh = distribution.device_mesh
    return int(mesh.shape[list(mesh.axis_names).index(distribution.batch_dim_name)])


def jax_laid_out(distribution, x, y, sample_weight):
    """The batch laid out along ``distribution``'s batch axis when its size is a multiple
    of that axis' devices, else as given."""
    n = int(keras.tree.flatten(x)[0].shape[0])
    if n % batch_axis_size(distribution):
        return x, y, sample_weight

    def lay_out(value):
        if value is None:
            return None
        return keras.tree.map_structure(
            lambda a: keras.distribution.distribute_tensor(a, distribution.get_data_layout(tuple(a.shape))), value
        )

    return lay_out(x), lay_out(y), lay_out(sample_weight)


def describe(model=None):
    """Where the products of ``model`` run now, in words (for messages and reports)."""
    strategy = tf_strategy(model) if model is not None else None
    if strategy is not None:
        return f"tf.distribute {type(strategy).__name__}, {strategy.num_replicas_in_sync} replicas"
    distribution = jax_distribution()
    if distribution is not None:
        return f"keras.distribution {type(distribution).__name__}, {batch_axis_size(distribution)} devices on the batch axis"
    return "one device"


__all__ = ["MEAN_REDUCTIONS", "check_even_split", "describe", "jax_distribution", "tf_replicated", "tf_strategy"]
