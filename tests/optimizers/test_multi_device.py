"""Beyond one device, on each backend: training with the data split over several
devices or worker processes ends at the weights of one device (full batches).

* JAX: ``keras.distribution.DataParallel`` over 4 virtual CPU devices, float64
  (data_parallel_check.py, its own process: XLA's device count is fixed at JAX's import).
  Every optimizer, and SGD and Adam with ``global_clipnorm`` (clipping every step) and
  ``skip_nonfinite`` (a NaN input skips one step per epoch).
* TensorFlow: ``tf.distribute.MultiWorkerMirroredStrategy``, two worker processes on
  loopback (multi_worker_check.py launches them, on free ports, with hard timeouts).

The JAX check spawns its own JAX process whatever the backend of pytest, so it runs in
one pass of ``make test`` only: the JAX pass (``-m backend_agnostic`` under
``KERAS_BACKEND=jax``), which is also where a JAX regression is looked for. The
multi-worker check needs TensorFlow and runs in the TensorFlow pass.
"""

import json
import os
import signal
import subprocess
import sys

import keras
import pytest

from tests.optimizers.cases import NAMES

pytestmark = pytest.mark.slow

HERE = os.path.dirname(os.path.abspath(__file__))


def _run_check(script, cases, timeout):
    """Run a check script in its own process group; kill the whole group (workers
    included) after ``timeout`` s, so that a hung collective fails instead of hanging."""
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, script), *cases],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{script} not done after {timeout} s\n{err[-3000:]}")
    assert proc.returncode == 0, (out[-1000:], err[-3000:])
    return json.loads(out.strip().splitlines()[-1])


# ------------------------------------------------------------------ JAX DataParallel
DATA_PARALLEL_CASES = [*NAMES, "SGD+clip+skip", "Adam+clip+skip"]


@pytest.fixture(scope="module")
def data_parallel():
    return _run_check("data_parallel_check.py", DATA_PARALLEL_CASES, timeout=240)


@pytest.mark.backend_agnostic
@pytest.mark.skipif(keras.backend.backend() != "jax", reason="runs once, in the JAX pass of make test")
@pytest.mark.parametrize("case", DATA_PARALLEL_CASES)
def test_jax_data_parallel_equals_one_device(data_parallel, case):
    seen = data_parallel[case]
    assert seen["moved"] > 1e-2, seen  # training really happened
    assert seen["finite"], seen
    # float64: the mean gradient over 4 quarter batches equals the one-batch mean up
    # to summation order (measured ≤ 5e-14 after 16 steps, AdaGrad the largest); a
    # learning rate 1e-4 off gives ≥ 9e-5.
    assert seen["diff"] <= 1e-6, seen
    assert seen["single"] == seen["parallel"], seen  # steps, skipped and clipped steps
    if "+skip" in case:
        assert seen["single"]["skipped"] == 2, seen  # batch 3 of each epoch
    if "+clip" in case:
        assert seen["single"]["clipped"] > 0, seen


# ---------------------------------------------------------- TF MultiWorkerMirrored
# A subset, not all 7: each case costs ~7 s of the 2 cores (two trainings with their
# tracing in each of two TF processes), and the ~60 s budget holds ~5. The update rules
# act elementwise on the same all-reduced gradient in every worker; what distribution
# can change is shared by all optimizers (sharding, loss scaling, the all-reduce,
# clipping, skipping), so SGD, Momentum and Adam plus the two shared options in
# isolation cover it. Every rule is also checked under MirroredStrategy
# (test_distributed.py) and JAX DataParallel (above).
MULTI_WORKER_CASES = [
    "SGD",
    "Momentum",
    "Adam",
    # Clipping and the non-finite check see the gradient summed over the workers
    # (BookOptimizer.apply sums first; Keras itself clips each replica's part).
    "SGD+clip",
    "Adam+skip",
]


@pytest.fixture(scope="module")
def multi_worker():
    cases = list(MULTI_WORKER_CASES)
    # The launcher kills its workers after 110 s; this limit is the last guard.
    return _run_check("multi_worker_check.py", cases, timeout=130)


@pytest.mark.parametrize("case", MULTI_WORKER_CASES)
def test_multi_worker_mirrored_equals_one_worker(multi_worker, case):
    seen = multi_worker[case]
    assert seen["moved"] > 1e-2, seen
    # Both workers hold the same weights: the strategy kept them in sync.
    assert seen["workers"] == 0.0, seen
    # float32 (AdaGrad is not in this subset): two half-batch sums vs one batch differ by
    # rounding only (measured ≤ 6e-8 here after 16 steps; ≤ 1.7e-7 over all 7 rules,
    # AdaGrad the largest), below 1e-6; a learning rate 1e-4 off gives ≥ 5e-6.
    assert seen["diff"] <= 1e-6, seen
    assert seen["single"] == seen["mwms"], seen
