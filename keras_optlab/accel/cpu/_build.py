"""Build, cache and load keras_optlab's CPU kernels (the package docstring says what and why).

Imports neither TensorFlow nor Keras at import time: both are imported when a build
or a load is asked for.
"""

import atexit
import contextlib
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "book_kernels.cc")
ENV_SWITCH = "KERAS_OPTLAB_KERNELS"
ENV_CACHE = "KERAS_OPTLAB_CACHE"
ENV_FLAGS = "KERAS_OPTLAB_CPU_FLAGS"
STATUS_COMMAND = "python -m keras_optlab.accel.cpu --status"
REBUILD_COMMAND = "python -m keras_optlab.accel.cpu --rebuild"

LIBRARY = "book_kernels.so"
BUILT = "book_kernels.json"  # which flag set built the library, and what failed before it
FAILED = "build-failed.json"  # every flag set failed: the full compiler output
BUILD_TIMEOUT = 600

# -ffp-contract=off: the compiler may not fuse a*b+c into one FMA, so results stay
# bit-identical to TensorFlow's separate multiply and add. -fno-math-errno lets sqrt
# vectorise (it changes no result). The ISA flags come from flag_sets().
COMMON_FLAGS = ["-O3", "-fno-math-errno", "-ffp-contract=off", "-fPIC", "-shared", "-w"]

# x86-64 micro-architecture levels (the psABI's), as /proc/cpuinfo names the features
# (pni = SSE3, abm = LZCNT). A library built for a level the CPU lacks compiles fine
# and then dies with SIGILL, so a level is offered only if every feature is there.
X86_64_V2 = frozenset({"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"})
X86_64_V3 = X86_64_V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
CPUINFO = "/proc/cpuinfo"

# rule -> op name in book_kernels.cc (namespaced: TF's op registry is process-wide)
RULES = {
    "momentum": "BookApplyMomentum",
    "nesterov": "BookApplyNesterov",
    "adagrad": "BookApplyAdagrad",
    "rmsprop": "BookApplyRmsprop",
    "nesterov_rmsprop": "BookApplyNesterovRmsprop",
    "adam": "BookApplyAdam",
}
NAMESPACE = "KerasOptlab"
# the op type in a graph, e.g. "KerasOptlab>BookApplyAdam"
OP_TYPES = {rule: f"{NAMESPACE}>{name}" for rule, name in RULES.items()}
# the Python function tf.load_op_library generates ('>' becomes '_', then snake case)
OP_FUNCTIONS = {rule: "keras_optlab_book_apply_" + rule for rule in RULES}

_lock = threading.Lock()
_STATE_KEYS = ("path", "flags", "error", "source", "record", "key", "tried")
_state = {"loaded": False, "module": None, **dict.fromkeys(_STATE_KEYS)}
# TensorFlow registers a library's ops and kernels process-wide and for good: a second
# build of the same ops (another cache path) would register every kernel twice, and TF
# then refuses to run any of them. So a process loads one library, once: path -> module.
_process_library = {}
_process_info = {}
_temp_root = []  # the private mkdtemp() cache of this process, if the cache is unwritable


class BuildError(RuntimeError):
    """Every flag set failed to compile. ``str()`` is the full compiler output."""

    def __init__(self, message, *, first_error, record=None, source="build", tried=()):
        super().__init__(message)
        self.first_error = first_error
        self.record = record
        self.source = source
        self.tried = list(tried)


class UnsafeCacheError(RuntimeError):
    """A cached library (or its directory) could have been written by someone else."""

    source = "unsafe"


# --------------------------------------------------------------------------- settings


def enabled():
    """Whether ``KERAS_OPTLAB_KERNELS`` allows the kernels (default: yes)."""
    value = os.environ.get(ENV_SWITCH, "1").strip().lower()
    if value in ("0", "false", "off", "no"):
        return False
    if value in ("1", "true", "on", "yes", ""):
        return True
    raise ValueError(f"{ENV_SWITCH} must be 0 or 1. Received: {ENV_SWITCH}={value!r}")


def compiler():
    """The C++ compiler the kernels are built with: ``$CXX``, default ``c++``."""
    return os.environ.get("CXX", "c++")


