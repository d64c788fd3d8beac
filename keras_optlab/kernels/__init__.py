"""Backwards-compatible alias: the CPU kernels' new home is :mod:`keras_optlab.accel.cpu`.

Everything here is re-exported from there (``enabled``, ``compiler``, ``cache_dir``,
``flag_sets``, ``build``, ``status``, ``op``), and ``python -m keras_optlab.kernels``
does what ``python -m keras_optlab.accel.cpu`` does. The one difference: :func:`load`
returns the op module with the pre-namespace function names (``book_apply_adam``, ...)
as aliases of the generated ones (``keras_optlab_book_apply_adam``, ...), for callers
written before the ops were namespaced (``KerasOptlab>BookApplyAdam``). New code
should call ``keras_optlab.accel.cpu.op(rule)``.
"""

import types

from keras_optlab.accel.cpu import (  # noqa: F401 — re-exported
    ENV_CACHE,
    ENV_FLAGS,
    ENV_SWITCH,
    OP_FUNCTIONS,
    OP_TYPES,
    RULES,
    SOURCE,
    build,
    cache_dir,
    compiler,
    enabled,
    flag_sets,
    op,
    status,
)
from keras_optlab.accel.cpu import load as _load

_compat = {}


class _OpsWithOldNames(types.ModuleType):
    """The loaded op module, plus ``book_apply_<rule>`` for ``keras_optlab_book_apply_<rule>``."""

    def __init__(self, ops):
        super().__init__(ops.__name__, "keras_optlab's CPU kernels (old names kept as aliases)")
        self._ops = ops
        for rule, name in OP_FUNCTIONS.items():
            setattr(self, "book_apply_" + rule, getattr(ops, name))

    def __getattr__(self, name):
        return getattr(self._ops, name)


def load():
    """:func:`keras_optlab.accel.cpu.load`, with the old op-function names as aliases."""
    ops = _load()
    if ops is None:
        return None
    if id(ops) not in _compat:
        _compat[id(ops)] = _OpsWithOldNames(ops)
    return _compat[id(ops)]
