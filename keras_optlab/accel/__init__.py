"""Optional speed paths for keras_optlab's optimizers on the TensorFlow backend.

The optimizers never import this package: it is a plugin, listed in ``pyproject.toml``
under the entry-point group ``keras_optlab.accelerators``, which
:func:`keras_optlab.optimizers.base.accelerators` loads at an optimizer's first build
(however the optimizer was imported). On import it registers itself with
:func:`keras_optlab.optimizers.base.register_accelerator`; without it (no TensorFlow,
or keras_optlab not installed as a package) every optimizer runs its ``keras.ops`` rule
(:mod:`keras_optlab.optimizers.rules`), as on JAX and PyTorch.

Three paths compute the same operations in the same order (bit for bit):

* ``"kernel"`` — keras_optlab's own one-pass C++ CPU kernels (:mod:`.cpu`), for
  float32/float64 variables on the CPU outside XLA, where they built;
* ``"fused"`` — TensorFlow's fused training kernels (:mod:`.tf_fused`,
  ``tf.raw_ops.ResourceApply*``) where one computes the book's rule exactly: GPU, XLA,
  float16/bfloat16, no compiler;
* ``"ops"`` — the optimizer's ``update_step``: the reference, always allowed.

``optimizer.update_path(variable)`` says which one a variable gets; :func:`paths`
restricts the choice (for a comparison, a benchmark, or a suspicion)::

    with keras_optlab.accel.paths("ops"):      # only the keras.ops rule
        model.fit(...)
    with keras_optlab.accel.paths("fused"):    # TF's kernels, never ours
        ...

The path is chosen when the training step is *traced*: a step traced before the
``with`` keeps its path (``fit`` traces at its start). ``KERAS_OPTLAB_KERNELS=0`` in
the environment switches the CPU kernels off for the whole process.
"""


import keras

from keras_optlab.accel import cpu, cpu_updates, tf_fused
from keras_optlab import _keras_hooks
from keras_optlab.optimizers import base

PATHS = ("kernel", "fused", "ops")
KERNEL_DTYPES = ("float32", "float64")

_switch = base.PathSwitch(PATHS)


def allowed_paths():
    """The paths the optimizers may choose from now (``"ops"`` is always among them)."""
    return _switch.allowed()


def paths(*names):
    """Restrict the update paths to ``names`` (``"kernel"``, ``"fused"``, ``"ops"``)
    while the block runs (a context manager); ``"ops"`` is always allowed. Nested blocks
    restrict further only as they say: the innermost one is in force."""
    return _switch.restrict(*names)


class _Accelerator:
    """What :mod:`keras_optlab.optimizers.base` asks (see ``register_accelerator``)."""

    def prepare(self, optimizer):
        # Called by optimizer.build(): build/load the CPU kernels here, eagerly (a
        # failed build warns once, at the user's line, and is not retried).
        if keras.backend.backend() != "tensorflow" or "kernel" not in allowed_paths():
            return
        if base.speed_path_rule(optimizer) in cpu_updates.UPDATES and cpu.enabled():
            import tensorflow as tf

            with tf.init_scope():
                cpu.load()

    def choose(self, optimizer, variable):
        if keras.backend.backend() != "tensorflow":
            return None
        rule = base.speed_path_rule(optimizer)
        if rule is None:
            return None
        allowed = allowed_paths()
        dtype = keras.backend.standardize_dtype(variable.dtype)
        if (
            "kernel" in allowed
            and dtype in KERNEL_DTYPES
            and rule in cpu_updates.UPDATES
            and tf_fused.on_cpu(tf_fused.handle(variable))
            and not _keras_hooks.in_xla_context()
            and cpu.op(rule) is not None
        ):
            return "kernel", cpu_updates.UPDATES[rule]
        if "fused" in allowed and tf_fused.supports(rule, dtype):
            return "fused", tf_fused.UPDATES[rule]
        return None


ACCELERATOR = _Accelerator()
base.register_accelerator(ACCELERATOR)

__all__ = ["PATHS", "allowed_paths", "paths"]