def missing_compiler():
    """Why there is no compiler to build with, naming what was looked for; None if there is one."""
    cxx = compiler()
    if shutil.which(cxx) is not None:
        return None
    if "CXX" in os.environ:
        where = "is not an executable file" if os.sep in cxx else "is not on PATH"
        return f"no C++ compiler: $CXX is {cxx!r}, which {where}"
    return f"no C++ compiler: $CXX is not set and {cxx!r} is not on PATH; install one (g++, clang++) or set $CXX"


def cache_dir():
    """Where built libraries live: ``$KERAS_OPTLAB_CACHE/kernels`` or ``~/.cache/keras_optlab/kernels``."""
    base = os.environ.get(ENV_CACHE)
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "keras_optlab")
    return os.path.join(base, "kernels")


def _cpu_features(path=None):
    """The CPU's feature names from /proc/cpuinfo (x86 ``flags``, ARM ``Features``), or None."""
    try:
        with open(path or CPUINFO) as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return None


def _chain_for(machine, features):
    """The flag chain for an architecture and a CPU's feature set (None: unknown)."""
    machine = machine.lower()
    if machine in ("x86_64", "amd64"):
        chain = []
        known = features or frozenset()
        if X86_64_V3 <= known:
            chain.append(["-march=x86-64-v3", "-mtune=generic"])
        if X86_64_V2 <= known:
            chain.append(["-march=x86-64-v2", "-mtune=generic"])
        return chain + [[]]
    if machine in ("aarch64", "arm64"):
        return [["-march=armv8-a"], []]
    return [[]]


def _parse_flag_sets(text):
    """``"-march=native -mno-avx512fp16; -march=x86-64-v3;"`` -> three sets, the last empty
    (no ISA flags); repeats dropped, so ``";"`` alone means: no ISA flags only."""
    chain = []
    for part in text.split(";"):
        flags = shlex.split(part)
        if flags not in chain:
            chain.append(flags)
    return chain


def flag_sets():
    """The chain of ISA flag sets tried in turn, for this machine (or ``$KERAS_OPTLAB_CPU_FLAGS``).

    x86-64: ``-march=x86-64-v3`` (AVX2, FMA, BMI2: Haswell/Zen 1 and later) and
    ``-march=x86-64-v2`` (SSE4.2), each only if the CPU has every feature of that
    level, then no ``-march`` (baseline x86-64). aarch64: ``-march=armv8-a``, then
    none. Other machines: none. ``[]`` means no ISA flags.
    """
    override = os.environ.get(ENV_FLAGS, "").strip()
    if override:
        return _parse_flag_sets(override)
    return _chain_for(platform.machine(), _cpu_features())


def describe_flags(flags):
    return " ".join(flags) if flags else "(no ISA flags)"


# --------------------------------------------------------------------------- the cache key


def _command(tf, output, flags):
    return [
        compiler(), SOURCE, "-o", output, *COMMON_FLAGS, *flags,
        *tf.sysconfig.get_compile_flags(), *tf.sysconfig.get_link_flags(),
    ]


def _compiler_version():
    try:
        done = subprocess.run([compiler(), "--version"], capture_output=True, text=True, timeout=30, check=False)
        return done.stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _cache_key(tf, chain):
    """A digest of the source, TensorFlow's version and flags, the compiler, its
    ``--version`` and the flag chain (computed once per build: it runs the compiler).
    The CPU's features count only for a ``native`` flag (the portable chain already
    depends on them through the levels it offers)."""
    with open(SOURCE, "rb") as f:
        source = f.read()
    key = hashlib.sha256()
    parts = [
        source, tf.__version__, " ".join(_command(tf, "", [])), _compiler_version(),
        json.dumps(chain), platform.machine(),
    ]
    if any("native" in flag for flags in chain for flag in flags):  # an override: the library fits this CPU only
        parts.append(" ".join(sorted(_cpu_features() or ())))
    for part in parts:
        key.update(part if isinstance(part, bytes) else part.encode())
        key.update(b"\0")
    return key.hexdigest()[:20]


# --------------------------------------------------------------------------- safety


