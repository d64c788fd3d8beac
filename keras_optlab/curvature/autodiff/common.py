"""What every autodiff adapter shares: the scalar-loss check and flat vectors."""

from keras import ops




def scalar_loss(loss, name="loss_fn"):
    """``loss`` as a scalar tensor; a ``ValueError`` echoing the shape of anything else.

    Autodiff of a non-scalar target silently differentiates its sum (TensorFlow) or
    fails deep inside (JAX, torch): a vector "loss" is refused here, at the call.
    """
    if loss is None:
        raise TypeError(f"`{name}` must return a scalar loss. Received: the loss None")
    loss = ops.convert_to_tensor(loss)
    shape = getattr(loss, "shape", ())
    rank = getattr(shape, "rank", len(shape) if shape is not None else None)
    if rank is None:  # TensorFlow, unknown rank inside a trace: checked when it runs
        return ops.reshape(loss, ())
    if rank != 0:
        raise ValueError(
            f"`{name}` must return a scalar loss (a 0-d tensor). Received: the loss of shape "
            f"{tuple(shape)}: reduce it (e.g. its mean) first"
        )
    return loss


def size(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def flat(tensors, dtype):
    """One vector of ``tensors`` (cast to ``dtype``), concatenated in order."""
    return ops.concatenate([ops.reshape(ops.cast(t, dtype), (-1,)) for t in tensors], axis=0)


def unflat(vector, like):
    """``vector`` cut into tensors shaped like the entries of ``like``."""
    out, start = [], 0
    for v in like:
        n = size(v.shape)
        out.append(ops.reshape(vector[start : start + n], tuple(v.shape)))
        start += n
    return out


def zeros_for_none(grads, like):
    return [ops.zeros(tuple(v.shape), dtype=v.dtype) if g is None else g for g, v in zip(grads, like)]


