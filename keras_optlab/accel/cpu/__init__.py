"""keras_optlab's own CPU kernels for the TensorFlow backend, built on first use.

``book_kernels.cc`` holds one TensorFlow op per update rule (Momentum, Nesterov,
AdaGrad, RMSProp, Nesterov-RMSProp, Adam). Each makes one pass over θ, g and the
slots, bit-identical to the optimizer's ``keras.ops`` rule (see the source's header).
TensorFlow's own fused kernels make up to three passes (Adam) and do not exist for
the book's RMSProp; the measured difference is in ``benchmarks/README.md``.

API (the rest of keras_optlab calls only these):

* :func:`op` — ``op("adam")`` is the Python function of the op
  ``KerasOptlab>BookApplyAdam`` (``keras_optlab_book_apply_adam``; rules: momentum,
  nesterov, adagrad, rmsprop, nesterov_rmsprop, adam), or ``None`` without kernels;
* :func:`load` — the op module (building it if needed), or ``None``: switched off,
  another backend, no compiler, a failed or refused build. It warns once, naming the
  compiler's first error line, attributed to the caller's line;
* :func:`build` — compile now (if not cached) and return the library's path, or
  raise ``RuntimeError`` carrying the full compiler output;
* :func:`status` — what :func:`load` found (or, before it ran, what the cache
  holds): ``enabled``, ``loaded``, ``path``, ``flags`` (the set that built), ``error``
  (the full text), ``source`` (``"build"``, ``"cache"``: a failure recorded by an
  earlier process, ``"unsafe"``, ``"load"``), ``record``, ``tried``, ...;
* :func:`enabled`, :func:`compiler`, :func:`cache_dir`, :func:`flag_sets`.

Build. The library is compiled with TensorFlow's own flags (``tf.sysconfig``), the
C++ compiler ``$CXX`` (default ``c++``), ``-O3 -fno-math-errno -ffp-contract=off``
(no FMA contraction: bit-exactness) and the first flag set of a portable chain that
this CPU runs (:func:`flag_sets`; x86-64: ``-march=x86-64-v3``, ``-march=x86-64-v2``,
no ``-march``; aarch64: ``-march=armv8-a``, none). A set that fails to compile makes
way for the next. No ``-march=native``: on CPUs with AVX512-FP16 it breaks
TensorFlow's bundled Eigen with g++ 12, and it buys at most ~5% (Adam, Zen 4, within
the noise) on these memory-bound loops (``benchmarks/README.md``, "CPU kernel build
flags").

Cache. ``$KERAS_OPTLAB_CACHE/kernels/<key>/`` (default ``~/.cache/keras_optlab``),
``<key>`` a digest of the source, TensorFlow's version and flags, the compiler and
its ``--version``, and the flag chain (and the CPU's features if a flag says
``native``). Directories we create are mode 0700; a library is loaded only if it,
its directory and the cache root are owned by this user and not group- or
world-writable (otherwise: refused, no kernels). Where the
cache cannot be written, the build goes to a private ``tempfile.mkdtemp()``
directory for this process only. A file lock makes concurrent processes build once.
A build that fails with every flag set is recorded there (``build-failed.json``) and
not retried until the key changes; ``python -m keras_optlab.accel.cpu --status``
prints the full compiler output and the flags tried, ``--rebuild`` retries.

Environment. ``KERAS_OPTLAB_KERNELS=0`` switches the kernels off (``=1``, the
default, on). ``KERAS_OPTLAB_CACHE`` moves the cache. ``KERAS_OPTLAB_CPU_FLAGS``
replaces the flag chain: flag sets separated by ``;``, an empty set meaning no ISA
flags, e.g. ``"-march=native -mno-avx512fp16; -march=x86-64-v3;"`` (``";"`` alone: no
ISA flags at all). Its ISA is not checked against the CPU: that is the caller's
business.
"""

from keras_optlab.accel.cpu._build import (
    ENV_CACHE,
    ENV_FLAGS,
    ENV_SWITCH,
    OP_FUNCTIONS,
    OP_TYPES,
    RULES,
    SOURCE,
    STATUS_COMMAND,
    build,
    cache_dir,
    compiler,
    enabled,
    flag_sets,
    load,
    op,
    status,
)

__all__ = [
    "ENV_CACHE",
    "ENV_FLAGS",
    "ENV_SWITCH",
    "OP_FUNCTIONS",
    "OP_TYPES",
    "RULES",
    "SOURCE",
    "STATUS_COMMAND",
    "build",
    "cache_dir",
    "compiler",
    "enabled",
    "flag_sets",
    "load",
    "op",
    "status",
]