def _current_uid():
    return os.getuid()


def _check_private(path, what):
    """Refuse ``path`` unless it is ours and nobody else can write it."""
    if not hasattr(os, "getuid"):  # not POSIX: no owners to check
        return
    info = os.stat(path)
    problems = []
    if what == "library" and not stat.S_ISREG(info.st_mode):
        problems.append("not a regular file")
    uid = _current_uid()
    if info.st_uid != uid:
        problems.append(f"owned by uid {info.st_uid}, not by this user (uid {uid})")
    if info.st_mode & 0o022:
        problems.append(f"group- or world-writable (mode {stat.S_IMODE(info.st_mode):04o})")
    if problems:
        raise UnsafeCacheError(
            f"refusing to use the kernels' {what} {path}: {'; '.join(problems)}, so another user could have "
            f"put code there. Remove it (or make it yours and `chmod go-w` it), or point {ENV_CACHE} "
            "at a private directory."
        )


def _check_cache(root, keydir, library=None):
    _check_private(root, "cache directory")
    _check_private(keydir, "cache directory")
    if library is not None:
        _check_private(library, "library")


def _makedirs_private(path):
    """``os.makedirs`` that gives every level it creates mode 0700."""
    path = os.path.abspath(path)
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for level in reversed(missing):
        try:
            os.mkdir(level, 0o700)
        except FileExistsError:
            if not os.path.isdir(level):
                raise
            continue  # made meanwhile by another process: _check_cache judges it
        os.chmod(level, 0o700)  # whatever the umask


def _private_temp_root():
    """This process's own cache (``tempfile.mkdtemp``: mode 0700, unpredictable name)."""
    if not _temp_root:
        root = tempfile.mkdtemp(prefix="keras_optlab-kernels-")
        atexit.register(shutil.rmtree, root, True)
        _temp_root.append(root)
    return _temp_root[0]


