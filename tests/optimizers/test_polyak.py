"""Polyak averaging, ``polyak="arithmetic"`` (Sec. 8.7.3), on every first-order optimizer.

The average is checked against ``np.mean`` of the recorded iterates. The recurrence
θ̂ₜ = θ̂ₜ₋₁ + (θₜ − θ̂ₜ₋₁)/t rounds three times per step (−, /, +), each by at most half an
ulp of max(|θ|, |θ̂|), and the factor (1 − 1/t) never amplifies an earlier error: after t
steps it is within 3·t·u·max|θ| of the exact mean (u = 2⁻⁵³ in float64, 2⁻²⁴ in float32),
and NumPy's pairwise mean is closer still. The tolerances below are that bound for the
steps taken (``_mean_tolerance``); a wrong count (t off by one) misses by about
|θₜ − θ̂|/t, orders of magnitude above it.
"""

import numpy as np
import pytest

import keras
import keras_optlab as ko
from tests.helpers import LOSS, digits_subset, make_mlp
from tests.optimizers.book import PROBLEMS
from tests.optimizers.book_cases import CASES, f32, run_keras
from tests.optimizers.cases import NAMES, OPTIMIZERS

pytestmark = pytest.mark.backend_agnostic

FIRST_ORDER = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "NesterovRMSProp", "Adam"]
STEPS = 30
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24}


def _mean_tolerance(dtype, steps, scale):
    """3·t·u·max|θ| (see the module docstring)."""
    return 3 * steps * UNIT_ROUNDOFF[dtype] * scale


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _drive(optimizer, theta0, grads, dtype="float64"):
    """Apply the gradients ``grads`` one per step to a variable starting at ``theta0``;
    return (variable, its iterates after every step, its averages after every step)."""
    var = keras.Variable(theta0, dtype=dtype)
    iterates, averages = [], []
    for g in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g, dtype)], [var])
        iterates.append(_numpy(var.value).copy())
        averages.append(_numpy(optimizer.average_of(var).value).copy())
    return var, iterates, averages


@pytest.mark.parametrize("case", FIRST_ORDER)
def test_average_is_the_mean_of_the_iterates_and_the_trajectory_is_the_books(case):
    """Float64 on the κ = 1000 quadratic of the book suite: the iterates are still the
    book's (test_float64_exact's 1e-13), and θ̂ after every step is their running mean."""
    cls, kwargs, make_ref = CASES[case]
    theta0, grad = PROBLEMS["quadratic"]()
    optimizer = cls(**kwargs, polyak="arithmetic")
    got = run_keras(optimizer, theta0, grad, steps=STEPS)
    want = make_ref(f32(kwargs["learning_rate"]))(theta0, grad, STEPS)
    scale = max(np.abs(w).max() for w in want)
    assert max(np.abs(g - w).max() for g, w in zip(got, want)) <= 1e-13 * scale
    average = _numpy(optimizer.averaged_variables[0].value)
    np.testing.assert_allclose(average, np.mean(got, axis=0), rtol=0, atol=_mean_tolerance("float64", STEPS, scale))
    assert int(_numpy(optimizer.averaged_steps)) == STEPS
    # The average is not the last iterate (the check above could not pass by accident).
    assert np.abs(average - got[-1]).max() > 1e3 * _mean_tolerance("float64", STEPS, scale)


@pytest.mark.parametrize("case", ["SGD", "Adam"])
def test_float32_average_within_float32_rounding(case):
    cls, kwargs, _ = CASES[case]
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(STEPS, 5))
    optimizer = cls(**kwargs, polyak="arithmetic")
    _, iterates, averages = _drive(optimizer, rng.normal(size=5), grads, dtype="float32")
    scale = np.abs(iterates).max()
    mean = np.mean(np.asarray(iterates, dtype="float64"), axis=0)
    np.testing.assert_allclose(averages[-1], mean, rtol=0, atol=_mean_tolerance("float32", STEPS, scale))
    assert averages[-1].dtype == np.float32


