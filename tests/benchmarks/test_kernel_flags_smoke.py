"""Smoke test of benchmarks/kernel_flags.py: it builds, times and reports.

Timings are never asserted (they belong to the benchmark, not to the tests).
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from keras_optlab.accel import cpu
from tests.helpers import load_script

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "kernel_flags.py"
HAVE_COMPILER = shutil.which(cpu.compiler()) is not None


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT)


def test_variants(bench):
    assert bench.parse_variant("portable") == ("portable", None)
    assert bench.parse_variant("native") == ("native", "-march=native")
    assert bench.parse_variant("baseline") == ("baseline", ";")  # no ISA flags
    assert bench.parse_variant("v4=-march=x86-64-v4 -mtune=generic") == ("v4", "-march=x86-64-v4 -mtune=generic")
    assert bench.parse_variant("none=") == ("none", ";")  # no ISA flags at all
    with pytest.raises(argparse.ArgumentTypeError):
        bench.parse_variant("-march=native")
    env = bench.environment("/tmp/x", None)
    assert env["KERAS_OPTLAB_CACHE"] == "/tmp/x" and "KERAS_OPTLAB_CPU_FLAGS" not in env


def test_summary_is_the_median_of_paired_rounds(bench):
    rounds = [
        {"portable": {"adam": 10.0, "momentum": 4.0}, "native": {"adam": 10.0, "momentum": 4.0}},
        {"portable": {"adam": 12.0, "momentum": 5.0}, "native": {"adam": 8.0, "momentum": 5.0}},
        {"portable": {"adam": 9.0, "momentum": 6.0}, "native": {"adam": 9.0, "momentum": 3.0}},
    ]
    summary = bench.summarize(rounds, ["portable", "native"])
    assert summary["portable"]["adam"]["median_ms"] == 10.0
    assert summary["portable"]["adam"]["ratio_to_native"] == 1.0  # ratios 1, 1.5, 1
    assert summary["portable"]["momentum"]["ratio_to_native"] == 1.0  # ratios 1, 1, 2
    assert summary["native"]["adam"]["ratio_to_native"] == 1.0


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_COMPILER, reason="no C++ compiler to build the kernels")
def test_tiny_run(tmp_path):
    out = tmp_path / "kernel_flags.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "1000", "--runs", "1", "--steps", "2", "--warmup", "1",
         "--json", str(out)],
        capture_output=True, text=True, timeout=900, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    # The default pair builds on every CPU (no -march=native, which TF's Eigen headers
    # do not compile on CPUs with AVX512-FP16): both must build and be timed.
    assert set(report["builds"]) == {"portable", "baseline"}
    assert all(b["ok"] for b in report["builds"].values()), report["builds"]
    assert report["builds"]["portable"]["flags"] == report["builds"]["portable"]["chain"][0]
    assert report["builds"]["baseline"]["flags"] == []
    for name in ("portable", "baseline"):
        for op in ("adam", "momentum"):
            assert report["summary"][name][op]["median_ms"] > 0
    assert "ratio: median of per-round ratios to baseline" in done.stdout