@contextlib.contextmanager
def _file_lock(path):
    try:
        import fcntl
    except ImportError:  # not POSIX: build without a lock (os.replace keeps it atomic)
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _write_json(path, data):
    fd, tmp = tempfile.mkstemp(suffix=".json", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _read_json(path):
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- the build

_ERROR_LINE = re.compile(r"(^|\s|:)(fatal )?error:", re.IGNORECASE)


def _short_location(line):
    """``.../site-packages/tensorflow/include/x/../y.h:7:1: error: ...`` -> ``tensorflow/include/y.h:7:1: ...``."""
    match = re.match(r"(/[^:\s]+)(:\d+.*)", line)
    if not match:
        return line
    path = os.path.normpath(match.group(1))
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return path + match.group(2)


def first_error(output, returncode=None):
    """The compiler's first ``error:`` line (else its first line, else the exit status)."""
    lines = [line.strip() for line in (output or "").splitlines() if line.strip()]
    for line in lines:
        if _ERROR_LINE.search(line) and not line.startswith("collect2"):
            return _short_location(line)
    for line in lines:
        if not line.startswith(("In file included from", "from ")):
            return line
    return f"exit status {returncode}" if returncode is not None else "no output"


def _failure_text(record):
    """The full text of a failure record: summary, then each command and its output."""
    attempts = record.get("attempts", [])
    lines = [
        f"building {SOURCE} failed with every flag set of the chain "
        f"({' | '.join(describe_flags(a['flags']) for a in attempts)}); first error: {record['first_error']}",
        f"Recorded in {record.get('record')}: not retried until the source, TensorFlow, the compiler or "
        f"the flags change; `{REBUILD_COMMAND}` retries now.",
    ]
    for attempt in attempts:
        lines += ["", f"$ {shlex.join(attempt['command'])}", f"(exit status {attempt['returncode']} after "
                  f"{attempt['seconds']} s)", attempt["output"].rstrip()]
    return "\n".join(lines)


def _error_from_record(record, source):
    tried = [_summary(a) for a in record.get("attempts", [])]
    return BuildError(_failure_text(record), first_error=record["first_error"], record=record.get("record"),
                      source=source, tried=tried)


def _summary(attempt):
    return {
        "flags": attempt["flags"], "returncode": attempt["returncode"], "seconds": attempt["seconds"],
        "error": first_error(attempt["output"], attempt["returncode"]) if attempt["returncode"] != 0 else None,
    }


def _cached(root, keydir):
    """The cached library's info, None if nothing is cached; raises a recorded failure."""
    if not os.path.isdir(keydir):
        return None
    library = os.path.join(keydir, LIBRARY)
    if os.path.exists(library):
        _check_cache(root, keydir, library)
        built = _read_json(os.path.join(keydir, BUILT)) or {}
        return {"path": library, "flags": built.get("flags"), "tried": built.get("tried", []),
                "record": None, "error": None, "source": None}
    record = _read_json(os.path.join(keydir, FAILED))
    if record is not None and "first_error" in record:
        _check_cache(root, keydir)
        raise _error_from_record(record, source="cache")
    return None


def _compile(tf, keydir, chain, key, verbose):
    attempts = []
    library = os.path.join(keydir, LIBRARY)
    for i, flags in enumerate(chain):
        if verbose:
            print(f"keras_optlab: building CPU kernels once into {keydir} with {describe_flags(flags)} (~15 s)",
                  file=sys.stderr)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=keydir)
        os.close(fd)
        try:
            command = _command(tf, tmp, flags)
            start = time.monotonic()
            try:
                done = subprocess.run(command, capture_output=True, text=True, errors="replace",
                                      timeout=BUILD_TIMEOUT, check=False)
                returncode, output = done.returncode, done.stdout + done.stderr
            except subprocess.TimeoutExpired:
                returncode, output = -1, f"error: the compiler ran past {BUILD_TIMEOUT} s and was stopped"
            except OSError as error:
                returncode, output = -1, f"error: cannot run the compiler: {error}"
            attempt = {"flags": flags, "command": _command(tf, library, flags), "returncode": returncode,
                       "seconds": round(time.monotonic() - start, 1), "output": output}
            attempts.append(attempt)
            if returncode == 0 and os.path.getsize(tmp) > 0:
                os.chmod(tmp, 0o700)  # the linker's mode follows the umask (0775 under 002)
                tried = [_summary(a) for a in attempts]
                _write_json(os.path.join(keydir, BUILT), {"key": key, "flags": flags, "tried": tried,
                                                          "built": time.time()})
                os.replace(tmp, library)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(keydir, FAILED))
                return {"path": library, "flags": flags, "tried": tried, "record": None, "error": None,
                        "source": None}
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        if verbose and i + 1 < len(chain):
            print(f"keras_optlab: the build with {describe_flags(flags)} failed ({first_error(output, returncode)}); "
                  "trying the next flag set", file=sys.stderr)
    record_path = os.path.join(keydir, FAILED)
    record = {
        "key": key, "record": record_path, "source": SOURCE, "tensorflow": tf.__version__, "compiler": compiler(),
        # the first set's error says most (the later sets are fallbacks)
        "first_error": first_error(attempts[0]["output"], attempts[0]["returncode"]),
        "attempts": attempts, "failed": time.time(),
    }
    _write_json(record_path, record)
    raise _error_from_record(record, source="build")


def _build(verbose=True, force=False):
    """:func:`build`, returning the info dict (path, flags, tried, key, ...)."""
    import tensorflow as tf

    chain = flag_sets()
    if not chain:
        raise RuntimeError(f"{ENV_FLAGS} names no flag set")
    key = _cache_key(tf, chain)  # once per build: it runs the compiler
    root = cache_dir()
    keydir = os.path.join(root, key)
    if not force:
        found = _cached(root, keydir)
        if found is not None:
            return dict(found, key=key)
    missing = missing_compiler()
    if missing:
        raise RuntimeError(missing)
    try:
        _makedirs_private(keydir)
        if not os.access(keydir, os.W_OK | os.X_OK):
            raise PermissionError(f"{keydir} is not writable")
        _check_cache(root, keydir)
    except OSError as error:  # read-only or blocked cache: a private directory of this process
        root = _private_temp_root()
        keydir = os.path.join(root, key)
        _makedirs_private(keydir)
        if verbose:
            print(f"keras_optlab: cannot write the kernel cache {cache_dir()} ({error}); building into "
                  f"{root} for this process only (set {ENV_CACHE} to a writable directory)", file=sys.stderr)
    with _file_lock(os.path.join(keydir, ".lock")):
        if not force:
            found = _cached(root, keydir)  # another process built it while we waited
            if found is not None:
                return dict(found, key=key)
        return dict(_compile(tf, keydir, chain, key, verbose), key=key)