def test_before_the_first_step_the_average_is_the_weights():
    var = keras.Variable(np.array([1.5, -2.0]), dtype="float64")
    optimizer = ko.Momentum(0.1, polyak="arithmetic")
    optimizer.build([var])
    np.testing.assert_array_equal(_numpy(optimizer.average_of(var).value), [1.5, -2.0])
    assert int(_numpy(optimizer.averaged_steps)) == 0


@pytest.mark.parametrize("start", [0, 1, 4])
def test_polyak_start_is_a_burn_in(start):
    """During the first ``start`` steps θ̂ is a copy of θ; then the mean of the iterates
    after steps start+1, start+2, … (t counts those)."""
    grads = np.random.default_rng(1).normal(size=(10, 3))
    optimizer = ko.SGD(0.1, polyak="arithmetic", polyak_start=np.int64(start))
    _, iterates, averages = _drive(optimizer, np.zeros(3), grads)
    for k in range(start):
        np.testing.assert_array_equal(averages[k], iterates[k])  # a copy, exactly
    for k in range(start, 10):
        tol = _mean_tolerance("float64", k + 1, np.abs(iterates).max())
        np.testing.assert_allclose(averages[k], np.mean(iterates[start : k + 1], axis=0), rtol=0, atol=tol)
    assert int(_numpy(optimizer.averaged_steps)) == 10 - start


@pytest.mark.parametrize("weight_decay", [None, 0.01], ids=["no-decay", "decay"])
def test_skipped_nonfinite_steps_are_not_averaged(weight_decay):
    """With and without weight decay (the two ways a skip is undone off TF: selects in
    the rule, or snapshots)."""
    grads = np.random.default_rng(2).normal(size=(9, 3))
    grads[2, 1] = np.nan
    grads[6, 0] = np.inf
    optimizer = ko.Adam(0.05, polyak="arithmetic", polyak_start=1, skip_nonfinite=True, weight_decay=weight_decay)
    _, iterates, averages = _drive(optimizer, np.ones(3), grads)
    applied = [k for k in range(9) if np.isfinite(grads[k]).all()]
    assert int(_numpy(optimizer.skipped_steps)) == 2
    assert int(_numpy(optimizer.averaged_steps)) == len(applied) - 1  # the first applied one is burn-in
    np.testing.assert_array_equal(averages[2], averages[1])  # a skipped step leaves θ̂ alone
    want = np.mean([iterates[k] for k in applied[1:]], axis=0)
    np.testing.assert_allclose(averages[-1], want, rtol=0, atol=_mean_tolerance("float64", 9, np.abs(iterates).max()))


def test_accumulation_only_steps_are_not_averaged():
    grads = np.random.default_rng(3).normal(size=(6, 2))
    optimizer = ko.SGD(0.1, polyak="arithmetic", gradient_accumulation_steps=2)
    _, iterates, averages = _drive(optimizer, np.zeros(2), grads)
    assert int(_numpy(optimizer.averaged_steps)) == 3
    tol = _mean_tolerance("float64", 3, np.abs(iterates).max())
    np.testing.assert_allclose(averages[-1], np.mean(iterates[1::2], axis=0), rtol=0, atol=tol)


class _Iterates(keras.callbacks.Callback):
    """The weights after every training batch (synced first on JAX)."""

    def on_train_begin(self, logs=None):
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        if callable(getattr(self.model, "jax_state_sync", None)):
            self.model.jax_state_sync()
        self.seen.append([np.array(w) for w in self.model.get_weights()])


