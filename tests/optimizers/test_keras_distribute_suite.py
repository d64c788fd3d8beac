"""Keras 3.15's tf.distribute optimizer tests (``backend/tensorflow/
optimizer_distribute_test.py``) over every keras_optlab optimizer, in a fresh process
(keras_distribute_check.py: two logical CPU devices must exist before TensorFlow starts)."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

CHECKS = ("single_step", "weight_decay", "golden", "clip_norm", "clip_value", "config", "ema", "accumulation")


@pytest.fixture(scope="module")
def results():
    script = os.path.join(os.path.dirname(__file__), "keras_distribute_check.py")
    done = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("check", CHECKS)
def test_keras_distribute_check_holds(results, check):
    seen = results[check]
    if isinstance(seen, dict) and set(seen) >= {"SGD", "Adam"}:  # one entry per optimizer
        failed = {name: value for name, value in seen.items() if value is not None}
        assert not failed, failed
    else:
        assert seen is None, seen
