"""keras_optlab.accel.cpu: the build, its cache and the loader of the CPU kernels.

The flag chain (ISA levels read from a fake /proc/cpuinfo, the fallback past a flag
set that does not compile), the failure record (a failed build is not retried: a fake
``$CXX`` counts its calls), the status and its command line, the warning (its text
and the line it names), the private cache (modes, owners, the mkdtemp fallback) and
the namespaced op names of the real library.

Most tests run a fake compiler (a shell script that logs its arguments and writes a
dummy library or fails), so they take milliseconds; those that need the real library
fail, not skip, when a compiler is there and the build fails, and skip only when
there is no compiler at all. Real compiles and fresh processes are marked slow.
"""

import os
import platform
import runpy
import shutil
import stat
import subprocess
import sys
import tempfile
import warnings

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow CPU kernels")

tf = pytest.importorskip("tensorflow")

import keras_optlab as ko  # noqa: E402
from keras_optlab import kernels  # noqa: E402
from keras_optlab.accel import cpu  # noqa: E402
from keras_optlab.accel.cpu import _build  # noqa: E402
from keras_optlab.accel.cpu.__main__ import main as cpu_main  # noqa: E402

HAS_COMPILER = shutil.which(cpu.compiler()) is not None
needs_compiler = pytest.mark.skipif(not HAS_COMPILER, reason="no C++ compiler to build the kernels")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
V3 = ["-march=x86-64-v3", "-mtune=generic"]
V2 = ["-march=x86-64-v2", "-mtune=generic"]

# A Zen 4's flags (AVX-512, no FP16), a Nehalem's (SSE4.2, no AVX) and a Core 2's (no SSE4.2).
ZEN4 = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht "
    "syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl cpuid extd_apicid pni pclmulqdq "
    "ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm "
    "cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext perfctr_core invpcid_single ssbd "
    "ibrs ibpb stibp vmmcall fsgsbase bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap "
    "avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx512_bf16 "
    "clzero xsaveerptr wbnoinvd arat avx512vbmi umip pku ospke avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni "
    "avx512_bitalg avx512_vpopcntdq rdpid fsrm"
)
NEHALEM = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse "
    "sse2 ss ht tm pbe syscall nx rdtscp lm constant_tsc arch_perfmon pebs bts rep_good nopl xtopology "
    "nonstop_tsc cpuid aperfmperf pni dtes64 monitor ds_cpl vmx est tm2 ssse3 cx16 xtpr pdcm sse4_1 sse4_2 "
    "popcnt lahf_lm pti tpr_shadow vnmi flexpriority ept vpid dtherm ida"
)
CORE2 = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 pni ssse3 cx16 lahf_lm lm"

# The fake compiler: logs each call; --version prints a version; fails (like g++:
# include chain on stdout, the error on stderr) when an argument is one of
# $FAKE_CXX_FAIL (or always for ALL); otherwise writes a dummy library to -o.
FAKE_CXX = r"""#!/bin/bash
echo "$*" >> "$FAKE_CXX_LOG"
if [ "$1" = "--version" ]; then echo "fake-c++ (test) 1.0"; exit 0; fi
out=""; prev=""
for a in "$@"; do
  if [ "$prev" = "-o" ]; then out="$a"; fi
  prev="$a"
  for bad in $FAKE_CXX_FAIL; do
    if [ "$bad" = ALL ] || [ "$bad" = "$a" ]; then
      echo "In file included from /fake/include/Eigen/Core:222,"
      echo "/fake/include/Eigen/src/Core/arch/AVX512/PacketMathFP16.h:740:49: error: expected initializer before '<' token (fake)" >&2
      echo "compilation terminated." >&2
      exit 1
    fi
  done
done
printf 'not really a library' > "$out"
"""


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty cache, a reset loader and no library of this process; restores all afterwards."""
    saved = dict(_build._state)
    monkeypatch.setattr(_build, "_process_library", {})
    monkeypatch.setattr(_build, "_process_info", {})
    monkeypatch.setattr(_build, "_temp_root", [])
    _build._reset_for_tests()
    for name in ("KERAS_OPTLAB_CPU_FLAGS", "KERAS_OPTLAB_KERNELS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KERAS_OPTLAB_CACHE", str(tmp_path / "cache"))
    yield tmp_path / "cache"
    for root in _build._temp_root:
        shutil.rmtree(root, ignore_errors=True)
    _build._state.clear()
    _build._state.update(saved)


class FakeCompiler:
    def __init__(self, tmp_path, monkeypatch):
        self.log = tmp_path / "cxx.log"
        self.path = tmp_path / "fake-c++"
        self.path.write_text(FAKE_CXX)
        self.path.chmod(0o755)
        self._monkeypatch = monkeypatch
        monkeypatch.setenv("CXX", str(self.path))
        monkeypatch.setenv("FAKE_CXX_LOG", str(self.log))
        monkeypatch.setenv("FAKE_CXX_FAIL", "")

    def fail(self, *flags):
        self._monkeypatch.setenv("FAKE_CXX_FAIL", " ".join(flags))

    def compiles(self):
        """The argument lists of the compile calls so far (not --version)."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [line.split() for line in lines if line != "--version"]


