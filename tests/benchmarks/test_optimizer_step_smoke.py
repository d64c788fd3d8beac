"""Smoke test of benchmarks/optimizer_step.py: it runs and writes well-formed JSON.

Timings are never asserted (they belong to the benchmark, not to the tests).
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from keras_optlab.accel import cpu
from tests.helpers import load_script

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "optimizer_step.py"
OPTIMIZERS = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "NesterovRMSProp", "Adam"]


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT)


def test_variable_shapes_cover_params_exactly(bench):
    for params, variables in [(10_000_000, 20), (1_000_000, 20), (10_000, 4), (12_345, 7), (5, 5)]:
        shapes = bench.variable_shapes(params, variables)
        assert len(shapes) == variables
        assert sum(int(np.prod(s)) for s in shapes) == params
    ranks = {len(s) for s in bench.variable_shapes(10_000_000, 20)}
    assert {1, 2, 4} <= ranks  # mixed shapes at the default size


def test_parse_count(bench):
    assert bench.parse_count("10M") == 10_000_000
    assert bench.parse_count("1e7") == 10_000_000
    assert bench.parse_count("500k") == 500_000
    assert bench.parse_count("10_000") == 10_000


HAVE_COMPILER = shutil.which(cpu.compiler()) is not None
TINY = ["--params", "10k", "--variables", "4", "--rounds", "1", "--steps", "1", "--warmup", "1"]


def expected_path(name, xla):
    """keras_optlab's CPU kernel outside XLA (all but SGD, whose TF kernel already makes
    one pass); TF's fused kernel where one computes the book's rule; else keras.ops."""
    tf_fused = name not in ("RMSProp", "NesterovRMSProp")
    if not xla and name != "SGD" and cpu.load() is not None:
        return "kernel"
    return "fused" if tf_fused else "ops"


def _check_entry(r):
    for key in ("ours_ms", "keras_ms", "ratio", "ratio_of_medians"):
        assert isinstance(r[key], float) and np.isfinite(r[key]) and r[key] > 0, (r["optimizer"], key)
    assert len(r["ours_ms_rounds"]) == len(r["keras_ms_rounds"]) == 1
    if r["optimizer"] in ("SGD", "NesterovRMSProp"):  # issue 7 sets no target for these
        assert r["target"] is None and r["meets_target"] is None
    else:
        assert r["target"] == (1.0 if r["xla"] else 0.4)
        assert isinstance(r["meets_target"], bool)
    assert r["update_path"] == expected_path(r["optimizer"], r["xla"])
    if "torch" in r:
        assert not r["xla"] and r["torch"]["ms"] > 0 and r["torch"]["peer"].startswith("torch.optim.")
    if HAVE_COMPILER:  # the memory-traffic bound runs in both modes
        b = r["bound"]
        assert b["bytes_per_param"] == {"SGD": 12, "NesterovRMSProp": 28, "Adam": 28}.get(r["optimizer"], 20)
        assert len(b["ms_rounds"]) == 1 and b["ms"] > 0
        assert b["ours_over_bound"] == pytest.approx(r["ours_ms"] / b["ms"])
        assert b["bound_over_keras"] == pytest.approx(b["ms"] / r["keras_ms"])
    assert r["keras"].startswith("keras.optimizers.")
    assert set(r["tracing_count"].values()) == {1}  # traced once, never retraced
    if r["optimizer"] == "NesterovRMSProp":
        assert "no Keras counterpart" in r["note"]
    else:
        assert r["note"] is None


def test_main_writes_json_both_modes(bench, tmp_path):
    # XLA compilation dominates the run time: three optimizers cover both modes here,
    # the next test runs all seven without XLA.
    path = tmp_path / "step.json"
    names = ["SGD", "NesterovRMSProp", "Adam"]
    report = bench.main(TINY + ["--optimizers", ",".join(names), "--json", str(path)])
    on_disk = json.loads(path.read_text())
    assert on_disk == json.loads(json.dumps(report))

    assert on_disk["benchmark"] == "optimizer_step"
    assert on_disk["date"] and on_disk["command"].startswith("python benchmarks/optimizer_step.py")
    device = on_disk["device"]
    assert device["kind"] == "cpu" and device["cpu_model"] and device["cores"] >= 1
    assert {"tensorflow", "keras", "python", "numpy", "keras_optlab"} <= set(on_disk["versions"])
    config = on_disk["config"]
    assert config["params"] == 10_000 and config["variables"] == 4
    assert sum(int(np.prod(s)) for s in config["shapes"]) == 10_000
    assert config["xla_modes"] == [False, True] and config["ablations"] == []
    assert on_disk["targets"] == {"no_xla": 0.4, "xla": 1.0}
    memory = {m["optimizer"]: m for m in on_disk["state_memory"]}
    assert set(memory) == set(names)
    for m in memory.values():  # slots equal the book's minimum (4 B per float32 slot)
        assert m["ours"]["slot_bytes_per_param"] == m["book_minimum_bytes_per_param"] and m["meets_book_minimum"]
    assert memory["Adam"]["ours"]["slot_bytes_per_param"] == 8.0 and memory["SGD"]["ours"]["slot_bytes_per_param"] == 0

    results = on_disk["results"]
    assert [(r["optimizer"], r["xla"]) for r in results] == [(n, x) for x in (False, True) for n in names]
    for r in results:
        _check_entry(r)
        assert r["tracing_count"] == {"ours": 1, "keras": 1} and r["ablations"] == {}


@pytest.mark.slow
def test_ablations_on_a_fused_and_an_ops_path_optimizer(bench, tmp_path):
    # Two optimizers, not seven: each ablation compiles its own graphs (xla-update one
    # XLA program per variable), and the other tests already cover every optimizer.
    path = tmp_path / "ablate.json"
    report = bench.main(TINY + ["--no-xla", "--ablations", "--ops-path", "--optimizers", "Adam,RMSProp", "--json", str(path)])
    assert [(r["optimizer"], r["xla"]) for r in report["results"]] == [("Adam", False), ("RMSProp", False)]
    ablations = ["tracked", "l2loss-tracked", "xla-update", "tf-fused"]
    assert json.loads(path.read_text())["config"]["ablations"] == ablations
    for r in report["results"]:
        _check_entry(r)
        assert set(r["tracing_count"]) == {"ours", "keras", "ours:keras.ops"} | {f"ours:{a}" for a in ablations}
        assert r["keras_ops_path"]["ms"] > 0
        assert set(r["ablations"]) == set(ablations)
        for a in ablations:
            assert r["ablations"][a]["ms"] > 0 and r["ablations"][a]["ratio"] > 0


def test_table_lists_every_result(bench):
    entry = {
        "optimizer": "Adam", "xla": True, "ours_ms": 2.0, "keras_ms": 1.0, "ratio": 2.0, "target": 1.1,
        "meets_target": False, "keras": "keras.optimizers.Adam()", "note": None, "ablations": {},
        "update_path": "fused",
    }
    table = bench.format_table([entry])
    assert "Adam" in table and "2.00" in table and "NO" in table


@pytest.mark.skipif(not HAVE_COMPILER, reason="no C++ compiler for stream_bound.cc")
def test_stream_bound_program(bench, tmp_path):
    exe, why, flags = bench.build_bound(str(tmp_path))
    assert exe is not None, why
    assert flags == cpu.flag_sets()[0]  # the kernels' portable baseline, never -march=native
    assert not any("native" in f for f in flags)
    times = bench.bound_times(exe, "Adam", 1000, rounds=3, steps=2, warmup=1)
    assert len(times) == 3 and all(t > 0 for t in times)
    for bad in (["5", "10", "1", "1", "1", "0"], ["3", "0", "1", "1", "1", "0"], ["3", "10"]):
        done = subprocess.run([exe, *bad], capture_output=True, text=True, check=False)
        assert done.returncode == 2 and "ARRAYS" in done.stderr


def test_bound_without_compiler_is_left_out_with_a_reason(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-c++"))
    exe, why, flags = bench.build_bound(str(tmp_path))
    assert exe is None and flags is None and "no C++ compiler" in why


@pytest.mark.skipif(not HAVE_COMPILER, reason="no C++ compiler for stream_bound.cc")
def test_bound_falls_down_the_flag_chain(bench, tmp_path, monkeypatch):
    """A flag set the compiler refuses (as Eigen-breaking ISAs fail the kernels) makes
    way for the next one of the chain."""
    monkeypatch.setattr(cpu, "flag_sets", lambda: [["-fno-such-flag-for-sure"], []])
    exe, why, flags = bench.build_bound(str(tmp_path))
    assert exe is not None, why
    assert flags == []


def test_unknown_optimizer_is_rejected(bench):
    with pytest.raises(SystemExit):
        bench.main(["--optimizers", "Adamax", "--json", ""])


def test_backend_from_argv_is_shared():
    sys.path.insert(0, str(SCRIPT.parent))
    import common

    assert common.backend_from_argv(["--quick", "--backend", "torch"]) == "torch"
    assert common.backend_from_argv(["--backend=jax", "--quick"]) == "jax"
    assert common.backend_from_argv(["--quick"]) is None
    assert common.backend_from_argv(["--backend"]) is None


@pytest.mark.slow
def test_torch_backend_both_variants(tmp_path):
    """--backend torch from a TF process: the script re-runs itself with KERAS_BACKEND=torch."""
    pytest.importorskip("torch")
    path = tmp_path / "torch.json"
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--backend", "torch", *TINY, "--optimizers", "SGD,Adam", "--variant", "both",
         "--threads", "1", "--json", str(path)],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(path.read_text())
    assert report["backend"] == "torch" and report["versions"]["torch"] and report["versions"]["torch_threads"] == 1
    results = report["results"]
    assert [(r["optimizer"], r["variant"]) for r in results] == [
        ("SGD", "plain"), ("Adam", "plain"), ("SGD", "clip-skip"), ("Adam", "clip-skip")
    ]
    for r in results:
        assert r["backend"] == "torch" and r["ours_ms"] > 0 and r["keras_ms"] > 0 and r["ratio"] > 0
        assert r["tracing_count"] == {"ours": 1, "keras": 1}
    assert results[2]["keras"] == "keras.optimizers.SGD(global_clipnorm=1.0)"
