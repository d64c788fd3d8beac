"""The closure wing's loop (issue 25): ``minimize`` compiled once per loss and returning a
``MinimizeResult`` that says why it stopped; ``SecondOrder.fit`` reusing the line search's
last evaluation, stopping at a gradient tolerance and warning about mini-batches.
TensorFlow, JAX and PyTorch (this file runs in each backend's pass), float64.
"""

import warnings

import keras
import numpy as np
import pytest
import scipy.optimize
from keras import ops

import keras_optlab as ko
from keras_optlab.optimizers import closure
from tests.helpers import digits_subset, spd_quadratic
from tests.helpers import rosenbrock_loss as rosenbrock

pytestmark = pytest.mark.backend_agnostic
LINE_SEARCH_OPTIMIZERS = [ko.LBFGS, ko.NonlinearCG]


def variable(values):
    return keras.Variable(np.asarray(values, dtype="float64"), dtype="float64")


def quadratic(n=20, condition=1e4, seed=0):
    return spd_quadratic(n, condition, seed)


def rosenbrock_start(n=10):
    return np.tile([-1.2, 1.0], n // 2)


class Counted:
    """A loss that counts its Python calls (each evaluation on torch; each trace on
    TensorFlow and JAX)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self):
        self.calls += 1
        return self.fn()


# ------------------------------------------------------------------ the result


@pytest.mark.parametrize("cls", LINE_SEARCH_OPTIMIZERS)
def test_a_converged_problem_stops_and_says_so(cls):
    var = variable(rosenbrock_start())
    result = cls().minimize(rosenbrock(var), [var], steps=5000, gradient_tolerance=1e-8)
    assert result.converged and result.status == closure.CONVERGED
    assert result.message == "gradient tolerance reached"
    assert result.gradient_norm <= 1e-8 and result.iterations < 5000
    # No step ascends (a search that finds no decrease moves nothing and clears the memory).
    assert len(result.losses) == result.iterations and np.all(np.diff(result.losses) <= 0)
    # The result's point is the variables' point, and its numbers are measured there.
    # (J ≈ 1e-19 here: equal to float64 rounding of the terms of J, ~1e-16 each.)
    assert result.loss == pytest.approx(float(rosenbrock(var)()), abs=1e-15)
    np.testing.assert_allclose(ops.convert_to_numpy(var), 1.0, atol=1e-7)


@pytest.mark.parametrize("cls", LINE_SEARCH_OPTIMIZERS)
def test_each_budget_stops_with_its_reason(cls):
    var = variable(rosenbrock_start())
    result = cls().minimize(rosenbrock(var), [var], steps=7)
    assert (result.status, result.iterations, result.converged) == (closure.STEP_BUDGET, 7, False)
    var.assign(rosenbrock_start())
    result = cls().minimize(rosenbrock(var), [var], steps=5000, max_function_evaluations=30)
    assert result.status == closure.EVALUATION_BUDGET and result.message == "evaluation budget reached"
    # A search started below the budget may end above it, by at most one search.
    assert 30 <= result.function_evaluations < 30 + 20
    var.assign(rosenbrock_start())
    result = cls().minimize(rosenbrock(var), [var], steps=5000, loss_tolerance=1e-3)
    assert result.status == closure.NO_PROGRESS and not result.converged
    f_before, f_after = result.losses[-1], result.loss
    assert f_before - f_after <= 1e-3 * max(abs(f_before), abs(f_after), 1.0)


@pytest.mark.parametrize("cls", LINE_SEARCH_OPTIMIZERS)
def test_an_unreachable_tolerance_ends_at_a_failed_search_not_the_budget(cls):
    """κ = 1e4 and gtol 1e-14 (below what float64 rounding of J resolves): scipy's
    L-BFGS-B stops with ABNORMAL_TERMINATION_IN_LNSRCH after ~700 evaluations; so must
    we, instead of spending 3,000 steps of failing searches."""
    a, b, make = quadratic(50)
    var = variable(np.zeros(50))
    result = cls().minimize(make(var), [var], steps=3000, gradient_tolerance=1e-14)
    assert result.status == closure.SEARCH_FAILED and "line search failed" in result.message
    reference = scipy.optimize.minimize(lambda t: (0.5 * t @ a @ t - b @ t, a @ t - b), np.zeros(50), jac=True,
                                        method="L-BFGS-B", options={"gtol": 1e-14, "ftol": 0.0, "maxiter": 3000})
    assert not reference.success and "ABNORMAL" in str(reference.message)
    assert result.function_evaluations <= 4 * reference.nfev  # CG needs ~2.5x L-BFGS's
    # Strongly convex with λ_min = 1: |θ − θ*| ≤ ‖g‖₂/λ_min ≤ √n ‖g‖∞.
    error = np.abs(ops.convert_to_numpy(var) - np.linalg.solve(a, b)).max()
    assert error <= np.sqrt(50) * result.gradient_norm


@pytest.mark.parametrize("cls", LINE_SEARCH_OPTIMIZERS)
def test_a_non_finite_start_stops_at_once(cls):
    var = variable([np.nan, 1.0])
    result = cls().minimize(lambda: ops.sum(var**2), [var], steps=10)
    assert result.status == closure.NONFINITE and result.iterations == 0 and not result.converged


@pytest.mark.parametrize("cls", LINE_SEARCH_OPTIMIZERS)
def test_function_evaluations_are_exact(cls):
    """On torch every evaluation is a Python call of the loss: the count is exact,
    the first evaluation included (it was one short with gradient_tolerance before)."""
    if keras.backend.backend() != "torch":
        pytest.skip("evaluations are Python calls only on the eager torch path")
    var = variable(rosenbrock_start())
    loss = Counted(rosenbrock(var))
    opt = cls()
    result = opt.minimize(loss, [var], steps=40, gradient_tolerance=1e-12)
    assert result.function_evaluations == loss.calls == int(opt.function_evaluations)


# ------------------------------------------------------------------ compiled once, reused


@pytest.mark.parametrize("cls", LINE_SEARCH_OPTIMIZERS)
def test_a_later_call_reuses_the_compiled_loop_and_continues_the_run(cls):
    var = variable(rosenbrock_start())
    loss = Counted(rosenbrock(var))
    opt = cls()
    first = opt.minimize(loss, [var], steps=10)
    traced = loss.calls
    second = opt.minimize(loss, [var], steps=10)
    if keras.backend.backend() != "torch":
        assert loss.calls == traced  # no retrace: the loss's Python body did not run again
    assert second.losses[0] == pytest.approx(first.loss, rel=1e-14)  # it goes on from where it stopped
    # The last loss and gradient were reused: no evaluation before the first step.
    assert second.function_evaluations == int(opt.function_evaluations) - first.function_evaluations
    whole = cls().minimize(rosenbrock(variable(rosenbrock_start())), [variable(rosenbrock_start())], steps=1)
    assert whole.function_evaluations >= 1


@pytest.mark.parametrize("cls", LINE_SEARCH_OPTIMIZERS)
def test_two_halves_equal_one_run(cls):
    """10 + 10 steps of the same loss (memory and last point carried over, the compiled
    loop reused) = 20 steps, to the bit."""
    var = variable(rosenbrock_start())
    opt, loss = cls(), rosenbrock(var)
    opt.minimize(loss, [var], steps=10)
    opt.minimize(loss, [var], steps=10)
    halves = np.asarray(ops.convert_to_numpy(var))
    var2 = variable(rosenbrock_start())
    cls().minimize(rosenbrock(var2), [var2], steps=20)
    np.testing.assert_array_equal(halves, ops.convert_to_numpy(var2))
    # A new loss function for the second half: the optimizer cannot know it is the same,
    # so it evaluates it afresh at the last point (memory kept) in a newly compiled
    # function. Equal up to that evaluation's rounding carried through 10 steps of
    # Rosenbrock: 0 on TF 2.21, JAX, torch; 5.3e-13 (relative 5e-11) on TF 2.16.2, whose
    # XLA rounds the separately compiled gradient differently (0 without XLA).
    var3 = variable(rosenbrock_start())
    opt = cls()
    opt.minimize(rosenbrock(var3), [var3], steps=10)
    opt.minimize(rosenbrock(var3), [var3], steps=10)
    np.testing.assert_allclose(ops.convert_to_numpy(var3), halves, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cls", LINE_SEARCH_OPTIMIZERS)
def test_reset_forgets_the_run_but_keeps_the_learning_rate(cls):
    var = variable(rosenbrock_start())
    opt = cls(learning_rate=0.5)
    first = opt.minimize(rosenbrock(var), [var], steps=15)
    var.assign(rosenbrock_start())
    opt.reset()
    assert int(opt.iterations) == 0 and int(opt.function_evaluations) == 0
    assert float(opt.learning_rate) == 0.5
    again = opt.minimize(rosenbrock(var), [var], steps=15)
    np.testing.assert_array_equal(again.losses, first.losses)


def test_a_callback_runs_every_k_steps_with_the_variables_at_the_new_point(capsys):
    var = variable(rosenbrock_start())
    seen = []
    result = ko.LBFGS().minimize(rosenbrock(var), [var], steps=25, report_every=10, verbose=True,
                                 callback=lambda step, loss: seen.append((step, loss, float(rosenbrock(var)()))))
    assert [step for step, _, _ in seen] == [9, 19, 24]
    for step, loss, now in seen:
        assert loss == result.losses[step] and now < loss  # the loss before that step; the point after it
    printed = capsys.readouterr().out
    assert "step 10" in printed and "step 20" in printed and "step budget reached" in printed


@pytest.mark.parametrize("cls", LINE_SEARCH_OPTIMIZERS)
def test_a_zero_learning_rate_is_refused(cls):
    with pytest.raises(ValueError, match="learning_rate"):
        cls(learning_rate=0.0)


# ------------------------------------------------------------------ SecondOrder.fit


def classifier(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])


LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.mark.parametrize("cls", LINE_SEARCH_OPTIMIZERS)
def test_full_batch_fit_reuses_the_last_evaluation(cls):
    """Each step starts from the loss and gradient its predecessor's search ended with:
    evaluations = the searches' + 1 (the first step's), shuffled full batch included."""
    x, y = digits_subset(128)
    model = ko.SecondOrder(classifier())
    model.compile(optimizer=cls(), loss=LOSS)
    model.fit(x, y, batch_size=128, epochs=6, shuffle=True, verbose=0)
    opt = model.optimizer
    assert int(opt.iterations) == 6
    searches = int(opt.function_evaluations) - 1
    assert searches >= 6  # each search evaluates at least once
    # Against the same run without reuse (one evaluation more per step): a fresh batch each step.
    fresh = ko.SecondOrder(classifier())
    fresh.compile(optimizer=cls(), loss=LOSS)
    for _ in range(6):
        fresh.fit(x, y, batch_size=128, epochs=1, shuffle=False, verbose=0)
        fresh.optimizer._last_valid.assign(0)  # forget the last point (as on another batch)
    assert int(fresh.optimizer.function_evaluations) == int(opt.function_evaluations) + 5


@pytest.mark.parametrize("cls", LINE_SEARCH_OPTIMIZERS)
def test_fit_stops_at_the_gradient_tolerance(cls):
    x, y = digits_subset(128)
    model = ko.SecondOrder(classifier(), gradient_tolerance=1e-3)
    model.compile(optimizer=cls(), loss=LOSS)
    history = model.fit(x, y, batch_size=128, epochs=500, verbose=0).history
    epochs = len(history["loss"])
    assert epochs < 500 and history["converged"][-1] == 1.0 and history["gradient_norm_inf"][-1] <= 1e-3
    assert all(c == 0.0 for c in history["converged"][:-1])
    # The converged step moved nothing and evaluated nothing (its start was reused).
    assert int(model.optimizer.iterations) == epochs - 1
    evaluations = int(model.optimizer.function_evaluations)
    before = [np.asarray(w) for w in model.get_weights()]
    model.fit(x, y, batch_size=128, epochs=3, verbose=0)
    assert int(model.optimizer.function_evaluations) - evaluations <= 1
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", LINE_SEARCH_OPTIMIZERS)
def test_mini_batches_are_warned_about_once(cls):
    x, y = digits_subset(128)
    model = ko.SecondOrder(classifier())
    model.compile(optimizer=cls(), loss=LOSS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    ours = [w for w in caught if "full-batch" in str(w.message)]
    assert len(ours) == 1 and "batch_size=128" in str(ours[0].message)


def test_loss_only_fit_makes_no_extra_forward_pass():
    """On torch (eager, so each forward pass is a Python call of the layer): a full-batch
    step runs the model once per evaluation; with a compiled metric, once more."""
    if keras.backend.backend() != "torch":
        pytest.skip("forward passes are Python calls only on torch")

    class Counting(keras.layers.Dense):
        calls = 0

        def call(self, inputs):
            Counting.calls += 1
            return super().call(inputs)

    x, y = digits_subset(64)
    for metrics, extra in (([], 0), (["accuracy"], 1)):
        keras.utils.set_random_seed(0)
        model = ko.SecondOrder(keras.Sequential([keras.Input((64,)), Counting(10)]))
        model.compile(optimizer=ko.LBFGS(), loss=LOSS, metrics=metrics)
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)  # builds
        Counting.calls, evaluations = 0, int(model.optimizer.function_evaluations)
        model.fit(x, y, batch_size=64, epochs=3, verbose=0)
        assert Counting.calls == int(model.optimizer.function_evaluations) - evaluations + 3 * extra, metrics
        # train_on_batch too; without other metrics it returns the loss alone, as Keras does.
        Counting.calls, evaluations = 0, int(model.optimizer.function_evaluations)
        out = model.train_on_batch(x, y)
        assert Counting.calls == int(model.optimizer.function_evaluations) - evaluations + extra, metrics
        assert np.ndim(out) == 0 if not metrics else len(out) == 2
