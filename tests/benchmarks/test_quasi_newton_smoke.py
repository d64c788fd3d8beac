"""Smoke test of benchmarks/quasi_newton.py: --quick runs (TensorFlow backend, in a
subprocess; part 1 on the logistic problem only, to keep the suite's time: each problem
costs every contender's tracing/compilation), writes well-formed JSON, and on that
strictly convex problem our L-BFGS and nonlinear CG end where scipy's L-BFGS-B does.

Timings and the ratios' targets are never asserted (they belong to the benchmark).
"""

import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import finite_positive

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "quasi_newton.py"
CONTENDERS = {"lbfgs", "nonlinear_cg", "scipy_lbfgsb", "scipy_cg", "torch_lbfgs", "optax_lbfgs"}
WALL_TIME_CONTENDERS = {"adam_1e-3_batch64", "adam_3e-3_batch64", "hf_gauss_newton_batch700", "lbfgs_full_batch",
                        "nonlinear_cg_full_batch"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("quasi_newton") / "quasi_newton.json"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--backend", "tensorflow", "--quick", "--problems", "logistic",
         "--seconds", "0.2", "--json", str(path)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(path.read_text())


@pytest.mark.slow
def test_quick_run_writes_json(report):
    assert report["benchmark"] == "quasi_newton" and report["backend"] == "tensorflow"
    assert report["command"].startswith("python benchmarks/quasi_newton.py")
    assert {"cpu_model", "cores"} <= set(report["device"])
    assert {"keras", "keras_optlab", "python", "numpy"} <= set(report["versions"])
    assert report["config"]["quick"] is True and report["config"]["repeats"] == 1
    assert set(report["tolerance_race"]) == {"logistic"} and report["config"]["problems"] == ["logistic"]
    for name, part in report["tolerance_race"].items():
        present = set(part["contenders"])
        # A peer is either measured or listed as skipped, with the reason.
        assert present | set(report["skipped"]) == CONTENDERS and not present & set(report["skipped"]), name
        agreement = part["agreement_at_start"]  # the script's own bound (float64 sums, see check_agreement)
        assert agreement["max_abs_difference"] <= 1e-10 * max(1.0, agreement["loss_keras"])
        for contender, out in part["contenders"].items():
            assert out["evaluations"] >= out["iterations"] >= 1, (name, contender)
            assert finite_positive(out["wall_s"]) and math.isfinite(out["final_loss"]), (name, contender)
            assert math.isfinite(out["final_grad_inf"]) and out["distance_to_scipy_lbfgsb_inf"] >= 0.0
            assert out["reached_gtol"] == (out["final_grad_inf"] <= part["gtol"])
        for contender in ("lbfgs", "nonlinear_cg", "optax_lbfgs"):
            if contender in present:
                assert part["contenders"][contender]["compile_s"] >= 0.0
        assert {"evaluations_lbfgs_over_scipy_lbfgsb", "evaluations_nonlinear_cg_over_scipy_cg",
                "wall_lbfgs_over_torch_lbfgs", "wall_lbfgs_over_optax_lbfgs"} <= set(part["ratios"])
        assert finite_positive(part["ratios"]["evaluations_lbfgs_over_scipy_lbfgsb"])
    wall = report["equal_wall_time"]
    assert set(wall["contenders"]) == WALL_TIME_CONTENDERS
    for name, run in wall["contenders"].items():
        curve = np.asarray(run["curve_s_train_val"])
        assert curve.shape[1] == 3 and curve[0, 0] == 0.0 and np.all(np.diff(curve[:, 0]) > 0), name
        assert curve[-1, 0] >= wall["seconds"] and np.all(np.isfinite(curve)), name
        assert set(run["at_fraction_of_budget"]) == {"0.25", "0.5", "1"}
        assert run["curve_points"] == len(curve)  # a --quick curve is short enough to be kept whole
        within = curve[curve[:, 0] <= wall["seconds"]]
        assert run["at_fraction_of_budget"]["1"]["train_mse"] == within[-1, 1], name
        assert run["final_train_mse"] == curve[-1, 1], name


@pytest.mark.slow
def test_ours_agree_with_scipy_on_the_convex_problem(report):
    """Logistic regression with L2 λ is λ-strongly convex, so a point with gradient g is
    within ‖g‖₂/λ of the minimizer θ* and J(θ) − J* ≤ ‖g‖₂²/(2λ) (Boyd & Vandenberghe
    Eq. 9.9, 9.11); ‖g‖₂ ≤ √n ‖g‖∞. Two points that both reached ‖g‖∞ ≤ gtol are within
    the sum of their bounds of each other: the test's tolerance, from the reported ‖g‖∞."""
    part = report["tolerance_race"]["logistic"]
    n, l2 = part["parameters"], report["config"]["l2"]
    reference = part["contenders"]["scipy_lbfgsb"]
    assert reference["reached_gtol"]
    for contender in ("lbfgs", "nonlinear_cg"):
        out = part["contenders"][contender]
        assert out["reached_gtol"], contender
        radius = [math.sqrt(n) * o["final_grad_inf"] / l2 for o in (out, reference)]
        assert out["distance_to_scipy_lbfgsb_inf"] <= sum(radius), contender
        gap = [n * o["final_grad_inf"] ** 2 / (2 * l2) for o in (out, reference)]
        assert abs(out["final_loss"] - reference["final_loss"]) <= max(gap), contender
