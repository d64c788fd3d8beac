"""Smoke tests of benchmarks/fit_digits.py and benchmarks/optimizer_step_gpu.py: they
run with tiny sizes and write well-formed JSON. Timings are never asserted; the GPU
script runs on CPU JAX here (its numbers are not GPU numbers), in a subprocess where
tensorflow and keras_tuner cannot be imported, as on a JAX-only GPU machine."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from tests.helpers import load_script

BENCH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
def test_fit_digits_quick(tmp_path):
    sys.path.insert(0, str(BENCH))
    module = load_script(BENCH / "fit_digits.py")
    path = tmp_path / "fit.json"
    module.main(["--quick", "--optimizers", "Adam,SGD", "--rounds", "1", "--json", str(path)])
    report = json.loads(path.read_text())
    assert [r["optimizer"] for r in report["results"]] == ["Adam", "SGD"]
    for r in report["results"]:
        assert r["ours_ms"] > 0 and r["keras_ms"] > 0 and r["ratio"] > 0 and r["target"] == 1.0
    assert {"cpu_model", "cores"} <= set(report["device"])


@pytest.mark.slow
def test_gpu_script_runs_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    path = tmp_path / "gpu.json"
    code = (
        "import sys, runpy; sys.modules['tensorflow'] = None; sys.modules['keras_tuner'] = None; "
        f"sys.argv = ['x', '--quick', '--no-torch', '--json', {str(path)!r}]; "
        f"runpy.run_path({str(BENCH / 'optimizer_step_gpu.py')!r}, run_name='__main__')"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(path.read_text())
    assert report["is_gpu_number"] is False and report["device"]["platform"] == "cpu"
    assert report["keras_optlab_loaded_as"] == "import keras_optlab.optimizers"  # the package itself, no TF
    assert report["versions"]["tensorflow_importable"] is False
    assert [r["optimizer"] for r in report["results"]] == ["Adam", "Momentum", "SGD"]
    for r in report["results"]:
        assert {"ours", "keras"} <= set(r["ms"]) and r["bound_ms"] > 0 and r["copy_bandwidth_GBps"] > 0


@pytest.mark.backend_agnostic
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax", reason="imports JAX: only in the JAX run (no forks there)")
def test_gpu_copy_bound_really_moves_the_data():
    """The bound's ``copy_step`` must compile to a read and a write of every element;
    ``x + 0`` compiled to nothing (XLA folds it and the donated buffer is aliased)."""
    jax = pytest.importorskip("jax")
    module = load_script(BENCH / "optimizer_step_gpu.py")

    def compiled(fn):
        xs = [jax.numpy.zeros((1000,), "float32")]
        return jax.jit(fn, donate_argnums=0).lower(xs).compile().as_text()

    assert " add(" in compiled(module.copy_step)
    assert " add(" not in compiled(lambda xs: [x + 0.0 for x in xs])  # the bug it replaces
