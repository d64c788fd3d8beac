"""Smoke test of benchmarks/curvature_cost.py: it runs and writes well-formed JSON.

Timings are never asserted (they belong to the benchmark, not to the tests).
"""

import json
import pathlib
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
