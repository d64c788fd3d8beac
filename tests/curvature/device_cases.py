"""The cases of the multi-device curvature checks (mirrored_check.py: TensorFlow's
MirroredStrategy; data_parallel_check.py: JAX's keras.distribution.DataParallel), run
in their own processes and compared by test_devices.py: each computes on one device and
again with the model built in the distribution's scope, on exact.einsum_mlp's 37
weighted samples (a prime: no device count splits it evenly, nor a batch of 8's last 5),
and returns ``{case: max |several − one| / max |one|}``."""

import keras
import numpy as np

from keras_optlab import curvature
from tests.curvature import exact

CURVATURES = ("hessian", "gauss_newton", "fisher")


class Batches(keras.utils.PyDataset):
    """The samples in batches of 12 (the last of 1: fewer samples than devices), read by
    index."""

    def __init__(self, x, y, w):
        super().__init__()
        self.pieces = [(x[s:s + 12], y[s:s + 12], w[s:s + 12]) for s in range(0, len(x), 12)]

    def __len__(self):
        return len(self.pieces)

    def __getitem__(self, index):
        return self.pieces[index]


def _flat(values):
    return np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in values])


def measurements(model, x, y, w, dataset=None):
    """Every figure of the cases, from ``model`` (built where it is to run)."""
    out = {}
    for name in CURVATURES:
        out[f"{name} one batch"] = curvature.operator(model, x, y, sample_weight=w, curvature=name).to_dense()
        out[f"{name} batch_size=8"] = curvature.operator(model, x, y, sample_weight=w, curvature=name,
                                                         batch_size=8).to_dense()
    out["hessian PyDataset"] = curvature.operator(model, Batches(x, y, w)).to_dense()
    if dataset is not None:
        out["hessian tf.data"] = curvature.operator(model, dataset).to_dense()
    v = [np.ones(tuple(t.shape)) for t in model.trainable_variables]
    out["hvp"] = exact.flatten(curvature.hvp(model, x, y, v, sample_weight=w))
    report = curvature.gradient_curvature(model, x, y, sample_weight=w, batch_size=8, learning_rate=0.1)
    out["gradient_curvature"] = np.array([report[k] for k in sorted(report)])
    out["top_eigenvalues"] = curvature.top_eigenvalues(model, x, y, k=2, tol=1e-10, sample_weight=w)
    trace = curvature.hessian_trace(model, x, y, num_samples=12, method="hutch++", sample_weight=w, batch_size=8)
    out["hessian_trace hutch++"] = np.array(trace[:2])
    out["hessian_diagonal"] = _flat(curvature.hessian_diagonal(model, x, y, num_probes=4, sample_weight=w).diagonal)
    return out


def compare(one, several):
    return {key: float(np.abs(several[key] - one[key]).max() / np.abs(one[key]).max()) for key in one}


def model_and_data():
    """``exact.einsum_mlp``'s model, samples and weights (float64 everywhere)."""
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    return exact.einsum_mlp()
