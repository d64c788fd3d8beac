"""Smoke test of benchmarks/deep_autoencoder.py: a tiny run writes well-formed JSON, and the
Sutskever et al. momentum schedule reaches the compiled step. Errors and timings are never
asserted (they belong to the benchmark). The Hessian-free contender is left out here: its
graph alone takes ~20 s to trace on 2 cores; Newton and SecondOrder have their own tests."""

import json
import pathlib
import sys

import numpy as np
import pytest
from tests.helpers import load_script

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "deep_autoencoder.py"


@pytest.mark.slow
def test_quick_run_writes_json_and_follows_the_momentum_schedule(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    module = load_script(SCRIPT)
    t = np.array([0, 249, 250, 1000, 12250, 10**6])
    np.testing.assert_allclose(module.sutskever_momentum(t, 0.995), [0.5, 0.5, 0.75, 0.9, 0.99, 0.995])
    optimizer = module.ScheduledNesterov(0.01, momentum=0.99)
    optimizer.build([])
    for step in (0, 250, 1000, 12250, 10**6):
        optimizer.iterations.assign(step)
        assert float(optimizer.momentum_now()) == pytest.approx(module.sutskever_momentum(step, 0.99), abs=1e-6)

    path = tmp_path / "out.json"
    module.main(["--quick", "--only", "nesterov-sparse", "--json", str(path)])
    report = json.loads(path.read_text())
    (run,) = report["runs"]
    assert run["name"] == "nesterov-sparse" and run["steps"] >= 1 and run["momentum_at_end"] == 0.5
    assert report["parameters"] == 842340 and report["training_images"] == 400
    assert run["final_train_squared_error"] > 0 and len(run["curve"]) >= 2


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--seconds", "0"], "--seconds"),
        (["--n", "0"], "--n"),
        (["--only", "sgd"], "--only"),
        (["--set", "adam-glorot.rate=1"], "--set"),
        (["--set", "adam-glorot.batch_size=many"], "--set"),
    ],
)
def test_bad_arguments_are_usage_errors_naming_the_option(argv, option, capsys):
    sys.path.insert(0, str(SCRIPT.parent))
    module = load_script(SCRIPT)
    with pytest.raises(SystemExit) as info:
        module.parse_args(argv)
    assert info.value.code == 2 and option in capsys.readouterr().err
