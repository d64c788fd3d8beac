"""L-BFGS and nonlinear CG (Sec. 8.6.2–8.6.3) against scipy, torch.optim.LBFGS and optax.lbfgs:
evaluations, iterations and wall time to the same gradient tolerance; and, on the digits
autoencoder, loss against wall time beside Adam and Hessian-free (CPU; any backend).

Part 1 — to a tolerance. Every contender minimizes the same float64 function from the
same start until ‖∇J‖∞ ≤ ``gtol`` (or an iteration cap):

    problem      J(θ)                                                          θ₀
    logistic     multinomial logistic regression on the digits training set    0
                 (keras_optlab.lab.data.load_digits, 64 → 10 with bias, mean
                 cross-entropy + ½λ‖θ‖², λ = --l2: strictly convex)
    rosenbrock   Σᵢ 100(θᵢ₊₁ − θᵢ²)² + (1 − θᵢ)², n = --rosenbrock-n            (−1.2, 1, −1.2, …)
    autoencoder  the 64-32-16-4-16-32-64 tanh/sigmoid autoencoder of            Glorot-uniform kernels
                 benchmarks/hessian_free_autoencoder.py, pixel MSE on its       drawn in NumPy (--seed;
                 1,400 training digits (pixels / 16), full batch; non-convex:   the same on every
                 different contenders may end at different minimizers           backend), zero biases

    contender        what                                                 stops when
    lbfgs            keras_optlab.LBFGS(history=10).minimize(...)         ‖g‖∞ ≤ gtol (gradient_tolerance)
    nonlinear_cg     keras_optlab.NonlinearCG().minimize(...) (PR+)       ‖g‖∞ ≤ gtol
    scipy_lbfgsb     scipy.optimize.minimize(method="L-BFGS-B",           projected ‖g‖∞ ≤ gtol (ftol=0)
                     maxcor=10)
    scipy_cg         scipy.optimize.minimize(method="CG") (PR+)           ‖g‖∞ ≤ gtol (norm=inf)
    torch_lbfgs      torch.optim.LBFGS(history_size=10,                   ‖g‖∞ ≤ tolerance_grad=gtol
                     line_search_fn="strong_wolfe", tolerance_change=0)
    optax_lbfgs      optax.lbfgs(memory_size=10) (its zoom line search),  ‖g‖∞ ≤ gtol
                     the whole loop in one jax.jit'd lax.while_loop

The loss is written once (``*_loss(theta, data, k)``) and evaluated through keras.ops
(ours; scipy's oracle: the loss and gradient of the Keras backend's autodiff, traced
once), torch (torch_lbfgs) and jax.numpy (optax_lbfgs); the script checks at θ₀ that the
three agree. Every contender's final point is evaluated by the same float64 oracle: the
final loss and ‖g‖∞ reported are computed the same way for all, and the distance to
scipy L-BFGS-B's minimizer is ‖θ − θ_scipy‖∞.

Evaluations: evaluations of (J, ∇J) — ``function_evaluations`` (ours), ``nfev``
(scipy), ``func_evals`` (torch's state), and the calls of J counted by a
``jax.debug.callback`` in an untimed run (optax). Wall time: the median of ``--repeats``
runs. One-time tracing/compilation is excluded and reported apart: ours compiles its
whole loop at the first ``minimize`` call on a loss (tf.function with XLA / jax.jit;
torch runs eagerly) and reuses it, so the timed runs follow one untimed call, each
after ``optimizer.reset()``, and the compile time is that first call's excess over
them; optax's loop is compiled ahead of time
(``jax.jit(...).lower(θ₀).compile()``, timed). scipy's wall time includes its oracle's
per-call overhead (a host round trip per evaluation). Ratios in the same run:
evaluations lbfgs/scipy_lbfgsb and nonlinear_cg/scipy_cg (target ≤ 1.2), wall time
lbfgs/torch_lbfgs and lbfgs/optax_lbfgs (target ≤ 1.0). A peer whose library is not
installed is skipped and the report says so.

Part 2 — at equal wall time (the autoencoder, float32, Keras models from the same initial
weights, as benchmarks/hessian_free_autoencoder.py): Adam 1e-3 and 3e-3 (batch 64),
Hessian-free Gauss-Newton (``Newton(solver="cg", curvature="gauss_newton",
adaptive_damping=True, damping=1, max_cg_iterations=30)``, batch 700), and LBFGS and
NonlinearCG full batch (``SecondOrder(model)``, ``fit(batch_size=1400)``: one step per
epoch). Each trains for ``--seconds`` of ``fit`` time; unlike hessian_free_autoencoder.py,
tracing is excluded: one untimed epoch first traces the train function, then weights and
optimizer state go back to the start (that epoch's time is reported). After each chunk
of epochs the training MSE (the objective, full batch) and validation MSE are recorded.
Reported: the losses each reaches at the budget and at ¼, ½ of it.

Run from the repository root:

    nice .venv/bin/python benchmarks/quasi_newton.py                     # $KERAS_BACKEND or tensorflow
    nice .venv/bin/python benchmarks/quasi_newton.py --backend jax       # or torch
    nice .venv/bin/python benchmarks/quasi_newton.py --quick --json ''   # smoke run (small sizes)

Results: ``--json`` (default ``benchmarks/results/quasi_newton_<backend>_cpu.json``; ``''``
for none) with the CPU model, cores, date, backend and library versions.

References: Goodfellow, Bengio & Courville, *Deep Learning*, 2016, Sec. 8.6.2–8.6.3;
Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, Ch. 5–7; Martens (2010),
"Deep learning via Hessian-free optimization", ICML.
"""