@pytest.fixture
def fake_cxx(fresh, tmp_path, monkeypatch):
    return FakeCompiler(tmp_path, monkeypatch)


def set_chain(monkeypatch, *sets):
    monkeypatch.setenv("KERAS_OPTLAB_CPU_FLAGS", ";".join(" ".join(s) for s in sets))


def march(args):
    return [a for a in args if a.startswith("-march")]


@pytest.fixture(scope="module")
def real_kernels():
    """The real library, built in the default cache: a failed build FAILS the test."""
    if not HAS_COMPILER:
        pytest.skip("no C++ compiler to build the kernels")
    module = cpu.load()
    assert module is not None, cpu.status()["error"]
    return module


# --------------------------------------------------------------------------- the flag chain


@pytest.mark.parametrize(
    "flags, chain",
    [(ZEN4, [V3, V2, []]), (NEHALEM, [V2, []]), (CORE2, [[]]), (None, [[]])],
    ids=["zen4", "nehalem", "core2", "unreadable"],
)
def test_the_x86_chain_offers_only_levels_the_cpu_runs(flags, chain, tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    if flags is not None:
        cpuinfo.write_text(f"processor\t: 0\nvendor_id\t: Fake\nflags\t\t: {flags}\nbugs\t\t: none\n\n"
                           f"processor\t: 1\nflags\t\t: {flags}\n")
    monkeypatch.setattr(_build, "CPUINFO", str(cpuinfo))
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.delenv("KERAS_OPTLAB_CPU_FLAGS", raising=False)
    assert cpu.flag_sets() == chain
    assert not any("native" in f for s in chain for f in s)


def test_other_machines_and_the_override(monkeypatch):
    assert _build._chain_for("aarch64", frozenset({"fp", "asimd"})) == [["-march=armv8-a"], []]
    assert _build._chain_for("arm64", None) == [["-march=armv8-a"], []]
    assert _build._chain_for("ppc64le", None) == [[]]
    monkeypatch.setenv("KERAS_OPTLAB_CPU_FLAGS", "-march=native -mno-avx512fp16; -march=x86-64-v3 ;")
    assert cpu.flag_sets() == [["-march=native", "-mno-avx512fp16"], ["-march=x86-64-v3"], []]
    monkeypatch.setenv("KERAS_OPTLAB_CPU_FLAGS", ";")
    assert cpu.flag_sets() == [[]]


def test_this_machines_chain_matches_its_cpu(monkeypatch):
    monkeypatch.delenv("KERAS_OPTLAB_CPU_FLAGS", raising=False)
    features = _build._cpu_features() or frozenset()
    chain = cpu.flag_sets()
    assert chain[-1] == []
    if platform.machine() == "x86_64":
        assert (chain[0] == V3) == ("avx2" in features and "fma" in features and "bmi2" in features)


def test_a_failing_flag_set_makes_way_for_the_next(fake_cxx, monkeypatch):
    set_chain(monkeypatch, ["-march=sapphirerapids"], V3, [])
    fake_cxx.fail("-march=sapphirerapids")
    path = cpu.build(verbose=False)
    assert [march(c) for c in fake_cxx.compiles()] == [["-march=sapphirerapids"], ["-march=x86-64-v3"]]
    assert all("-ffp-contract=off" in c and "-O3" in c and "-march=native" not in c for c in fake_cxx.compiles())
    assert os.path.basename(path) == "book_kernels.so" and os.path.exists(path)
    info = cpu.status()
    assert info["path"] == path and info["flags"] == V3 and info["error"] is None
    assert [t["returncode"] for t in info["tried"]] == [1, 0]
    assert "PacketMathFP16.h:740:49: error: expected initializer" in info["tried"][0]["error"]
    assert cpu.build(verbose=False) == path and len(fake_cxx.compiles()) == 2  # cached now


# --------------------------------------------------------------------------- the failure record


def test_a_failed_build_is_recorded_and_not_retried(fake_cxx, monkeypatch):
    set_chain(monkeypatch, V3, V2)
    fake_cxx.fail("ALL")
    with pytest.raises(RuntimeError) as first:
        cpu.build(verbose=False)
    assert len(fake_cxx.compiles()) == 2  # both flag sets tried once
    text = str(first.value)
    # the full output of every attempt: the commands, the include chain and the errors
    assert text.count("$ ") == 2 and "-march=x86-64-v3" in text and "-march=x86-64-v2" in text
    assert "In file included from /fake/include/Eigen/Core:222" in text and "compilation terminated." in text
    record = first.value.record
    assert os.path.basename(record) == "build-failed.json"
    assert os.path.exists(record) and stat.S_IMODE(os.stat(record).st_mode) & 0o077 == 0

    for _ in range(3):  # later calls, and later processes (a reset loader), don't compile again
        with pytest.raises(RuntimeError, match="recorded|Recorded"):
            cpu.build(verbose=False)
    _build._reset_for_tests()
    with pytest.warns(RuntimeWarning, match="not retried"):
        assert cpu.load() is None
    assert len(fake_cxx.compiles()) == 2
    info = cpu.status()
    assert info["source"] == "cache" and info["error"] == text and info["record"] == record
    assert [t["flags"] for t in info["tried"]] == [V3, V2]

    set_chain(monkeypatch, V2)  # another chain is another key: built again
    with pytest.raises(RuntimeError):
        cpu.build(verbose=False)
    assert len(fake_cxx.compiles()) == 3
    set_chain(monkeypatch, V3, V2)
    fake_cxx.fail()  # the compiler is fixed, but nothing says so: --rebuild
    with pytest.raises(RuntimeError):
        cpu.build(verbose=False)
    assert len(fake_cxx.compiles()) == 3
    assert cpu.build(verbose=False, force=True).endswith("book_kernels.so")
    assert len(fake_cxx.compiles()) == 4 and not os.path.exists(record)


def test_a_new_compiler_version_or_source_is_a_new_key(fake_cxx, monkeypatch):
    keys = {_build._cache_key(tf, [V3])}
    fake_cxx.path.write_text(FAKE_CXX.replace("1.0", "2.0"))
    keys.add(_build._cache_key(tf, [V3]))
    keys.add(_build._cache_key(tf, [V2]))
    assert len(keys) == 3
    native = _build._cache_key(tf, [["-march=native"]])
    monkeypatch.setattr(_build, "_cpu_features", lambda path=None: frozenset({"sse2", "avx2"}))
    assert _build._cache_key(tf, [["-march=native"]]) != native  # a native build fits one CPU only
    assert _build._cache_key(tf, [V2]) in keys  # the portable chain does not depend on the rest


def test_status_and_the_command_line_show_the_full_error(fake_cxx, monkeypatch, capsys):
    set_chain(monkeypatch, ["-march=sapphirerapids"], V3)
    fake_cxx.fail("ALL")
    assert cpu_main(["--status"]) == 1  # nothing built yet, nothing compiled by --status
    assert "library:    none" in capsys.readouterr().out and fake_cxx.compiles() == []
    assert cpu_main([]) == 1
    assert "failed with every flag set" in capsys.readouterr().err
    assert cpu_main(["--status"]) == 1
    out = capsys.readouterr().out
    assert "flag chain: -march=sapphirerapids | -march=x86-64-v3 -mtune=generic" in out
    assert out.count("tried:") == 2 and "recorded in" in out
    assert "error: expected initializer before '<' token (fake)" in out and "compilation terminated." in out
    assert len(fake_cxx.compiles()) == 2
    fake_cxx.fail()
    assert cpu_main([]) == 1 and len(fake_cxx.compiles()) == 2  # still recorded
    capsys.readouterr()
    assert cpu_main(["--rebuild"]) == 0 and len(fake_cxx.compiles()) == 3
    assert capsys.readouterr().out.strip().endswith("book_kernels.so")
    assert cpu_main(["--status"]) == 0
    assert "built with -march=sapphirerapids" in capsys.readouterr().out


def test_the_old_command_does_the_same(fake_cxx, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["keras_optlab.kernels", "--status"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("keras_optlab.kernels", run_name="__main__")
    assert done.value.code == 1 and "flag chain:" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["keras_optlab.kernels"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("keras_optlab.kernels", run_name="__main__")
    assert done.value.code == 0 and len(fake_cxx.compiles()) == 1


# --------------------------------------------------------------------------- the warning


def test_the_warning_names_the_error_and_the_callers_line(fake_cxx, monkeypatch):
    set_chain(monkeypatch, V3)
    fake_cxx.fail("ALL")
    with pytest.warns(RuntimeWarning) as caught:
        assert cpu.load() is None
    (warning,) = caught
    message = str(warning.message)
    assert "Reason: /fake/include/Eigen/src/Core/arch/AVX512/PacketMathFP16.h:740:49: error: expected" in message
    assert "python -m keras_optlab.accel.cpu --status" in message and "KERAS_OPTLAB_KERNELS=0" in message
    assert warning.filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: the second call is silent
        assert cpu.load() is None and cpu.op("adam") is None
    assert cpu.status()["source"] == "build"


def test_the_warning_names_the_users_line_from_a_first_training_step(fake_cxx, monkeypatch):
    """The kernels load inside the first trace (keras_optlab, Keras, TF and AutoGraph's
    generated code on the stack): the warning names the line that ran the step."""
    set_chain(monkeypatch, V3)
    fake_cxx.fail("ALL")
    optimizer = ko.Adam(learning_rate=0.1)
    variable = keras.Variable(np.ones(3), dtype="float32")

    @tf.function
    def step():
        optimizer.apply([tf.ones(3)], [variable])

    with pytest.warns(RuntimeWarning, match="CPU kernels are unavailable") as caught:
        step()
    assert [w.filename for w in caught if "CPU kernels" in str(w.message)] == [__file__]
    assert np.all(variable.numpy() < 1.0)  # training goes on (TF's fused kernel)


def test_switched_off_means_tf_kernels_and_no_warning(fresh, monkeypatch):
    monkeypatch.setenv("KERAS_OPTLAB_KERNELS", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cpu.load() is None and cpu.op("momentum") is None
        assert ko.Adam().update_path(keras.Variable(np.ones(3), dtype="float32")) == "fused"
    info = cpu.status()
    assert (info["enabled"], info["loaded"], info["path"], info["error"]) == (False, False, None, None)


def test_no_compiler_warns_once_and_training_goes_on(fresh, monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    with pytest.warns(RuntimeWarning, match="CPU kernels are unavailable.*no C\\+\\+ compiler"):
        assert cpu.load() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cpu.load() is None
    assert "no C++ compiler" in cpu.status()["error"]
    optimizer = ko.Adam(learning_rate=0.1)
    variable = keras.Variable(np.ones(3), dtype="float32")
    assert optimizer.update_path(variable) == "fused"
    optimizer.apply([tf.ones(3)], [variable])
    assert np.all(variable.numpy() < 1.0)


def test_a_bad_switch_value_is_named(fresh, monkeypatch):
    monkeypatch.setenv("KERAS_OPTLAB_KERNELS", "maybe")
    with pytest.raises(ValueError, match="KERAS_OPTLAB_KERNELS must be 0 or 1"):
        cpu.enabled()
    assert "KERAS_OPTLAB_KERNELS must be 0 or 1" in cpu.status()["error"]


def test_op_names_the_rules(fresh):
    with pytest.raises(ValueError, match="rule must be one of adagrad, adam, momentum, nesterov"):
        cpu.op("sgd")


# --------------------------------------------------------------------------- the private cache


def test_every_level_of_the_cache_is_created_0700(fake_cxx, tmp_path, monkeypatch):
    base = tmp_path / "a" / "b"
    monkeypatch.setenv("KERAS_OPTLAB_CACHE", str(base))
    old = os.umask(0o002)  # a group-writable umask must not leak into the cache
    try:
        path = cpu.build(verbose=False)
    finally:
        os.umask(old)
    keydir = os.path.dirname(path)
    for level in (tmp_path / "a", base, base / "kernels", keydir):
        assert stat.S_IMODE(os.stat(level).st_mode) == 0o700, level
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700


@pytest.mark.parametrize("what", ["library", "directory", "cache root"])
def test_a_group_writable_library_or_directory_is_refused(fake_cxx, what):
    path = cpu.build(verbose=False)
    target = {"library": path, "directory": os.path.dirname(path),
              "cache root": os.path.dirname(os.path.dirname(path))}[what]
    os.chmod(target, os.stat(target).st_mode | stat.S_IWGRP)
    with pytest.raises(RuntimeError, match="refusing to use.*group- or world-writable"):
        cpu.build(verbose=False)
    _build._reset_for_tests()
    with pytest.warns(RuntimeWarning, match="refusing to use"):
        assert cpu.load() is None
    assert cpu.status()["source"] == "unsafe"
    assert len(fake_cxx.compiles()) == 1  # refused: not rebuilt over it either


def test_a_library_owned_by_someone_else_is_refused(fake_cxx, monkeypatch):
    cpu.build(verbose=False)
    monkeypatch.setattr(_build, "_current_uid", lambda: os.getuid() + 1)
    with pytest.raises(RuntimeError, match=r"refusing to use.*owned by uid \d+, not by this user"):
        cpu.build(verbose=False)


def test_an_unwritable_cache_builds_into_a_private_temp_dir(fake_cxx, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("KERAS_OPTLAB_CACHE", str(blocker / "cache"))
    path = cpu.build(verbose=False)
    root = os.path.dirname(os.path.dirname(path))
    assert os.path.dirname(root) == tempfile.gettempdir()
    assert os.path.basename(root).startswith("keras_optlab-kernels-") and root != os.path.join(
        tempfile.gettempdir(), f"keras_optlab-{os.getuid()}")
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert _build._temp_root == [root]
    assert cpu.build(verbose=False) == path and len(fake_cxx.compiles()) == 1  # one per process
    assert not os.path.exists(os.path.join(tempfile.gettempdir(), f"keras_optlab-{os.getuid()}", "kernels",
                                           os.path.basename(os.path.dirname(path))))


# --------------------------------------------------------------------------- the real library


def test_the_ops_are_namespaced(real_kernels):
    module = real_kernels
    assert cpu.status()["loaded"] and cpu.status()["flags"] in cpu.flag_sets()
    for rule in cpu.RULES:
        assert cpu.op(rule) is getattr(module, f"keras_optlab_book_apply_{rule}")
        assert cpu.OP_TYPES[rule] == "KerasOptlab>" + cpu.RULES[rule]
        assert not hasattr(module, "book_apply_" + rule)
        assert getattr(kernels.load(), "book_apply_" + rule) is cpu.op(rule)  # the shim's old names
    assert not hasattr(tf.raw_ops, "BookApplyAdam")
    var, velocity = tf.Variable(tf.ones(3)), tf.Variable(tf.zeros(3))

    @tf.function
    def step():
        cpu.op("momentum")(var=var.handle, velocity=velocity.handle, grad=tf.ones(3), lr=0.5, momentum=0.9)

    types = [o.type for o in step.get_concrete_function().graph.get_operations()]
    assert "KerasOptlab>BookApplyMomentum" in types
    step()
    np.testing.assert_array_equal(var.numpy(), 0.5)


def test_one_library_per_process(real_kernels, tmp_path, monkeypatch):
    """After a reset with another (empty) cache, load() hands back the library this
    process already loaded instead of registering the same kernels a second time."""
    saved = dict(_build._state)
    before = dict(_build._process_library)
    monkeypatch.setenv("KERAS_OPTLAB_CACHE", str(tmp_path / "other"))
    _build._reset_for_tests()
    try:
        assert cpu.load() is real_kernels and _build._process_library == before
        assert not os.path.exists(tmp_path / "other")  # nothing built into the new cache
        variable = keras.Variable(np.ones(3), dtype="float32")
        ko.Adam(learning_rate=0.1).apply([tf.ones(3)], [variable])  # the kernels still run
        assert np.all(variable.numpy() < 1.0)
    finally:
        _build._state.update(saved)


@needs_compiler
@pytest.mark.slow
def test_a_real_failing_first_flag_set_falls_back(fresh, monkeypatch):
    """A flag set the real compiler rejects, then the first set of this machine's chain."""
    chain = _build._chain_for(platform.machine(), _build._cpu_features())
    set_chain(monkeypatch, ["-mno-such-flag-keras-optlab"], chain[0])
    path = cpu.build(verbose=False)
    info = cpu.status()
    assert info["path"] == path and info["flags"] == chain[0]
    assert info["tried"][0]["returncode"] != 0 and "no-such-flag-keras-optlab" in info["tried"][0]["error"]


@needs_compiler
@pytest.mark.slow
@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 flags")
def test_sapphire_rapids_flags_break_tensorflows_eigen(fresh, monkeypatch):
    """The reason there is no -march=native: g++ 12 with TF 2.21's Eigen cannot compile
    for AVX512-FP16 (Sapphire Rapids and later). Compiling for that ISA works on any
    x86-64 CPU (the library is never loaded), so the failure and the record show here."""
    set_chain(monkeypatch, ["-march=sapphirerapids"])
    try:
        cpu.build(verbose=False)
    except RuntimeError as error:
        assert "error:" in error.first_error
        if "PacketMathFP16.h" not in str(error):
            pytest.fail(f"failed for another reason: {error.first_error}")
    else:
        pytest.skip("this compiler and TensorFlow build for AVX512-FP16 (the bug is fixed here)")
    assert cpu.status()["source"] == "cache" and "PacketMathFP16.h" in cpu.status()["error"]


# --------------------------------------------------------------------------- fresh processes


def _run(args, env=None, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, cwd=ROOT)


@pytest.mark.parametrize("module", ["keras_optlab.accel.cpu", "keras_optlab.kernels"])  # ~6 s each
def test_status_command_runs(module, tmp_path):
    done = _run(["-m", module, "--status"], {"KERAS_OPTLAB_CACHE": str(tmp_path)})
    assert done.returncode == 1, done.stderr[-2000:]  # an empty cache: nothing built
    assert "flag chain:" in done.stdout and "library:    none" in done.stdout
    assert not os.path.exists(tmp_path / "kernels")  # --status builds nothing


def test_status_without_a_compiler_says_which_it_looked_for(tmp_path):
    """Issue 22, item 13: it printed ``library: none`` and no reason."""
    done = _run(["-m", "keras_optlab.accel.cpu", "--status"],
                {"KERAS_OPTLAB_CACHE": str(tmp_path), "CXX": "/nonexistent/c++"})
    assert done.returncode == 1, done.stderr[-2000:]
    expected = "library:    none (no C++ compiler: $CXX is '/nonexistent/c++', which is not an executable file)"
    assert expected in done.stdout.splitlines(), done.stdout
    assert not os.path.exists(tmp_path / "kernels")


def test_status_gives_the_reason_for_no_library(fresh, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no c++ there
    assert cpu.status()["reason"] == (
        "no C++ compiler: $CXX is not set and 'c++' is not on PATH; install one (g++, clang++) or set $CXX"
    )
    monkeypatch.setenv("CXX", "no-such-c++")
    assert cpu.status()["reason"] == "no C++ compiler: $CXX is 'no-such-c++', which is not on PATH"
    monkeypatch.setenv("KERAS_OPTLAB_KERNELS", "0")
    assert cpu_main(["--status"]) == 1
    assert "library:    none (switched off by KERAS_OPTLAB_KERNELS=0)" in capsys.readouterr().out.splitlines()


def test_status_reason_is_the_recorded_failure_or_not_built_yet(fake_cxx, monkeypatch, capsys):
    set_chain(monkeypatch, V3)
    assert cpu.status()["reason"].startswith("not built yet: the first optimizer built on the TensorFlow backend")
    fake_cxx.fail("ALL")
    with pytest.raises(RuntimeError):
        cpu.build(verbose=False)
    assert cpu_main(["--status"]) == 1
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("library:")]
    assert "failed with every flag set" in line and "first error: /fake/include/Eigen" in line, line
    fake_cxx.fail()
    assert cpu_main(["--rebuild"]) == 0 and cpu.status()["reason"] is None


@needs_compiler
@pytest.mark.slow
def test_concurrent_first_builds_share_one_library(tmp_path):
    """Two processes (a distributed tuner's workers) build into one empty cache: the
    file lock makes one compile and the other wait, and both load the same file."""
    env = dict(os.environ, KERAS_OPTLAB_CACHE=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3")
    code = "from keras_optlab.accel import cpu; m = cpu.load(); print(cpu.status()['path'] if m else 'NONE')"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=ROOT)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    paths = [out.strip().splitlines()[-1] if out.strip() else "" for out, _ in outs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    assert paths[0] == paths[1] != "NONE" and paths[0].startswith(str(tmp_path))
    builds = sum("building CPU kernels" in err for _, err in outs)
    assert builds == 1, [err[-500:] for _, err in outs]
    assert [f for f in os.listdir(os.path.dirname(paths[0])) if f.endswith(".so")] == ["book_kernels.so"]


@needs_compiler
@pytest.mark.slow
def test_an_unwritable_cache_loads_from_a_private_temp_dir(tmp_path):
    """In a fresh process (TF registers a library's kernels for good): the real library,
    built into this process's mkdtemp() directory, loads and runs."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    code = (
        "import os, stat, warnings; warnings.simplefilter('error'); from keras_optlab.accel import cpu; "
        "assert cpu.load() is not None, cpu.status()['error']; p = cpu.status()['path']; "
        "print(p, oct(stat.S_IMODE(os.stat(os.path.dirname(os.path.dirname(p))).st_mode)))"
    )
    done = _run(["-c", code], {"KERAS_OPTLAB_CACHE": str(blocker / "cache")})
    assert done.returncode == 0, done.stderr[-2000:]
    path, mode = done.stdout.strip().splitlines()[-1].split()
    assert path.startswith(os.path.join(tempfile.gettempdir(), "keras_optlab-kernels-")) and mode == "0o700"
    assert not os.path.exists(path)  # removed when the process ended
