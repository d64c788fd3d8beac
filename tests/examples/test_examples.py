"""Every script in examples/ runs as is (smoke test, one subprocess each).

Figures go to a temporary directory through ``OPTLAB_OUT``. Each script must finish
within ``TIMEOUT`` seconds (the issue asks for < 60 s on 2 cores; the margin absorbs a
loaded CI machine) and print what it shows; one with a ``--quick`` mode runs in it. Scripts with a test of
their own (``OWN_TESTS``) are run by it instead, so that the suite stays within CI's
time on 2 cores.
"""

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[2] / "examples").glob("*.py"))
# Scripts whose own test runs them (in --quick mode) and checks what they claim: run
# once there, not twice (CI's time on 2 cores).
OWN_TESTS = {
    "batch_norm_conditioning": "test_lab87_examples.py",
    "continuation": "test_lab87_examples.py",
    "coordinate_descent": "test_lab87_examples.py",
    "polyak_averaging": "test_polyak_example.py",
}
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


def test_scripts_with_their_own_test_have_it():
    here = pathlib.Path(__file__).resolve().parent
    for stem, test in OWN_TESTS.items():
        assert (here / test).exists() and f"{stem}" in (here / test).read_text(), (stem, test)


SMOKE = [path for path in EXAMPLES if path.stem not in OWN_TESTS]


@pytest.mark.slow
@pytest.mark.parametrize("script", SMOKE, ids=[path.stem for path in SMOKE])
def test_example_runs(script, tmp_path):
    env = dict(os.environ, OPTLAB_OUT=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg")
    quick = ["--quick"] if "--quick" in script.read_text() else []
    result = subprocess.run(
        [sys.executable, str(script), *quick], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.stdout.strip().splitlines()) >= 3, result.stdout