def build(verbose=True, force=False):
    """Compile the kernels into the cache (if not there yet); return the library path.

    Tries the flag sets of :func:`flag_sets` in turn. Raises ``RuntimeError`` when
    there is no compiler, when the cached library is not safe to load, or when every
    flag set fails (then its message is the full compiler output, and the failure is
    recorded so that later calls raise it again at once). ``force=True`` ignores both
    a recorded failure and a built library, and compiles again.
    """
    return _build(verbose=verbose, force=force)["path"]


# --------------------------------------------------------------------------- load


INTERNAL_PACKAGES = ("keras_optlab", "keras", "tensorflow", "tf_keras")


def _internal_prefixes():
    """(package directories, standard-library directories), normalised, ending in a separator."""

    def norm(location):
        return os.path.normcase(os.path.abspath(location)).rstrip(os.sep) + os.sep

    packages = []
    for name in INTERNAL_PACKAGES:
        for location in getattr(sys.modules.get(name), "__path__", None) or ():
            packages.append(norm(location))
    paths = sysconfig.get_paths()
    stdlib = [norm(paths[k]) for k in ("stdlib", "platstdlib") if paths.get(k)]
    return tuple(packages), tuple(stdlib)


def _is_internal(filename, prefixes):
    if filename.startswith("<frozen") or "__autograph_generated_file" in filename:
        return True  # importlib; code AutoGraph converted (keras's, ours, the user's: its caller says more)
    packages, stdlib = prefixes
    normalized = os.path.normcase(os.path.abspath(filename))
    if normalized.startswith(packages):
        return True
    for prefix in stdlib:  # the standard library, but not the packages installed under it
        if normalized.startswith(prefix):
            rest = normalized[len(prefix):]
            return not rest.startswith(("site-packages", "dist-packages"))
    return False


def user_stacklevel():
    """The ``stacklevel`` for ``warnings.warn`` called by our caller that names the
    first frame outside keras_optlab, Keras, TensorFlow and the standard library:
    the user's line (Python 3.11 has no ``skip_file_prefixes``)."""
    prefixes = _internal_prefixes()
    frame = sys._getframe(1)  # the frame that calls warnings.warn: stacklevel 1
    level = 1
    while frame is not None:
        if not _is_internal(frame.f_code.co_filename, prefixes):
            return level
        frame = frame.f_back
        level += 1
    return 2


def _warning_text(error):
    if isinstance(error, BuildError):
        reason = error.first_error
        if error.source == "cache":
            reason += (" (recorded by an earlier build: not retried until the source, TensorFlow, the compiler "
                       "or the flags change)")
    else:
        reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    return (
        "keras_optlab: the CPU kernels are unavailable, so the optimizers use TensorFlow's fused kernels or "
        f"their keras.ops rule instead. Reason: {reason}. `{STATUS_COMMAND}` prints the full compiler output "
        f"and the flags tried; `{REBUILD_COMMAND}` retries. Set {ENV_SWITCH}=0 to skip the kernels without "
        "this warning."
    )


