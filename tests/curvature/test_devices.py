"""Curvature products on several devices equal one device (keras_optlab.curvature.devices),
in float64, like the optimizers' multi-device tests:

* JAX: ``keras.distribution.DataParallel`` over 4 virtual CPU devices
  (data_parallel_check.py, its own process: XLA's device count is fixed at JAX's import);
* TensorFlow: ``tf.distribute.MirroredStrategy`` over two logical CPU devices
  (mirrored_check.py, its own process: logical devices are fixed at TF's start).

Each compares H, G and F (one batch of 37, batches of 8, a PyDataset; tf.data on TF),
hvp, gradient_curvature, top_eigenvalues, Hutch++ and the diagonal with one device's.
The JAX check spawns its own JAX process whatever the backend of pytest, so it runs in
the JAX pass of ``make test`` only; the TensorFlow one in the TensorFlow pass.
"""

import json
import os
import signal
import subprocess
import sys

import keras
import pytest

pytestmark = pytest.mark.slow

HERE = os.path.dirname(os.path.abspath(__file__))

# float64: the same products summed over 2 or 4 shares instead of one batch differ by
# rounding only (measured ≤ 6e-16); 1e-12 is the bar, and a share weighed
# wrongly (a replica's 18 of 37 samples counted as half) is off by ~1e-2.
EXACT = 1e-12


def _run(script, timeout):
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{script} not done after {timeout} s\n{err[-3000:]}")
    assert proc.returncode == 0, (out[-1000:], err[-3000:])
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.backend_agnostic
@pytest.mark.skipif(keras.backend.backend() != "jax", reason="runs once, in the JAX pass of make test")
def test_jax_data_parallel_equals_one_device():
    seen = _run("data_parallel_check.py", timeout=300)
    assert seen["devices"] == 4 and seen["variable_devices"] == [4], seen  # replicated on the mesh
    assert seen["batch_devices"] == 4, seen  # a batch of 8 is split over the 4 devices
    assert len(seen["diffs"]) == 12, seen
    for case, diff in seen["diffs"].items():
        assert diff <= EXACT, (case, diff)


def test_tf_mirrored_strategy_equals_one_device():
    seen = _run("mirrored_check.py", timeout=300)
    assert seen["replicas"] == 2 and seen["replicated"] >= 3, seen  # the products ran on the replicas
    assert len(seen["diffs"]) == 14, seen
    for case, diff in seen["diffs"].items():
        assert diff <= EXACT, (case, diff)
    # A "sum"-reduced loss: equal shares add up, unequal ones are refused, naming why.
    assert seen["even_sum"] <= EXACT, seen
    assert "a batch of 37 samples splits into unequal shares" in seen["refused"], seen
    assert "reduces by 'sum'" in seen["refused"] and "batch_size" in seen["refused"], seen