def _fit(name, **kwargs):
    x, y = digits_subset(96)
    model = make_mlp(hidden=8)
    model.compile(optimizer=OPTIMIZERS[name](**kwargs), loss=LOSS)
    record = _Iterates()
    model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0, callbacks=[record])
    return model, record.seen


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_fit_keeps_the_trajectory_and_finalizes_to_the_mean(name):
    """fit traces the step (tf.function, jax.jit) and takes the speed paths (TF's
    kernels, torch's in-place updates): the iterates are bit for bit those of a run
    without averaging, and at the end of fit the model holds their mean."""
    plain, plain_seen = _fit(name)
    model, seen = _fit(name, polyak="arithmetic")
    for a, b in zip(plain_seen, seen):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    if keras.backend.backend() in ("tensorflow", "torch"):  # the speed path was taken
        assert {model.optimizer.update_path(v) for v in model.trainable_variables} != {"ops"}
    # float32 weights, 6 steps: 3·6·2⁻²⁴ relative (module docstring).
    for final, *iterates in zip(model.get_weights(), *seen):
        mean = np.mean(np.asarray(iterates, dtype="float64"), axis=0)
        np.testing.assert_allclose(final, mean, rtol=0, atol=_mean_tolerance("float32", 6, np.abs(iterates).max()))
    np.testing.assert_array_equal(plain.get_weights()[0], plain_seen[-1][0])  # no polyak: no finalize


def test_keras_file_resumes_the_average_bit_for_bit(tmp_path):
    x, y = digits_subset(64)
    model = make_mlp(hidden=8)
    model.compile(optimizer=ko.Momentum(0.02, polyak="arithmetic", polyak_start=1), loss=LOSS)
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.optimizer.polyak == "arithmetic" and loaded.optimizer.polyak_start == 1
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(_numpy(a.value), _numpy(b.value))
    for m in (model, loaded):
        m.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert int(_numpy(loaded.optimizer.averaged_steps)) == 3  # 4 steps, 1 of burn-in
    for a, b in zip(model.optimizer.averaged_variables, loaded.optimizer.averaged_variables):
        np.testing.assert_array_equal(_numpy(a.value), _numpy(b.value))
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def _saved_state(optimizer_kwargs=None):
    var = keras.Variable(np.array([1.0, 2.0]), dtype="float32")
    optimizer = ko.SGD(0.1, polyak="arithmetic", **(optimizer_kwargs or {}))
    for _ in range(3):
        optimizer.apply([keras.ops.ones((2,))], [var])
    store = {}
    optimizer.save_own_variables(store)
    index = {id(v): str(i) for i, v in enumerate(optimizer.variables)}
    return var, store, index[id(optimizer.averaged_variables[0])], index[id(optimizer.averaged_steps)]


def test_loaded_average_is_checked():
    var, store, average_key, count_key = _saved_state()
    fresh = ko.SGD(0.1, polyak="arithmetic")
    fresh.build([var])
    fresh.load_own_variables(dict(store))  # the good state loads
    assert int(_numpy(fresh.averaged_steps)) == 3
    bad = dict(store, **{average_key: np.array([np.nan, 1.0], "float32")})
    with pytest.raises(ValueError, match="polyak_average.*NaN"):
        fresh.load_own_variables(bad)
    with pytest.raises(ValueError, match="polyak_steps.*>= 0"):
        fresh.load_own_variables(dict(store, **{count_key: np.array(-1)}))
    with pytest.raises(ValueError, match=r"more averaged steps than the optimizer took \(3\).*polyak_steps=4"):
        fresh.load_own_variables(dict(store, **{count_key: np.array(4)}))


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    optimizer = OPTIMIZERS[name](polyak="arithmetic", polyak_start=7)
    again = type(optimizer).from_config(optimizer.get_config())
    assert again.polyak == "arithmetic" and again.polyak_start == 7
    assert again.get_config() == optimizer.get_config()
    assert OPTIMIZERS[name]().get_config()["polyak"] is None


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(polyak="geometric"), ValueError, r"`polyak` must be one of \['arithmetic'\]. Received: polyak='geometric'"),
        (dict(polyak=True), TypeError, "`polyak` must be a string.*Received: polyak=True"),
        (dict(polyak_start=-1), ValueError, "`polyak_start` must be an integer in.*Received: polyak_start=-1"),
        (dict(polyak_start=2.0), TypeError, "`polyak_start` must be an integer.*Received: polyak_start=2.0"),
        (dict(polyak="arithmetic", use_ema=True), ValueError, "`polyak` and `use_ema`.*Received: polyak='arithmetic', use_ema=True"),
    ],
    ids=["kind", "type", "start-negative", "start-float", "with-ema"],
)
@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        OPTIMIZERS[name](**kwargs)