import argparse
import datetime
import os
import statistics
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import (  # noqa: E402
    BACKENDS, backend_and_json, installed, limit_threads, rerun_with_backend, select_backend, sync, write_json,
)

select_backend(__name__ == "__main__")  # before keras is imported
os.environ.setdefault("JAX_ENABLE_X64", "1")  # float64 in JAX (Keras' JAX backend and optax) before jax loads


def threads_from_argv(argv):
    """``--threads N`` (default 1): the CPU threads every framework gets; read before jax and
    TensorFlow start (XLA's and TF's thread pools are sized when they start)."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 1


THREADS = threads_from_argv(sys.argv[1:] if __name__ == "__main__" else [])
if THREADS == 1:
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from optimizer_step import device_info, versions  # noqa: E402  (one copy of the device block)
from newton_step import framework_versions  # noqa: E402

import keras_optlab as ko  # noqa: E402
from keras_optlab.curvature.autodiff import for_backend  # noqa: E402
from keras_optlab.lab.data import load_digits  # noqa: E402

HISTORY = 10  # every L-BFGS here keeps 10 pairs (scipy maxcor, torch history_size, optax memory_size)
AE_LAYERS = (32, 16, 4, 16, 32)  # benchmarks/hessian_free_autoencoder.py's LAYERS
AE_TRAIN = 1400  # its split: 1,400 training digits, the rest (397) validation
CURVE_POINTS = 120  # points of each loss-against-time curve kept in the JSON
PEERS = {"scipy_lbfgsb": "scipy", "scipy_cg": "scipy", "torch_lbfgs": "torch", "optax_lbfgs": "optax"}


# --------------------------------------------------------------------------- one loss, three frameworks


def array_ops(framework):
    """The few array functions the losses use, for ``framework`` ("keras", "torch", "jax"):
    ``k.m`` the module (sum, exp, reshape), ``k.mm`` a float64-exact matrix product
    (keras: einsum, see the Keras 3.15 torch note in tests/optimizers/test_newton.py),
    ``k.tanh``, ``k.logsumexp`` over axis 1, ``k.const`` a NumPy array as a float64 tensor.

    keras' tanh is 1 − 2/(e²ᵃ + 1): Keras 3.15's ``ops.tanh`` (and ``ops.sin``) on the JAX
    backend return float32 for a float64 input (this script measured the loss 2e-10 off
    torch's and jax's at θ₀ through it); ``ops.exp`` keeps float64."""
    if framework == "keras":
        return types.SimpleNamespace(m=ops, mm=lambda a, b: ops.einsum("ij,jk->ik", a, b),
                                     tanh=lambda a: 1.0 - 2.0 / (ops.exp(2.0 * a) + 1.0),
                                     logsumexp=lambda a: ops.logsumexp(a, axis=1),
                                     const=lambda a: ops.convert_to_tensor(np.asarray(a, "float64")))
    if framework == "torch":
        import torch

        return types.SimpleNamespace(m=torch, mm=torch.matmul, tanh=torch.tanh,
                                     logsumexp=lambda a: torch.logsumexp(a, dim=1),
                                     const=lambda a: torch.as_tensor(np.asarray(a, "float64")))
    import jax
    import jax.numpy as jnp

    return types.SimpleNamespace(m=jnp, mm=jnp.matmul, tanh=jnp.tanh, logsumexp=lambda a: jax.nn.logsumexp(a, axis=1),
                                 const=lambda a: jnp.asarray(np.asarray(a, "float64")))


def logistic_loss(theta, d, k):
    """Mean softmax cross-entropy of x W + b (θ = [vec W (64×10, row-major), b]) + ½λ‖θ‖²."""
    n, classes = d["onehot"].shape
    features = d["x"].shape[1]
    w = k.m.reshape(theta[: features * classes], (features, classes))
    logits = k.mm(d["x"], w) + theta[features * classes:]
    data_term = (k.m.sum(k.logsumexp(logits)) - k.m.sum(d["onehot"] * logits)) / n
    return data_term + 0.5 * d["l2"] * k.m.sum(theta * theta)


def rosenbrock_loss(theta, d, k):
    return k.m.sum(100.0 * (theta[1:] - theta[:-1] ** 2) ** 2 + (1.0 - theta[:-1]) ** 2)


def autoencoder_shapes():
    widths = (64, *AE_LAYERS, 64)
    return list(zip(widths[:-1], widths[1:]))


def autoencoder_loss(theta, d, k):
    """Pixel MSE of the tanh autoencoder with a sigmoid output, θ = [vec W₁, b₁, vec W₂, …]
    (Keras' Dense order: kernel (in, out) row-major, then bias)."""
    shapes = autoencoder_shapes()
    h, offset = d["x"], 0
    for i, (m, n) in enumerate(shapes):
        w = k.m.reshape(theta[offset: offset + m * n], (m, n))
        b = theta[offset + m * n: offset + m * n + n]
        offset += m * n + n
        a = k.mm(h, w) + b
        h = k.tanh(a) if i < len(shapes) - 1 else 1.0 / (1.0 + k.m.exp(-a))
    return k.m.sum((h - d["x"]) ** 2) / (d["x"].shape[0] * d["x"].shape[1])


def digits_pixels():
    """hessian_free_autoencoder.py's data: scikit-learn's digits, pixels / 16 in [0, 1], shuffled
    by default_rng(0), the first 1,400 for training (float32)."""
    from sklearn.datasets import load_digits as sklearn_digits

    x = (sklearn_digits().data / 16.0).astype("float32")
    order = np.random.default_rng(0).permutation(len(x))
    return x[order[:AE_TRAIN]], x[order[AE_TRAIN:]]


def autoencoder_model():
    """hessian_free_autoencoder.py's architecture (weights from :func:`autoencoder_start`)."""
    layers = [keras.Input((64,))] + [keras.layers.Dense(n, activation="tanh") for n in AE_LAYERS]
    return keras.Sequential(layers + [keras.layers.Dense(64, activation="sigmoid")])


def autoencoder_start(seed):
    """Keras' default Dense initialization drawn in NumPy (the same on every backend, whose
    own generators differ): Glorot-uniform kernels U(±√(6/(fan_in + fan_out))), zero
    biases; the list of arrays in Keras' weight order."""
    rng = np.random.default_rng(seed)
    weights = []
    for m, n in autoencoder_shapes():
        limit = np.sqrt(6.0 / (m + n))
        weights += [rng.uniform(-limit, limit, size=(m, n)), np.zeros(n)]
    return weights


def problems(args):
    """{name: problem}: NumPy data, float64 start, loss, tolerance and iteration cap."""
    x_train, y_train, _, _ = load_digits()
    n = args.logistic_n or len(x_train)
    x_logistic = x_train[:n].astype("float64")
    rosenbrock_start = np.full(args.rosenbrock_n, -1.2)
    rosenbrock_start[1::2] = 1.0
    pixels, _ = digits_pixels()
    pixels = pixels[: args.autoencoder_n].astype("float64")
    ae_start = np.concatenate([w.ravel() for w in autoencoder_start(args.seed)])
    return {
        "logistic": types.SimpleNamespace(
            loss=logistic_loss, data={"x": x_logistic, "onehot": np.eye(10)[y_train[:n]], "l2": args.l2},
            x0=np.zeros(64 * 10 + 10), gtol=args.gtol, max_iterations=args.max_iterations,
            description=f"multinomial logistic regression, digits ({n} samples, 64 -> 10 with bias), "
            f"L2 {args.l2:g}, float64"),
        "rosenbrock": types.SimpleNamespace(
            loss=rosenbrock_loss, data={}, x0=rosenbrock_start, gtol=args.gtol, max_iterations=args.max_iterations,
            description=f"chained Rosenbrock, n = {args.rosenbrock_n}, start (-1.2, 1, ...), float64"),
        "autoencoder": types.SimpleNamespace(
            loss=autoencoder_loss, data={"x": pixels}, x0=ae_start, gtol=args.autoencoder_gtol,
            max_iterations=args.autoencoder_iterations,
            description=f"autoencoder 64-{'-'.join(map(str, AE_LAYERS))}-64 tanh/sigmoid, pixel MSE, "
            f"{len(pixels)} digits full batch, float64, Glorot start (seed {args.seed})"),
    }


def bound(problem, framework):
    """The problem's loss as a function of θ alone, in ``framework``."""
    k = array_ops(framework)
    data = {key: (k.const(v) if isinstance(v, np.ndarray) else v) for key, v in problem.data.items()}
    return lambda theta: problem.loss(theta, data, k)


class Oracle:
    """J and ∇J in float64 through keras.ops and the backend's autodiff, traced once: scipy's
    oracle and the one every final point is measured with."""

    def __init__(self, problem):
        self.var = keras.Variable(problem.x0, dtype="float64", name="theta")
        self.loss_fn = (lambda f: lambda: f(self.var))(bound(problem, "keras"))
        adapter = for_backend("benchmarks/quasi_newton.py")
        self._fn = adapter.compiled(lambda: adapter.loss_and_gradient(self.loss_fn, [self.var]), [self.var])

    def __call__(self, theta):
        self.var.assign(np.asarray(theta, "float64"))
        loss, (grad,) = self._fn()
        return float(ops.convert_to_numpy(loss)), np.asarray(ops.convert_to_numpy(grad), "float64").ravel()


# --------------------------------------------------------------------------- contenders


def run_ours(make_optimizer, problem, oracle, repeats, loss_fn=None):
    """``minimize`` from θ₀ to ‖g‖∞ ≤ gtol: one untimed first call (it traces and compiles
    the whole loop; its excess over a timed run is the compile time), then ``repeats``
    timed calls, each from θ₀ after ``optimizer.reset()`` (memory and counters empty,
    the compiled loop kept). Wall time is ``MinimizeResult.seconds``. ``loss_fn``: the
    loss to minimize over ``oracle.var`` (default: the keras.ops one)."""
    var = oracle.var
    loss_fn = loss_fn or oracle.loss_fn
    optimizer = make_optimizer()
    var.assign(problem.x0)
    first = optimizer.minimize(loss_fn, [var], steps=problem.max_iterations, gradient_tolerance=problem.gtol)
    walls = []
    for _ in range(repeats):
        var.assign(problem.x0)
        optimizer.reset()
        result = optimizer.minimize(loss_fn, [var], steps=problem.max_iterations, gradient_tolerance=problem.gtol)
        sync(var.value)
        walls.append(result.seconds)
    theta = np.asarray(ops.convert_to_numpy(var), "float64")
    wall = statistics.median(walls)
    return {
        "theta": theta,
        "evaluations": result.function_evaluations,
        "iterations": result.iterations,
        "message": result.message,
        "line_search_failures": int(ops.convert_to_numpy(optimizer.line_search_failures)),
        "wall_s_runs": walls,
        "wall_with_compile_s_runs": [first.seconds],
        "compile_s_runs": [max(0.0, first.seconds - wall)],
        "step_ms_median": 1e3 * wall / max(result.iterations, 1),
    }


def run_scipy(method, problem, oracle, repeats):
    import scipy.optimize

    options = {"gtol": problem.gtol, "maxiter": problem.max_iterations}
    if method == "L-BFGS-B":
        options.update(maxcor=HISTORY, ftol=0.0, maxfun=50 * problem.max_iterations)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = scipy.optimize.minimize(oracle, problem.x0, jac=True, method=method, options=options)
        times.append(time.perf_counter() - start)
    return {"theta": np.asarray(result.x, "float64"), "evaluations": int(result.nfev), "iterations": int(result.nit),
            "wall_s_runs": times, "message": str(result.message)}


def run_torch(problem, repeats):
    import torch

    loss = bound(problem, "torch")
    times = []
    for repeat in range(repeats + 1):  # the first run, untimed, warms torch up (lazy initialization)
        theta = torch.tensor(problem.x0, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([theta], lr=1.0, max_iter=problem.max_iterations,
                                      max_eval=50 * problem.max_iterations, tolerance_grad=problem.gtol,
                                      tolerance_change=0.0, history_size=HISTORY, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            value = loss(theta)
            value.backward()
            return value

        start = time.perf_counter()
        optimizer.step(closure)
        times.append(time.perf_counter() - start)
    times = times[1:]
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    return {"theta": theta.detach().numpy().astype("float64"), "evaluations": int(state["func_evals"]),
            "iterations": int(state["n_iter"]), "wall_s_runs": times, "torch_threads": torch.get_num_threads()}


def optax_solver(fun, gtol, max_iterations):
    """optax's L-BFGS loop (its documented pattern: value_and_grad_from_state + while_loop),
    stopping when the gradient kept in the state has ‖g‖∞ ≤ gtol."""
    import jax
    import jax.numpy as jnp
    import optax

    solver = optax.lbfgs(memory_size=HISTORY)
    value_and_grad = optax.value_and_grad_from_state(fun)

    def solve(x0):
        def step(carry):
            params, state, iteration, line_search_steps = carry
            value, grad = value_and_grad(params, state=state)
            updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=fun)
            steps = optax.tree_utils.tree_get(state, "num_linesearch_steps")
            return optax.apply_updates(params, updates), state, iteration + 1, line_search_steps + steps

        def unfinished(carry):
            _, state, iteration, _ = carry
            grad = optax.tree_utils.tree_get(state, "grad")
            return (iteration == 0) | ((iteration < max_iterations) & (jnp.max(jnp.abs(grad)) > gtol))

        return jax.lax.while_loop(unfinished, step, (x0, solver.init(x0), jnp.asarray(0), jnp.asarray(0)))

    return jax.jit(solve)


def run_optax(problem, repeats, count_calls=True):
    import jax
    import jax.numpy as jnp

    if not jax.config.jax_enable_x64:
        raise RuntimeError("optax_lbfgs needs float64: JAX was imported with jax_enable_x64 off")
    loss = bound(problem, "jax")
    x0 = jnp.asarray(problem.x0)
    start = time.perf_counter()
    compiled = optax_solver(loss, problem.gtol, problem.max_iterations).lower(x0).compile()
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        params, _, iterations, line_search_steps = jax.block_until_ready(compiled(x0))
        times.append(time.perf_counter() - start)
    out = {"theta": np.asarray(params, "float64"), "iterations": int(iterations),
           "line_search_steps": int(line_search_steps), "wall_s_runs": times, "compile_s_runs": [compile_s]}
    out["evaluations"] = out["line_search_steps"]
    if count_calls:
        # The evaluations of J counted in one more (untimed, compiled anew) run by a host
        # callback in J: the figure reported; the line search's own count is kept beside it.
        calls = [0]

        def counted(theta):
            jax.debug.callback(lambda: calls.__setitem__(0, calls[0] + 1))
            return loss(theta)

        jax.block_until_ready(optax_solver(counted, problem.gtol, problem.max_iterations)(x0))
        out["evaluations"] = calls[0]
    out["evaluations_counted_by"] = ("callback in J" if count_calls
                                     else "sum of the zoom line search's num_linesearch_steps")
    return out


def race_to_tolerance(name, problem, repeats, skipped, count_optax_calls=True):
    """Part 1 on one problem: every contender, its final point measured by one oracle."""
    oracle = Oracle(problem)
    check = check_agreement(problem, oracle)
    print(f"\n[{name}] {problem.description}; gtol {problem.gtol:g}, at most {problem.max_iterations} iterations; "
          f"{len(problem.x0)} parameters; loss at start {check['loss_keras']:.6g}", flush=True)
    runners = {
        "lbfgs": lambda: run_ours(lambda: ko.LBFGS(history=HISTORY), problem, oracle, repeats),
        "nonlinear_cg": lambda: run_ours(lambda: ko.NonlinearCG(), problem, oracle, repeats),
        "scipy_lbfgsb": lambda: run_scipy("L-BFGS-B", problem, oracle, repeats),
        "scipy_cg": lambda: run_scipy("CG", problem, oracle, repeats),
        "torch_lbfgs": lambda: run_torch(problem, repeats),
        "optax_lbfgs": lambda: run_optax(problem, repeats, count_optax_calls),
    }
    native = {"torch": "torch", "jax": "jax"}.get(keras.backend.backend())
    if native is not None:
        # Ours on the peer's own loss (torch / jax.numpy ops on the variable's value,
        # which minimize substitutes): the optimizers compared on one function.
        loss_native = (lambda f: lambda: f(oracle.var.value))(bound(problem, native))
        runners["lbfgs_same_loss"] = lambda: run_ours(lambda: ko.LBFGS(history=HISTORY), problem, oracle, repeats,
                                                      loss_native)
    results, finals = {}, {}
    for contender, runner in runners.items():
        if contender in PEERS and not installed(PEERS[contender]):
            skipped[contender] = f"{PEERS[contender]} is not installed"
            continue
        out = runner()
        finals[contender] = out.pop("theta")
        loss, grad = oracle(finals[contender])
        grad_inf = float(np.max(np.abs(grad)))
        out.update(final_loss=loss, final_grad_inf=grad_inf, reached_gtol=grad_inf <= problem.gtol,
                   wall_s=statistics.median(out["wall_s_runs"]))
        if "compile_s_runs" in out:
            out["compile_s"] = statistics.median(out["compile_s_runs"])
        results[contender] = out
        compile_note = f" (+{1e3 * out['compile_s']:.0f} ms compile)" if "compile_s" in out else ""
        print(f"  {contender:13} evals {out['evaluations']:6d}  iterations {out['iterations']:6d}  "
              f"wall {1e3 * out['wall_s']:9.1f} ms{compile_note}  loss {loss:.10g}  |g|inf {grad_inf:.2e}", flush=True)
    if "scipy_lbfgsb" in finals:
        for contender, out in results.items():
            out["distance_to_scipy_lbfgsb_inf"] = float(np.max(np.abs(finals[contender] - finals["scipy_lbfgsb"])))
    return {"description": problem.description, "parameters": len(problem.x0), "gtol": problem.gtol,
            "max_iterations": problem.max_iterations, "agreement_at_start": check, "contenders": results,
            "ratios": ratios(results)}


def check_agreement(problem, oracle):
    """J at θ₀ in keras.ops (the oracle), torch and jax (those installed): the same function."""
    loss_keras, _ = oracle(problem.x0)
    check = {"loss_keras": loss_keras}
    for framework, module in (("torch", "torch"), ("jax", "jax")):
        if installed(module):
            value = bound(problem, framework)(array_ops(framework).const(problem.x0))
            check[f"loss_{framework}"] = float(np.asarray(value.detach() if framework == "torch" else value))
    spread = max(abs(v - loss_keras) for v in check.values())
    check["max_abs_difference"] = spread
    # float64 sums of ~1e5 terms of O(1): agreement to ~1e-12 relative; 1e-10 leaves margin.
    if spread > 1e-10 * max(1.0, abs(loss_keras)):
        raise RuntimeError(f"the loss differs between frameworks at the start: {check}")
    return check


def ratios(results):
    def ratio(a, b, key):
        return results[a][key] / results[b][key] if a in results and b in results and results[b][key] > 0 else None

    return {
        "evaluations_lbfgs_over_scipy_lbfgsb": ratio("lbfgs", "scipy_lbfgsb", "evaluations"),
        "evaluations_nonlinear_cg_over_scipy_cg": ratio("nonlinear_cg", "scipy_cg", "evaluations"),
        "wall_lbfgs_over_torch_lbfgs": ratio("lbfgs", "torch_lbfgs", "wall_s"),
        "wall_lbfgs_over_optax_lbfgs": ratio("lbfgs", "optax_lbfgs", "wall_s"),
        # Ours on the peer's own loss function (torch or jax.numpy): the optimizers alone.
        "wall_lbfgs_same_loss_over_torch_lbfgs": ratio("lbfgs_same_loss", "torch_lbfgs", "wall_s"),
        "wall_lbfgs_same_loss_over_optax_lbfgs": ratio("lbfgs_same_loss", "optax_lbfgs", "wall_s"),
        "targets": {"evaluations": "<= 1.2", "wall": "<= 1.0"},
    }


# --------------------------------------------------------------------------- part 2: equal wall time


def wall_time_contenders(x_train):
    full = len(x_train)
    hf = dict(damping=1.0, solver="cg", adaptive_damping=True, max_cg_iterations=30, curvature="gauss_newton")
    # (name, wrap in SecondOrder, optimizer factory, batch size, epochs per chunk)
    return [
        ("adam_1e-3_batch64", False, lambda: ko.Adam(1e-3), 64, 1),
        ("adam_3e-3_batch64", False, lambda: ko.Adam(3e-3), 64, 1),
        ("hf_gauss_newton_batch700", True, lambda: ko.Newton(**hf), 700, 1),
        ("lbfgs_full_batch", True, lambda: ko.LBFGS(history=HISTORY), full, 5),
        ("nonlinear_cg_full_batch", True, lambda: ko.NonlinearCG(), full, 5),
    ]


def race_at_equal_time(seconds, seed, autoencoder_n):
    """Part 2: each contender trains for ``seconds`` of fit time; (time, training MSE,
    validation MSE) after every chunk."""
    x_train, x_val = digits_pixels()
    x_train = x_train[:autoencoder_n]
    start_weights = [w.astype("float32") for w in autoencoder_start(seed)]
    print(f"\n[equal wall time] autoencoder, {len(x_train)} training / {len(x_val)} validation digits, float32, "
          f"{seconds:g} s of fit time each", flush=True)
    runs = {}
    for name, second_order, make_optimizer, batch_size, chunk in wall_time_contenders(x_train):
        inner = autoencoder_model()
        model = ko.SecondOrder(inner) if second_order else inner
        model.compile(optimizer=make_optimizer(), loss="mse")
        # Tracing excluded: one untimed epoch traces the train function, then the weights
        # and the optimizer's state (built first, so that it can be saved) go back to the start.
        model.optimizer.build(model.trainable_variables)
        initial_state = [np.array(ops.convert_to_numpy(v)) for v in model.optimizer.variables]
        inner.set_weights(start_weights)
        start = time.perf_counter()
        model.fit(x_train, x_train, batch_size=batch_size, epochs=1, verbose=0)
        trace_s = time.perf_counter() - start
        inner.set_weights(start_weights)
        for variable, value in zip(model.optimizer.variables, initial_state):
            variable.assign(value)

        def measure():
            return (float(model.evaluate(x_train, x_train, batch_size=len(x_train), verbose=0)),
                    float(model.evaluate(x_val, x_val, batch_size=len(x_val), verbose=0)))

        curve = [(0.0, *measure())]
        elapsed, epochs = 0.0, 0
        while elapsed < seconds:
            start = time.perf_counter()
            model.fit(x_train, x_train, batch_size=batch_size, epochs=chunk, verbose=0)
            elapsed += time.perf_counter() - start
            epochs += chunk
            curve.append((elapsed, *measure()))
        at = {f"{fraction:g}": loss_at(curve, fraction * seconds) for fraction in (0.25, 0.5, 1.0)}
        runs[name] = {"batch_size": batch_size, "epochs": epochs, "steps": epochs * -(-len(x_train) // batch_size),
                      "first_epoch_with_tracing_s": trace_s, "epochs_per_chunk": chunk, "curve_points": len(curve),
                      "curve_s_train_val": thinned(curve, CURVE_POINTS),
                      "at_fraction_of_budget": at, "final_train_mse": curve[-1][1], "final_val_mse": curve[-1][2]}
        print(f"  {name:25} {epochs:5d} epochs in {elapsed:6.1f} s (+{trace_s:4.1f} s untimed first epoch): train MSE "
              f"{at['1']['train_mse']:.5f}, validation {at['1']['val_mse']:.5f} at {seconds:g} s", flush=True)
    return {"seconds": seconds, "train_samples": len(x_train), "val_samples": len(x_val), "dtype": "float32",
            "contenders": runs}


def thinned(curve, points):
    """At most ``points`` of ``curve``, evenly spaced in index, first and last kept (the JSON
    stays small; the figures above are read from the whole curve)."""
    if len(curve) <= points:
        return curve
    keep = np.unique(np.linspace(0, len(curve) - 1, points).round().astype(int))
    return [curve[i] for i in keep]


def loss_at(curve, t):
    """The last (train, validation) MSE recorded at or before time ``t``."""
    done = [point for point in curve if point[0] <= t]
    return {"time_s": done[-1][0], "train_mse": done[-1][1], "val_mse": done[-1][2]}


# --------------------------------------------------------------------------- main


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    p.add_argument("--gtol", type=float, default=1e-6,
                   help="‖g‖∞ tolerance, logistic and Rosenbrock (default 1e-6)")
    p.add_argument("--max-iterations", type=int, default=None,
                   help="iteration cap, logistic and Rosenbrock (default 3000; --quick 300)")
    p.add_argument("--l2", type=float, default=1e-3, help="logistic regression's λ (default 1e-3)")
    p.add_argument("--logistic-n", type=int, default=None,
                   help="training digits in the logistic problem (default all; --quick 300)")
    p.add_argument("--rosenbrock-n", type=int, default=None,
                   help="Rosenbrock dimension (default 100; --quick 10)")
    p.add_argument("--autoencoder-gtol", type=float, default=1e-5,
                   help="‖g‖∞ tolerance on the autoencoder (default 1e-5)")
    p.add_argument("--autoencoder-iterations", type=int, default=None,
                   help="iteration cap on the autoencoder (default 300; --quick 5)")
    p.add_argument("--autoencoder-n", type=int, default=None,
                   help="training digits of the autoencoder (default 1400; --quick 200)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed runs per contender (default 3; --quick 1)")
    p.add_argument("--seconds", type=float, default=None,
                   help="part 2's fit time per contender (default 30; --quick 0.5)")
    p.add_argument("--problems", default="logistic,rosenbrock,autoencoder",
                   help="part 1's problems, comma-separated (default all three)")
    p.add_argument("--skip-wall-time-race", action="store_true", help="part 1 only")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: small problems, one repeat, 0.5 s budgets, "
                   "optax's evaluations from its line search's count")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads of every framework (TF intra/inter-op, torch, XLA; default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="where to write results (default: see above); '' for none")
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    backend, argv = backend_and_json(args, argv, "quasi_newton")
    if backend != keras.backend.backend():
        return rerun_with_backend(__file__, backend, argv, args.json)
    limit_threads(args.threads)
    quick = args.quick
    args.max_iterations = args.max_iterations or (300 if quick else 3000)
    args.logistic_n = args.logistic_n or (300 if quick else None)
    args.rosenbrock_n = args.rosenbrock_n or (10 if quick else 100)
    args.autoencoder_iterations = args.autoencoder_iterations or (5 if quick else 300)
    args.autoencoder_n = args.autoencoder_n or (200 if quick else AE_TRAIN)
    repeats = args.repeats or (1 if quick else 3)
    seconds = args.seconds or (0.5 if quick else 30.0)
    print(f"quasi-Newton benchmark ({backend}), Keras {keras.__version__}; {repeats} timed runs per contender",
          flush=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    skipped = {}
    chosen = [name.strip() for name in args.problems.split(",") if name.strip()]
    available = problems(args)
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise SystemExit(f"--problems: unknown {unknown}; choose from {sorted(available)}")
    tolerance = {name: race_to_tolerance(name, available[name], repeats, skipped, count_optax_calls=not quick)
                 for name in chosen}
    wall = None if args.skip_wall_time_race else race_at_equal_time(seconds, args.seed, args.autoencoder_n)
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    print("\nratios (targets: evaluations <= 1.2, wall <= 1.0)")
    for name, part in tolerance.items():
        shown = {k: (None if v is None else round(v, 3)) for k, v in part["ratios"].items() if k != "targets"}
        print(f"  {name:12} {shown}")
    for peer, why in skipped.items():
        print(f"  skipped {peer}: {why}")
    peer_versions = {}
    for module in ("scipy", "optax", "jax", "torch"):
        if installed(module):
            peer_versions[module] = __import__(module).__version__
    report = {
        "benchmark": "quasi_newton",
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/quasi_newton.py", *argv]),
        "backend": backend,
        "device": device_info(),
        "versions": {**versions(), **framework_versions(backend), **peer_versions},
        "load_average_1_5_15min": {"before": list(load_before) if load_before else None,
                                   "after": list(load_after) if load_after else None},
        "config": {"repeats": repeats, "threads": args.threads, "history": HISTORY, "quick": quick, "seed": args.seed,
                   "l2": args.l2, "problems": chosen,
                   "wall": "median of the runs; ours and optax without tracing/compilation (compile_s apart)"},
        "skipped": skipped,
        "tolerance_race": tolerance,
        "equal_wall_time": wall,
    }
    if args.json:
        write_json(report, args.json)
    return report


if __name__ == "__main__":
    main()
