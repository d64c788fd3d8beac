"""Smoke test of benchmarks/curvature_cost.py: it runs and writes well-formed JSON.

Timings are never asserted (they belong to the benchmark, not to the tests).
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from tests.helpers import load_script

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "curvature_cost.py"


@pytest.mark.slow
def test_quick_run_writes_json(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    module = load_script(SCRIPT)
    path = tmp_path / "out.json"
    module.main(["--quick", "--json", str(path)])
    report = json.loads(path.read_text())
    assert [r["case"] for r in report["hvp_over_gradient"]] == ["mlp", "lstm"]
    assert all(r["ratio"] > 0 for r in report["hvp_over_gradient"])
    assert [r["monitor_batch"] for r in report["monitor_overhead"]] == [32, 256, 32]
    assert all(r["measurements_per_fit"] >= 1 for r in report["monitor_overhead"])
    assert {"cpu_model", "cores"} <= set(report["device"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_quick_hvp_on_another_backend(tmp_path, backend):
    """--backend jax/torch (HVP part only): the script sets KERAS_BACKEND before keras."""
    pytest.importorskip(backend)
    path = tmp_path / "out.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--backend", backend, "--quick", "--no-monitor", "--json", str(path)],
        env=dict(os.environ, KERAS_BACKEND="tensorflow"), capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(path.read_text())
    assert report["backend"] == backend and report["versions"][backend]
    assert [r["case"] for r in report["hvp_over_gradient"]] == ["mlp", "lstm"]
    assert all(r["hvp_ms"] > 0 and r["gradient_ms"] > 0 and r["ratio"] > 0 for r in report["hvp_over_gradient"])
    assert report["monitor_overhead"] == []