def test_newton_refuses_polyak():
    with pytest.raises(ValueError, match="`polyak` does not apply to Newton steps.*Received: polyak='arithmetic'"):
        ko.Newton(polyak="arithmetic")


def test_no_average_without_polyak():
    var = keras.Variable(np.zeros(2))
    optimizer = ko.SGD(0.1)
    optimizer.build([var])
    assert optimizer.averaged_variables is None and optimizer.averaged_steps is None
    with pytest.raises(ValueError, match="keeps no Polyak average.*polyak='arithmetic'"):
        optimizer.average_of(var)
    with pytest.raises(ValueError, match="not built yet"):
        ko.SGD(0.1, polyak="arithmetic").average_of(var)
    other = ko.SGD(0.1, polyak="arithmetic")
    other.build([var])
    with pytest.raises(ValueError, match="keeps no average of this variable"):
        other.average_of(keras.Variable(np.zeros(2)))


@pytest.mark.tensorflow_only
def test_built_inside_a_tf_function_copies_the_weights_once():
    """The slot's copy of the weights is its initializer: an optimizer first built while
    a tf.function is traced does not re-copy the weights at every call."""
    import tensorflow as tf

    var = keras.Variable(np.zeros(2), dtype="float64")
    optimizer = ko.SGD(1.0, polyak="arithmetic")

    @tf.function
    def step(g):
        optimizer.apply([g], [var])

    for k in range(4):
        step(tf.constant([1.0, float(k)], "float64"))
    iterates = -np.cumsum([[1.0, k] for k in range(4)], axis=0)
    np.testing.assert_array_equal(_numpy(var.value), iterates[-1])
    tol = _mean_tolerance("float64", 4, np.abs(iterates).max())
    np.testing.assert_allclose(_numpy(optimizer.averaged_variables[0].value), iterates.mean(axis=0), rtol=0, atol=tol)


def test_stateless_apply_under_jit():
    """JAX's stateless step (what fit runs) under jax.jit; torch runs stateless_apply
    eagerly; TF has no stateless_apply."""
    if keras.backend.backend() == "tensorflow":
        pytest.skip("TensorFlow optimizers have no stateless_apply (tf.distribute)")
    var = keras.Variable(np.zeros(3), dtype="float64")
    optimizer = ko.Adam(0.1, polyak="arithmetic", polyak_start=2)
    optimizer.build([var])
    grads = np.random.default_rng(4).normal(size=(6, 3))

    def step(opt_vars, weights, g):
        return optimizer.stateless_apply(opt_vars, [g], weights)

    if keras.backend.backend() == "jax":
        import jax

        step = jax.jit(step)
    # Copies: torch's in-place speed path writes into the tensors it is given.
    opt_vars = [keras.ops.copy(v.value) for v in optimizer.variables]
    weights = [keras.ops.copy(var.value)]
    iterates = []
    for g in grads:
        weights, opt_vars = step(opt_vars, weights, keras.ops.convert_to_tensor(g, "float64"))
        iterates.append(_numpy(weights[0]))
    state = dict(zip([id(v) for v in optimizer.variables], opt_vars))
    average = _numpy(state[id(optimizer.averaged_variables[0])])
    tol = _mean_tolerance("float64", 4, np.abs(iterates).max())
    np.testing.assert_allclose(average, np.mean(iterates[2:], axis=0), rtol=0, atol=tol)
    assert int(_numpy(state[id(optimizer.averaged_steps)])) == 4
    np.testing.assert_array_equal(_numpy(var.value), np.zeros(3))  # stateless: nothing written
