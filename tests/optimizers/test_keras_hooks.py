"""The private Keras hooks (keras_optlab/_keras_hooks.py) exist, are called,
and are touched nowhere else.

If Keras renames or stops calling a hooked method, adaptive clipping and the telemetry
would stop without a word; these tests make that loud. They run on every Keras
version CI installs (the one pinned by pyproject.toml's range) and on each backend.
"""

import ast
import pathlib

import keras
import numpy as np
import pytest

import keras_optlab as ko
from keras_optlab import _keras_hooks
from tests.optimizers.cases import NAMES, OPTIMIZERS

PACKAGE = pathlib.Path(ko.__file__).parent
HOOKS_FILE = PACKAGE / "_keras_hooks.py"
# Names that only _keras_hooks.py may use (private Keras optimizer/model internals).
PRIVATE_KERAS_NAMES = {
    "_backend_apply_gradients",
    "_clip_gradients",
    "_distributed_tf_update_step",
    "_trainable_variables",
    "_get_variable_index",
    "_iterations",
    "train_function",
}

CLIPPING = {
    "clipnorm": dict(clipnorm=1.0),
    "clipvalue": dict(clipvalue=0.5),
    "global_clipnorm": dict(global_clipnorm=1.0),
    "adaptive_clipnorm": dict(adaptive_clipnorm=0.01),
}


@pytest.mark.backend_agnostic
def test_every_hooked_method_exists_in_this_keras():
    _keras_hooks.check_hooks()  # raises ImportError naming what is missing


@pytest.mark.backend_agnostic
def test_a_missing_hook_fails_loudly(monkeypatch):
    """A Keras without one of the hooked methods: an ImportError naming it."""

    class RenamedKeras:  # stands for keras.optimizers.Optimizer after a rename
        def _clip_gradients_v2(self, grads):
            return grads

    monkeypatch.setattr(_keras_hooks, "HOOKED_METHODS", ((RenamedKeras, "_clip_gradients", None),))
    with pytest.raises(ImportError, match="RenamedKeras._clip_gradients"):
        _keras_hooks.check_hooks()


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("clip", sorted(CLIPPING))
@pytest.mark.parametrize("name", NAMES)
def test_clipping_hook_is_called_in_apply(name, clip):
    """A large gradient is clipped: Keras called our ``_clip_gradients`` (telemetry moved)."""
    opt = OPTIMIZERS[name](**CLIPPING[clip])
    var = keras.Variable(np.ones((3, 2)), dtype="float32")
    g = np.full((3, 2), 10.0, "float32")
    opt.apply([keras.ops.convert_to_tensor(g)], [var])
    assert int(keras.ops.convert_to_numpy(opt.clipped_steps)) == 1
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(opt.gradient_norm)), np.linalg.norm(g), rtol=1e-6)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", NAMES)
def test_clipping_hook_is_called_in_fit(name):
    """The same through ``fit``, i.e. through each backend's own training step."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=OPTIMIZERS[name](global_clipnorm=1e-3), loss="mse")
    x = np.ones((8, 4), "float32")
    model.fit(x, 100.0 * np.ones((8, 1), "float32"), batch_size=8, epochs=2, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.clipped_steps)) == 2
    assert float(keras.ops.convert_to_numpy(model.optimizer.gradient_norm)) > 1e-3


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("clip", ["clipnorm", "clipvalue", "global_clipnorm"])
def test_clip_gradients_on_an_unbuilt_optimizer(clip):
    """Keras' generic clipping tests call ``optimizer._clip_gradients(grads)`` before
    any step: the math works, and nothing is recorded before the telemetry exists."""
    opt = ko.SGD(**CLIPPING[clip])
    (clipped,) = opt._clip_gradients([keras.ops.convert_to_tensor(np.array([3.0, 4.0], "float32"))])
    want = {"clipnorm": [0.6, 0.8], "clipvalue": [0.5, 0.5], "global_clipnorm": [0.6, 0.8]}[clip]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clipped), want, rtol=1e-6)
    assert opt.clipped_steps is None and opt.gradient_norm is None


@pytest.mark.backend_agnostic
def test_adaptive_clipping_outside_a_step_says_why():
    opt = ko.SGD(adaptive_clipnorm=0.1)
    with pytest.raises(ValueError, match="adaptive_clipnorm"):
        opt._clip_gradients([keras.ops.ones((2,))])


def _private_uses(path):
    """(line, name) of every private Keras name and ``tensorflow.python`` import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE_KERAS_NAMES:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("tensorflow.python", "keras.src")):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith(("tensorflow.python", "keras.src"))]
    return found


def test_private_keras_is_touched_only_in_the_hooks_module():
    offenders = {
        str(path.relative_to(PACKAGE)): uses
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != HOOKS_FILE and (uses := _private_uses(path))
    }
    assert offenders == {}, offenders


def test_the_scan_sees_the_hooks_module():
    """The scan above can fail: it finds the hooks where they are."""
    names = {name for _, name in _private_uses(HOOKS_FILE)}
    assert {"_trainable_variables", "_get_variable_index", "train_function", "tensorflow.python.ops"} <= names