def load():
    """The op module of the kernels, or ``None`` (switched off, other backend, no build).

    Builds on the first call if needed. A failure warns once, attributed to the
    first caller outside keras_optlab, Keras and TensorFlow; the optimizers then fall
    back to TensorFlow's fused kernels or their ``keras.ops`` rule.
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

                    if not _process_library:
                        info = _build(verbose=True)
                        _process_library[info["path"]] = tf.load_op_library(info["path"])
                        _process_info[info["path"]] = info
                    ((path, module),) = _process_library.items()
                    _state.update({k: _process_info[path].get(k) for k in _STATE_KEYS})
        except Exception as error:  # noqa: BLE001 — any failure means: no kernels, say why
            module = None
            _state.update(
                error=str(error) if isinstance(error, BuildError) else f"{type(error).__name__}: {error}",
                source=getattr(error, "source", "load"),
                record=getattr(error, "record", None),
                tried=getattr(error, "tried", None),
            )
            warnings.warn(_warning_text(error), RuntimeWarning, stacklevel=user_stacklevel())
        _state["module"] = module
        _state["loaded"] = True
        return module


def op(rule):
    """The Python function of ``rule``'s op (e.g. ``op("adam")`` is
    ``keras_optlab_book_apply_adam``), or ``None`` when the kernels are not loaded.

    Loads the kernels on the first call (see :func:`load`).
    """
    if rule not in OP_FUNCTIONS:
        raise ValueError(f"rule must be one of {', '.join(sorted(OP_FUNCTIONS))}. Received: rule={rule!r}")
    if _state["loaded"]:
        module = _state["module"]
    else:
        tf = sys.modules.get("tensorflow")
        # called in a trace: keep AutoGraph from converting the loader
        module = tf.autograph.experimental.do_not_convert(load)() if tf is not None else load()
    return None if module is None else getattr(module, OP_FUNCTIONS[rule])


# --------------------------------------------------------------------------- status


def _inspect():
    """What the cache holds for this process's key, without building."""
    out = {}
    try:
        import tensorflow as tf
    except ImportError:
        return {"error": "TensorFlow is not installed", "source": "load"}
    chain = flag_sets()
    out["key"] = key = _cache_key(tf, chain)
    root = cache_dir()
    for where in [root] + list(_temp_root):
        try:
            found = _cached(where, os.path.join(where, key))
        except BuildError as error:
            return dict(out, error=str(error), source="cache", record=error.record, tried=error.tried)
        except UnsafeCacheError as error:
            return dict(out, error=f"UnsafeCacheError: {error}", source="unsafe")
        if found is not None:
            return dict(out, **found)
    return out


def _reason(info):
    """One line: why ``info`` (a :func:`status`) has no library."""
    if info.get("error"):  # a failed or recorded build, a refused cache, a bad switch...
        return info["error"].strip().splitlines()[0]
    if not info["enabled"]:
        return f"switched off by {ENV_SWITCH}=0"
    if _state["loaded"]:  # load() ran and found nothing to load, without an error
        return "not loaded in this process: the Keras backend is not TensorFlow"
    return missing_compiler() or (
        "not built yet: the first optimizer built on the TensorFlow backend builds it, or "
        "`python -m keras_optlab.accel.cpu` now"
    )


def status():
    """What :func:`load` found, or, before it ran, what the cache holds (nothing is built).

    Keys: ``enabled``, ``loaded``, ``path`` (the library), ``flags`` (the set that
    built it), ``error`` (the full text: with a failed build, every command and its
    compiler output), ``source`` (of the error: ``"build"`` this process, ``"cache"``
    a failure recorded by an earlier process, ``"unsafe"`` a refused cache, ``"load"``
    anything else), ``record`` (the failure record's path), ``tried`` (each flag set
    tried: exit status, seconds, first error), ``key``, ``compiler``, ``flag_sets``,
    ``cache_dir``, ``reason`` (one line: why there is no library — no compiler, naming the
    ``$CXX`` or ``c++`` looked for; the failure's first line; not built yet; switched
    off — None with one).
    """
    try:
        on = enabled()
        switch_error = None
    except ValueError as error:
        on, switch_error = False, f"ValueError: {error}"
    out = {"enabled": on, "loaded": _state["module"] is not None, **dict.fromkeys(_STATE_KEYS)}
    out.update(compiler=compiler(), flag_sets=flag_sets(), cache_dir=cache_dir())
    if _state["loaded"]:
        out.update({k: _state[k] for k in _STATE_KEYS})
    elif switch_error:
        out.update(error=switch_error, source="load")
    elif on:
        out.update(_inspect())
    out["reason"] = None if out["path"] else _reason(out)
    return out


def _reset_for_tests():
    _state.update(loaded=False, module=None, **dict.fromkeys(_STATE_KEYS))
