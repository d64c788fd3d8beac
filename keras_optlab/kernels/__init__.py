"""keras_optlab's own CPU kernels for the TensorFlow backend, built on first use.

``book_kernels.cc`` holds one TensorFlow op per update rule (Momentum, Nesterov,
AdaGrad, RMSProp, Nesterov-RMSProp, Adam). Each makes one pass over θ, g and the
slots, bit-identical to the optimizer's ``keras.ops`` rule (see the source's header).
TensorFlow's own fused kernels make up to three passes (Adam) and do not exist for
the book's RMSProp; the measured difference is in ``benchmarks/README.md``.

The shared library is compiled once per machine, TensorFlow version and source, with
TensorFlow's own flags (``tf.sysconfig``) and the C++ compiler ``$CXX`` (default
``c++``), into ``$KERAS_OPTLAB_CACHE`` (default ``~/.cache/keras_optlab``, or the temp
directory where that cannot be written); that takes
about 10 s, under a file lock so that concurrent processes build it once. Where no
compiler is found or the build fails, :func:`load` warns once and returns ``None``
and the optimizers use TensorFlow's fused kernels (or the ``keras.ops`` rule), so
nothing but speed depends on this module.

``KERAS_OPTLAB_KERNELS=0`` switches the kernels off (``=1``, the default, on).
:func:`build` builds ahead of time (``python -m keras_optlab.kernels``) and
:func:`status` says what :func:`load` found.
"""

import contextlib
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "book_kernels.cc")
ENV_SWITCH = "KERAS_OPTLAB_KERNELS"
ENV_CACHE = "KERAS_OPTLAB_CACHE"
# Without FP contraction the compiler may not fuse a*b+c into one FMA: results stay
# bit-identical to TensorFlow's separate multiply and add. -fno-math-errno lets
# sqrt vectorise (it changes no result). -march=native: the library is built on,
# and cached for, the machine that runs it (the CPU's flags are in the cache key).
OPT_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-ffp-contract=off", "-fPIC", "-shared", "-w"]

_lock = threading.Lock()
_state = {"loaded": False, "module": None, "path": None, "error": None}
# TensorFlow registers a library's ops and kernels process-wide and for good: a second
# build of the same ops (another cache path) would register every kernel twice, and TF
# then refuses to run any of them. So a process loads one library, once.
_process_library = {}


def enabled():
    """Whether ``KERAS_OPTLAB_KERNELS`` allows the kernels (default: yes)."""
    value = os.environ.get(ENV_SWITCH, "1").strip().lower()
    if value in ("0", "false", "off", "no"):
        return False
    if value in ("1", "true", "on", "yes", ""):
        return True
    raise ValueError(f"{ENV_SWITCH} must be 0 or 1. Received: {ENV_SWITCH}={value!r}")


def cache_dir():
    """Where built libraries live: ``$KERAS_OPTLAB_CACHE`` or ``~/.cache/keras_optlab``."""
    base = os.environ.get(ENV_CACHE)
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "keras_optlab")
    return os.path.join(base, "kernels")


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return line
    except OSError:
        pass
    return platform.processor()


def compiler():
    """The C++ compiler the kernels are built with: ``$CXX``, default ``c++``."""
    return os.environ.get("CXX", "c++")


def _command(tf, output):
    return [compiler(), SOURCE, "-o", output, *OPT_FLAGS, *tf.sysconfig.get_compile_flags(), *tf.sysconfig.get_link_flags()]


def _cache_key(tf):
    """A digest of the source, TensorFlow's version, the command, the compiler and the CPU."""
    with open(SOURCE, "rb") as f:
        source = f.read()
    try:
        version = subprocess.run([compiler(), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    key = hashlib.sha256()
    for part in (source, tf.__version__.encode(), " ".join(_command(tf, "")).encode(), version.encode(),
                 platform.machine().encode(), _cpu_flags().encode()):
        key.update(part)
        key.update(b"\0")
    return key.hexdigest()[:20]


def library_path(tf, base=None, key=None):
    """The cache path of the library for this source, TensorFlow, compiler and CPU."""
    return os.path.join(base or cache_dir(), key or _cache_key(tf), "book_kernels.so")


@contextlib.contextmanager
def _file_lock(path):
    try:
        import fcntl
    except ImportError:  # not POSIX: build without a lock (os.replace keeps it atomic)
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(verbose=True):
    """Compile the kernels into the cache (if not there yet); return the library path.

    Raises ``RuntimeError`` with the compiler's output when the build fails.
    """
    import tensorflow as tf

    key = _cache_key(tf)
    path = library_path(tf, key=key)
    if os.path.exists(path):
        return path
    cxx = compiler()
    if shutil.which(cxx) is None:
        raise RuntimeError(f"no C++ compiler {cxx!r} on PATH (set $CXX)")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError:  # read-only home: a per-user directory under the temp dir
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        path = library_path(tf, os.path.join(tempfile.gettempdir(), f"keras_optlab-{uid}", "kernels"), key)
        if os.path.exists(path):
            return path
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with _file_lock(path + ".lock"):
        if os.path.exists(path):  # another process built it while we waited
            return path
        if verbose:
            print(f"keras_optlab: building CPU kernels once into {os.path.dirname(path)} (~10 s)", file=sys.stderr)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(path))
        os.close(fd)
        try:
            done = subprocess.run(_command(tf, tmp), capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"building {SOURCE} failed:\n{done.stderr[-4000:]}")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return path


def load():
    """The op module of the kernels, or ``None`` (switched off, other backend, no build).

    Builds on the first call if needed. A failed build warns once; the optimizers
    then fall back to TensorFlow's fused kernels or their ``keras.ops`` rule.
    """
    if _state["loaded"]:
        return _state["module"]
    with _lock:
        if _state["loaded"]:
            return _state["module"]
        module = None
        try:
            if enabled():
                import keras

                if keras.backend.backend() == "tensorflow":
                    import tensorflow as tf

                    path = build()
                    if not _process_library:
                        _process_library[path] = tf.load_op_library(path)
                    ((path, module),) = _process_library.items()
                    _state["path"] = path
        except Exception as error:  # noqa: BLE001 — any failure means: no kernels, say why
            _state["error"] = f"{type(error).__name__}: {error}"
            warnings.warn(
                "keras_optlab: the CPU kernels are unavailable, so the optimizers use "
                f"TensorFlow's fused kernels instead ({_state['error'].splitlines()[0]}). "
                f"Set {ENV_SWITCH}=0 to skip them without this warning.",
                RuntimeWarning,
                stacklevel=2,
            )
        _state["module"] = module
        _state["loaded"] = True
        return module


def status():
    """What :func:`load` found: ``{"enabled", "loaded", "path", "error"}``."""
    return {"enabled": enabled(), "loaded": _state["module"] is not None, "path": _state["path"], "error": _state["error"]}


def _reset_for_tests():
    _state.update(loaded=False, module=None, path=None, error=None)

