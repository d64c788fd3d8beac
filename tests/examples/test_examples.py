"""Every script in examples/ runs as is (smoke test, one subprocess each).

Figures go to a temporary directory through ``OPTLAB_OUT``. Each script must finish
within ``TIMEOUT`` seconds (the issue asks for < 60 s on 2 cores; the margin absorbs a
loaded CI machine) and print what it shows. A script with a ``--quick`` mode runs in
it here — its claims are asserted by its own test (tests/examples/test_lab87_examples.py
and the like) — so that the suite stays within CI's time on 2 cores.
"""

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[2] / "examples").glob("*.py"))
TIMEOUT = 120


def test_there_is_one_example_per_topic():
    names = {path.stem for path in EXAMPLES}
    topics = {
        "local_minima", "plateaus_and_saddles", "cliffs_and_clipping", "long_term_dependencies",
        "sgd_linear_decay", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "newton", "export_saved_model",
        "quasi_newton", "batch_norm_conditioning", "coordinate_descent", "continuation",
        "polyak_averaging",
    }
    assert topics <= names, sorted(topics - names)


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs(script, tmp_path):
    env = dict(os.environ, OPTLAB_OUT=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg")
    quick = ["--quick"] if "--quick" in script.read_text() else []
    result = subprocess.run(
        [sys.executable, str(script), *quick], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.stdout.strip().splitlines()) >= 3, result.stdout

