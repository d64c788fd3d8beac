"""Smoke test of benchmarks/newton_step.py: --quick runs (TensorFlow backend, in a
subprocess) and writes well-formed JSON.

Timings are never asserted (they belong to the benchmark, not to the tests).
"""

import json
import math
import os
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "newton_step.py"


def test_quick_run_writes_json(tmp_path):
    path = tmp_path / "newton.json"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--backend", "tensorflow", "--quick", "--json", str(path)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(path.read_text())
    assert report["benchmark"] == "newton_step" and report["backend"] == "tensorflow"
    assert report["command"].startswith("python benchmarks/newton_step.py")
    assert {"cpu_model", "cores"} <= set(report["device"])
    assert {"keras", "keras_optlab", "python", "numpy"} <= set(report["versions"])
    assert set(report["load_average_1_5_15min"]) == {"before", "after"}
    config = report["config"]
    assert config["params"] == 64 * 32 + 32 + 32 * 10 + 10 and config["rounds"] == 2 and config["steps"] == 2
    result = report["result"]
    for key in ("newton_ms", "sgd_ms", "ratio", "ratio_of_medians"):
        assert isinstance(result[key], float) and math.isfinite(result[key]) and result[key] > 0, key
    assert len(result["newton_ms_rounds"]) == len(result["sgd_ms_rounds"]) == len(result["ratios"]) == 2
    cg = result["cg_iterations"]
    assert cg["max"] == 10 and len(cg["next_steps"]) == 3
    assert all(1 <= n <= 10 for n in [cg["after_warmup"], cg["last_timed_step"], *cg["next_steps"]])
    assert all(math.isfinite(v) for v in result["loss"].values())
