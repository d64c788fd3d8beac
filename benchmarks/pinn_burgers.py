"""The physics-informed Burgers problem (Raissi, Perdikaris & Karniadakis 2019, Sec. 3.1) at
equal iteration counts: our L-BFGS beside scipy's L-BFGS-B, torch.optim.LBFGS (torch
backend), optax.lbfgs (JAX backend) and DeepXDE's schedule (Adam, then L-BFGS) — wall
time, evaluations, final loss and error, in one run (CPU; one Keras backend per process).

The workload is ``keras_optlab.lab.burgers``: the 2-[20×8]-1 tanh network (3,021 weights),
N_u = 100 initial/boundary points, N_f = --n-f Latin-hypercube collocation points (10,000,
the paper's), the loss MSE_u + MSE_f with u_t, u_x, u_xx through the backend's autodiff.
Every contender starts from the same weights and data (``--seed``: ``pinn_model(seed)``,
``training_data(seed)``), in ``--dtype`` (float32, the paper's and DeepXDE's default, or
float64), and runs exactly ``--iterations`` N iterations (1,000) with 50 correction pairs
and up to 50 evaluations per line search — no stopping test that can fire earlier:

    contender        what                                                  its budget
    lbfgs            keras_optlab.optimizers.LBFGS(history=50,             minimize(steps=N): no gradient
                     max_evaluations=50).minimize(loss_fn, weights)        or loss tolerance, no
                     (the whole loop compiled; its strong-Wolfe search)    evaluation budget
    scipy_lbfgsb     scipy.optimize.minimize(method="L-BFGS-B") on         maxiter=N, maxcor=50, maxls=50,
                     burgers.flat_loss_and_grad (the same loss and         ftol=0, gtol=0, maxfun=50·N
                     gradient, traced once; a host round trip per call)
    torch_lbfgs      torch.optim.LBFGS(history_size=50, line_search_fn=    max_iter=N, max_eval=50·N,
                     "strong_wolfe") on burgers.torch_closure (torch)      tolerance_grad=0, tolerance_change=0
    optax_lbfgs      optax.lbfgs(memory_size=50), its zoom line search     a lax.while_loop of N iterations
                     (max_linesearch_steps=50, otherwise optax's default),
                     the whole loop in one jax.jit, on burgers.jax_loss (JAX)
    adam_then_lbfgs  DeepXDE's schedule: --adam-steps full-batch steps     Adam steps, then N iterations
                     of keras_optlab.optimizers.Adam(1e-3) (one compiled
                     step — loss, gradient, apply — per call, called from
                     Python, as Keras' fit with steps_per_execution=1; the
                     autodiff adapter's ``compiled``: tf.function without
                     XLA, jax.jit, eager torch), then the lbfgs contender's
                     optimizer for N iterations

Only the first four are "equal iterations"; the fifth is a further row (DeepXDE's PINN
examples use 10,000–15,000 Adam steps before L-BFGS; --adam-steps sets it).

Timing. One-time work is done first, untimed, and reported apart (``compile_s``): ours
compiles its whole loop at a first ``minimize`` call of 2 steps and runs a second such
call after ``reset()`` (on JAX the eager code around the loop compiles each op at its
first use); ``compile_s`` is the two calls' time less 4 timed per-iteration times.
Every timed call then starts after ``optimizer.reset()`` (memory and counters
forgotten, the compiled loop kept) with the initial weights assigned again. scipy's
oracle is traced by one call (and timed over 3 more: ``oracle_call_ms``, what each of
scipy's evaluations costs, host round trip included); torch runs 2 iterations untimed
(lazy initialization; ``warmup_s``); optax's loop is compiled ahead of time
(``jax.jit(...).lower(params).compile()``) and run once untimed (a first execution
costs more than the later ones; ``compile_s`` = the compile plus that excess); the Adam
step is traced by one call, whose update is then undone (weights and Adam's state
restored). Then ``--repeats`` rounds (3): in each, every contender runs once from the
start, in turn (a burst of load from another process hits every contender of its
round). Wall time = the median over rounds (ours: ``MinimizeResult.seconds``; the
others: ``time.perf_counter`` around the solve, after which the result is on the
host). Ratios in the same run: wall time lbfgs ÷ each peer (the ratio of medians, and
the median of the per-round ratios) and the per-iteration times.

Evaluations of (J, ∇J): ``function_evaluations`` (ours), ``nfev`` (scipy), ``func_evals``
(torch's state), and for optax the calls of J counted by a ``jax.debug.callback`` in one
more, untimed run (``--quick``: the sum of its line search's ``num_linesearch_steps``).
Final loss: every contender's final weights evaluated by the same oracle
(``flat_loss_and_grad``, the training loss); relative L2 error: ``relative_l2_error`` on
the paper's 256 × 100 grid (exact solution by Cole–Hopf). The loss at the start is
computed by each framework's own path (the oracle, ``torch_closure``, ``jax_loss``) and
checked equal.

Run from the repository root (one backend and dtype per process):

    nice .venv/bin/python benchmarks/pinn_burgers.py --backend tensorflow --dtype float32
    nice .venv/bin/python benchmarks/pinn_burgers.py --backend jax --dtype float64   # or torch
    .venv/bin/python benchmarks/pinn_burgers.py --quick                              # smoke run

``--quick``: N_f = 200, 20 iterations, 20 Adam steps, one round. ``--contenders`` runs a
subset (``lbfgs`` always runs); ``--threads`` (1) the CPU threads of every framework;
``--iterations``, ``--adam-steps``, ``--n-f``, ``--repeats``, ``--seed``. Results: ``--json``
(default ``benchmarks/results/pinn_burgers_<dtype>_<backend>_cpu.json``; ``''`` for none;
``--quick`` writes none unless asked) with the date, backend, dtype, CPU model, cores,
threads, load average and library versions.

References: Raissi, Perdikaris & Karniadakis (2019), J. Comput. Phys. 378, 686–707;
Lu, Meng, Mao & Karniadakis (2021), "DeepXDE: a deep learning library for solving
differential equations", SIAM Review 63(1); Goodfellow, Bengio & Courville (2016),
Sec. 8.6.3; Nocedal & Wright (2006), Alg. 7.4–7.5.
"""

import argparse
import datetime
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import (  # noqa: E402
    BACKENDS, backend_and_json, installed, limit_threads, rerun_with_backend, select_backend, sync, write_json,
)


def option_from_argv(argv, name, default):
    """The value of ``--name V`` / ``--name=V`` in ``argv``: read before TensorFlow and
    JAX start (their thread pools and JAX's 64-bit mode are fixed when they load)."""
    for i, arg in enumerate(argv):
        if arg == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return default


ARGV = sys.argv[1:] if __name__ == "__main__" else []
select_backend(__name__ == "__main__")  # before keras is imported
THREADS = int(option_from_argv(ARGV, "threads", 1))
if THREADS == 1:
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
if option_from_argv(ARGV, "dtype", "float32") == "float64":
    os.environ.setdefault("JAX_ENABLE_X64", "1")  # float64 in JAX (Keras' JAX backend and optax)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from newton_step import framework_versions  # noqa: E402
from optimizer_step import device_info, versions  # noqa: E402  (one copy of the device block)

from keras_optlab.curvature.autodiff import for_backend  # noqa: E402
from keras_optlab.lab import burgers  # noqa: E402
from keras_optlab.optimizers import LBFGS, Adam  # noqa: E402

HISTORY = 50  # correction pairs, every L-BFGS here (the paper's maxcor)
LINE_SEARCH = 50  # evaluations per line search at most (the paper's maxls)
WARMUP_STEPS = 2  # iterations of the untimed first call of ours and torch
PEERS = {"scipy_lbfgsb": "scipy", "torch_lbfgs": "torch", "optax_lbfgs": "optax"}
# The loss at the start by the oracle, torch_closure and jax_loss: the same Keras model
# and ops on one backend, so equal to rounding of a sum of N_f squares; relative bounds
# of ~1000 ε of the dtype leave a wide margin.
AGREEMENT = {"float32": 1e-4, "float64": 1e-12}


# --------------------------------------------------------------------------- the contenders
#
# Each contender: ``prepare()`` (untimed one-time work; returns a dict of its seconds),
# ``run()`` (one timed solve from the start weights; returns wall_s, iterations,
# evaluations, message and the final weights as a float64 vector).


class Ours:
    """keras_optlab's LBFGS.minimize, the whole loop compiled once."""

    def __init__(self, bench):
        self.bench = bench
        self.optimizer = LBFGS(history=HISTORY, max_evaluations=LINE_SEARCH)
        self.loss_fn = burgers.pinn_loss(bench.model, bench.data)

    def solve(self, steps):
        """From wherever the weights are, ``steps`` iterations, no tolerance (only a line
        search failing along −∇J, or a non-finite loss, stops it earlier)."""
        self.optimizer.reset()
        return self.optimizer.minimize(self.loss_fn, self.bench.model.trainable_variables, steps=steps,
                                       gradient_tolerance=None, loss_tolerance=None,
                                       max_function_evaluations=None)

    def prepare(self):
        # The first call traces and compiles the loop; the second, after reset(), runs
        # once more the eager code around it (on JAX each eager op compiles at its first use).
        calls = []
        for _ in range(2):
            self.bench.start()
            calls.append(self.solve(WARMUP_STEPS))
        return {"warmup_calls_s": [c.seconds for c in calls], "warmup_iterations": sum(c.iterations for c in calls)}

    def run(self):
        self.bench.start()
        result = self.solve(self.bench.iterations)
        sync([v.value for v in self.bench.model.trainable_variables])
        return {"wall_s": result.seconds, "iterations": result.iterations,
                "evaluations": result.function_evaluations, "message": result.message,
                "reported_loss": result.loss, "weights": burgers.flat_weights(self.bench.model)}


class Scipy:
    """scipy's L-BFGS-B on burgers.flat_loss_and_grad (traced once)."""

    def __init__(self, bench):
        self.bench = bench
        self.fun = burgers.flat_loss_and_grad(bench.model, bench.data)
        n = bench.iterations
        self.options = {"maxiter": n, "maxcor": HISTORY, "maxls": LINE_SEARCH, "ftol": 0.0, "gtol": 0.0,
                        "maxfun": LINE_SEARCH * n}

    def prepare(self):
        start = time.perf_counter()
        self.fun(self.bench.w0)  # traces the oracle
        compile_s = time.perf_counter() - start
        calls = []
        for _ in range(3):  # what one evaluation costs scipy: nfev of these, plus L-BFGS-B's own work
            start = time.perf_counter()
            self.fun(self.bench.w0)
            calls.append(time.perf_counter() - start)
        return {"compile_s": compile_s, "oracle_call_ms": 1e3 * statistics.median(calls)}

    def run(self):
        import scipy.optimize

        start = time.perf_counter()
        result = scipy.optimize.minimize(self.fun, self.bench.w0, jac=True, method="L-BFGS-B", options=self.options)
        wall = time.perf_counter() - start
        return {"wall_s": wall, "iterations": int(result.nit), "evaluations": int(result.nfev),
                "message": str(result.message), "reported_loss": float(result.fun),
                "weights": np.asarray(result.x, np.float64)}


class Torch:
    """torch.optim.LBFGS on burgers.torch_closure (torch backend, eager)."""

    def __init__(self, bench):
        self.bench = bench

    def solve(self, iterations):
        import torch

        self.bench.start()
        optimizer = torch.optim.LBFGS(burgers.torch_parameters(self.bench.model), lr=1.0, max_iter=iterations,
                                      max_eval=LINE_SEARCH * iterations, tolerance_grad=0.0, tolerance_change=0.0,
                                      history_size=HISTORY, line_search_fn="strong_wolfe")
        closure = burgers.torch_closure(self.bench.model, self.bench.data, optimizer)
        start = time.perf_counter()
        optimizer.step(closure)
        wall = time.perf_counter() - start
        state = optimizer.state[optimizer.param_groups[0]["params"][0]]
        return wall, state

    def prepare(self):
        wall, _ = self.solve(WARMUP_STEPS)  # torch's lazy initialization, untimed
        return {"warmup_s": wall}

    def run(self):
        import torch

        wall, state = self.solve(self.bench.iterations)
        # A run that stops early says why, as far as torch tells: it keeps no message.
        return {"wall_s": wall, "iterations": int(state["n_iter"]), "evaluations": int(state["func_evals"]),
                "message": "torch.optim.LBFGS keeps no stopping reason", "torch_threads": torch.get_num_threads(),
                "weights": burgers.flat_weights(self.bench.model)}


def optax_solver(fun, iterations, count_calls=False):
    """optax's L-BFGS loop (its documented pattern: value_and_grad_from_state + while_loop)
    for exactly ``iterations`` iterations, under ``jax.jit``; returns (params, final
    value, line-search steps). ``count_calls``: J also counts its calls on the host."""
    import jax
    import jax.numpy as jnp
    import optax

    if count_calls:
        calls = [0]
        plain = fun

        def fun(params):
            jax.debug.callback(lambda: calls.__setitem__(0, calls[0] + 1))
            return plain(params)

    linesearch = optax.scale_by_zoom_linesearch(max_linesearch_steps=LINE_SEARCH, initial_guess_strategy="one")
    solver = optax.lbfgs(memory_size=HISTORY, linesearch=linesearch)
    value_and_grad = optax.value_and_grad_from_state(fun)

    def solve(params):
        def step(carry):
            params, state, k, line_search_steps = carry
            value, grad = value_and_grad(params, state=state)
            updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=fun)
            steps = optax.tree_utils.tree_get(state, "num_linesearch_steps")
            return optax.apply_updates(params, updates), state, k + 1, line_search_steps + steps

        def unfinished(carry):
            return carry[2] < iterations

        params, state, _, steps = jax.lax.while_loop(
            unfinished, step, (params, solver.init(params), jnp.asarray(0), jnp.asarray(0)))
        return params, optax.tree_utils.tree_get(state, "value"), steps

    jitted = jax.jit(solve)
    return (jitted, calls) if count_calls else jitted


class Optax:
    """optax.lbfgs, the whole loop one jax.jit (JAX backend)."""

    def __init__(self, bench):
        self.bench = bench
        bench.start()
        self.fun, params = burgers.jax_loss(bench.model, bench.data)
        self.params0 = [np.array(p) for p in params]  # host copies: nothing donated or shared

    def prepare(self):
        import jax

        start = time.perf_counter()
        self.compiled = optax_solver(self.fun, self.bench.iterations).lower(self.params0).compile()
        compile_s = time.perf_counter() - start
        # The first execution of an executable costs more than the later ones (measured
        # here: 0.70 s against 0.14–0.17 s on the --quick problem): one untimed run.
        start = time.perf_counter()
        jax.block_until_ready(self.compiled(self.params0))
        return {"ahead_of_time_compile_s": compile_s, "first_run_s": time.perf_counter() - start}

    def run(self):
        import jax

        start = time.perf_counter()
        params, value, steps = jax.block_until_ready(self.compiled(self.params0))
        wall = time.perf_counter() - start
        return {"wall_s": wall, "iterations": self.bench.iterations, "evaluations": int(steps),
                "evaluations_counted_by": "sum of the zoom line search's num_linesearch_steps",
                "message": f"{self.bench.iterations} iterations (a loop of that length)",
                "reported_loss": float(value),
                "weights": np.concatenate([np.asarray(p, np.float64).ravel() for p in params])}

    def count_evaluations(self):
        """The calls of J in one more, untimed run (compiled anew, with a host callback)."""
        import jax

        jitted, calls = optax_solver(self.fun, self.bench.iterations, count_calls=True)
        jax.block_until_ready(jitted(self.params0))
        return calls[0]


class AdamThenLBFGS:
    """DeepXDE's schedule: full-batch Adam(1e-3) steps, then our L-BFGS for N iterations
    (the lbfgs contender's optimizer, its compiled loop reused)."""

    def __init__(self, bench, ours):
        self.bench, self.ours = bench, ours
        variables = list(bench.model.trainable_variables)
        self.adam = Adam(1e-3)
        self.adam.build(variables)
        self.adam_start = [np.array(ops.convert_to_numpy(v)) for v in self.adam.variables]
        adapter = for_backend("benchmarks/pinn_burgers.py")
        loss_fn = ours.loss_fn

        def adam_step():
            loss, grads = adapter.loss_and_gradient(loss_fn, variables)
            self.adam.apply(grads, variables)
            return loss

        self.step = adapter.compiled(adam_step, variables + list(self.adam.variables), assigns=True)

    def restart(self):
        self.bench.start()
        for variable, value in zip(self.adam.variables, self.adam_start):
            variable.assign(value)

    def prepare(self):
        self.restart()
        start = time.perf_counter()
        sync(self.step())  # traces the step; its update is undone by the next restart
        return {"compile_s": time.perf_counter() - start,
                "note": "the L-BFGS loop was compiled by the lbfgs contender"}

    def run(self):
        self.restart()
        start = time.perf_counter()
        loss = None
        for _ in range(self.bench.adam_steps):
            loss = self.step()
        sync([loss] + [v.value for v in self.bench.model.trainable_variables])
        adam_s = time.perf_counter() - start
        after_adam = self.bench.oracle_loss(burgers.flat_weights(self.bench.model))
        result = self.ours.solve(self.bench.iterations)
        return {"wall_s": adam_s + result.seconds, "adam_s": adam_s, "lbfgs_s": result.seconds,
                "adam_steps": self.bench.adam_steps, "lbfgs_iterations": result.iterations,
                "iterations": self.bench.adam_steps + result.iterations,
                "evaluations": self.bench.adam_steps + result.function_evaluations,
                "lbfgs_evaluations": result.function_evaluations, "loss_after_adam": after_adam,
                "message": f"Adam: {self.bench.adam_steps} steps; L-BFGS: {result.message}",
                "reported_loss": result.loss, "weights": burgers.flat_weights(self.bench.model)}


# --------------------------------------------------------------------------- the bench


class Bench:
    """The model, data and start shared by every contender, and the measuring oracle."""

    def __init__(self, args):
        keras.utils.set_random_seed(args.seed)
        self.model = burgers.pinn_model(seed=args.seed, dtype=args.dtype)
        self.data = burgers.training_data(n_f=args.n_f, seed=args.seed, dtype=args.dtype)
        self.w0 = burgers.flat_weights(self.model)
        self.iterations, self.adam_steps = args.iterations, args.adam_steps
        self.grid = burgers.reference_grid()
        self._oracle = burgers.flat_loss_and_grad(self.model, self.data)

    def start(self):
        burgers.assign_flat_weights(self.model, self.w0)

    def oracle_loss(self, weights):
        """The training loss at ``weights`` (the model is left there)."""
        return self._oracle(weights)[0]

    def error(self, weights):
        burgers.assign_flat_weights(self.model, weights)
        return burgers.relative_l2_error(self.model, self.grid)

    def agreement_at_start(self):
        """J(w₀) by the oracle and by the peer's own path on this backend."""
        check = {"loss_oracle": self.oracle_loss(self.w0)}
        self.start()
        if keras.backend.backend() == "torch" and installed("torch"):
            import torch

            dummy = torch.optim.SGD(burgers.torch_parameters(self.model), lr=0.0)
            check["loss_torch_closure"] = float(burgers.torch_closure(self.model, self.data, dummy)().detach())
        if keras.backend.backend() == "jax":
            fun, params = burgers.jax_loss(self.model, self.data)
            check["loss_jax_loss"] = float(fun(params))
        reference = check["loss_oracle"]
        spread = max(abs(v - reference) for v in check.values())
        check["max_relative_difference"] = spread / abs(reference)
        return check


CONTENDERS = ("lbfgs", "scipy_lbfgsb", "torch_lbfgs", "optax_lbfgs", "adam_then_lbfgs")


def contenders(bench, backend, chosen, skipped):
    """The runners of ``chosen`` (lbfgs always: the ratios and the last row need it) that
    this backend runs and whose library is installed; the others in ``skipped``, why."""
    ours = Ours(bench)
    out = {"lbfgs": ours}
    wanted = {"scipy_lbfgsb": Scipy, "torch_lbfgs": Torch if backend == "torch" else None,
              "optax_lbfgs": Optax if backend == "jax" else None}
    for name, make in wanted.items():
        if make is None or name not in chosen:
            continue
        if not installed(PEERS[name]):
            skipped[name] = f"{PEERS[name]} is not installed"
            continue
        out[name] = make(bench)
    if "adam_then_lbfgs" in chosen:
        out["adam_then_lbfgs"] = AdamThenLBFGS(bench, ours)
    return out


def ratio(a, b):
    return a / b if a is not None and b else None


def measure(args, backend):
    bench = Bench(args)
    skipped = {}
    runners = contenders(bench, backend, args.contenders, skipped)
    check = bench.agreement_at_start()
    if check["max_relative_difference"] > AGREEMENT[args.dtype]:
        raise RuntimeError(f"the loss at the start differs between the contenders' paths: {check}")
    print(f"\nBurgers PINN on {backend}, {args.dtype}: {len(bench.w0)} weights, N_f {args.n_f}, seed {args.seed}; "
          f"{args.iterations} L-BFGS iterations each, {args.repeats} rounds; loss at start {check['loss_oracle']:.6g}",
          flush=True)
    prepared = {}
    for name, runner in runners.items():
        prepared[name] = runner.prepare()
        print(f"  prepared {name}: {prepared[name]}", flush=True)
    rounds = {name: [] for name in runners}
    for r in range(args.repeats):
        for name, runner in runners.items():
            out = runner.run()
            rounds[name].append(out)
            print(f"  round {r + 1}: {name:16} {out['wall_s']:8.2f} s  {out['iterations']} iterations, "
                  f"{out['evaluations']} evaluations", flush=True)
    results = {}
    for name, runs in rounds.items():
        # Every round starts from the same point: the last round's figures stand for all
        # (final_loss_runs shows whether the rounds ended at the same loss).
        final_losses = [bench.oracle_loss(run["weights"]) for run in runs]
        weights = runs[-1]["weights"]
        out = {key: value for key, value in runs[-1].items() if key != "weights"}
        out.update(prepared[name])
        for key in [key for key in out if key.endswith("_s") and key in runs[-1]]:  # wall_s, adam_s, lbfgs_s
            out[f"{key}_runs"] = [run[key] for run in runs]
            out[key] = statistics.median(out[f"{key}_runs"])
        out["per_iteration_ms"] = 1e3 * out["wall_s"] / max(out["iterations"], 1)
        out["final_loss"], out["final_loss_runs"] = final_losses[-1], final_losses
        out["relative_l2_error"] = bench.error(weights)
        results[name] = out
    # One-time work: the untimed calls' excess over what their iterations cost in a timed run.
    lbfgs = results["lbfgs"]
    lbfgs["compile_s"] = max(0.0, sum(lbfgs["warmup_calls_s"]) - lbfgs["warmup_iterations"] *
                             lbfgs["per_iteration_ms"] / 1e3)
    if "optax_lbfgs" in results:
        out = results["optax_lbfgs"]
        out["compile_s"] = out["ahead_of_time_compile_s"] + max(0.0, out["first_run_s"] - out["wall_s"])
    if "optax_lbfgs" in runners and not args.quick:
        optax_out = results["optax_lbfgs"]
        optax_out["line_search_steps"] = optax_out["evaluations"]
        optax_out["evaluations"] = runners["optax_lbfgs"].count_evaluations()
        optax_out["evaluations_counted_by"] = "calls of J counted by a host callback in one more, untimed run"
    for name, out in results.items():
        print(f"  {name:16} iterations {out['iterations']:6d}  evaluations {out['evaluations']:6d}  "
              f"wall {out['wall_s']:8.2f} s ({out['per_iteration_ms']:7.2f} ms/iteration)  "
              f"loss {out['final_loss']:.4e}  error {out['relative_l2_error']:.3e}", flush=True)
    ratios = {}
    for peer in ("scipy_lbfgsb", "torch_lbfgs", "optax_lbfgs"):
        if peer not in results:
            continue
        paired = [ours["wall_s"] / theirs["wall_s"] for ours, theirs in zip(rounds["lbfgs"], rounds[peer])]
        ratios[f"wall_lbfgs_over_{peer}"] = ratio(lbfgs["wall_s"], results[peer]["wall_s"])
        ratios[f"wall_lbfgs_over_{peer}_paired_median"] = statistics.median(paired)
        ratios[f"per_iteration_lbfgs_over_{peer}"] = ratio(lbfgs["per_iteration_ms"],
                                                           results[peer]["per_iteration_ms"])
    ratios["targets"] = {"wall_lbfgs_over_scipy_lbfgsb": "<= 1.0", "wall_lbfgs_over_torch_lbfgs": "<= 1.0",
                         "wall_lbfgs_over_optax_lbfgs": "<= 1.0"}
    print("  ratios: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items() if isinstance(v, float)), flush=True)
    for peer, why in skipped.items():
        print(f"  skipped {peer}: {why}")
    return {"weights": len(bench.w0), "loss_at_start": check["loss_oracle"], "agreement_at_start": check,
            "contenders": results, "ratios": ratios, "skipped": skipped}


# --------------------------------------------------------------------------- main


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--iterations", type=int, default=None, help="L-BFGS iterations, every contender (1000; --quick 20)")
    p.add_argument("--adam-steps", type=int, default=None,
                   help="Adam steps before L-BFGS in the DeepXDE row (1000; --quick 20)")
    p.add_argument("--n-f", type=int, default=None, help="collocation points (10000; --quick 200)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (3; --quick 1)")
    p.add_argument("--contenders", default=",".join(CONTENDERS),
                   help="comma-separated subset (default all; lbfgs always runs; torch_lbfgs only on torch, "
                   "optax_lbfgs only on jax)")
    p.add_argument("--seed", type=int, default=0, help="the weights and data (0)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads of every framework (TF intra/inter-op, torch, XLA; default 1)")
    p.add_argument("--quick", action="store_true", help="smoke run: N_f 200, 20 iterations, 20 Adam steps, 1 round")
    p.add_argument("--json", default=None, help="where to write results (default: see above); '' for none")
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    quick = args.quick
    if quick and args.json is None:
        args.json = ""
    args.iterations = args.iterations or (20 if quick else 1000)
    args.adam_steps = args.adam_steps if args.adam_steps is not None else (20 if quick else 1000)
    args.n_f = args.n_f or (200 if quick else 10_000)
    args.repeats = args.repeats or (1 if quick else 3)
    for name in ("iterations", "n_f", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.adam_steps < 0:
        parser.error("--adam-steps must be >= 0")
    args.contenders = [name.strip() for name in args.contenders.split(",") if name.strip()]
    unknown = sorted(set(args.contenders) - set(CONTENDERS))
    if unknown:
        parser.error(f"--contenders: unknown {unknown}; choose from {list(CONTENDERS)}")
    backend, argv = backend_and_json(args, argv, f"pinn_burgers_{args.dtype}")
    if backend != keras.backend.backend():
        return rerun_with_backend(__file__, backend, argv, args.json)
    limit_threads(args.threads)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    clock = time.perf_counter()
    part = measure(args, backend)
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    peer_versions = {module: __import__(module).__version__ for module in ("scipy", "optax", "jax", "torch")
                     if installed(module)}
    report = {
        "benchmark": "pinn_burgers",
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/pinn_burgers.py", *argv]),
        "backend": backend,
        "dtype": args.dtype,
        "device": device_info(),
        "threads": args.threads,
        "versions": {**versions(), **framework_versions(backend), **peer_versions},
        "load_average_1_5_15min": {"before": list(load_before) if load_before else None,
                                   "after": list(load_after) if load_after else None},
        "run_s": time.perf_counter() - clock,
        "config": {"iterations": args.iterations, "adam_steps": args.adam_steps, "n_f": args.n_f,
                   "n_u": 100, "seed": args.seed, "repeats": args.repeats, "quick": quick, "history": HISTORY,
                   "contenders": args.contenders,
                   "max_line_search_evaluations": LINE_SEARCH,
                   "wall": "median of the rounds, one-time tracing/compilation apart (compile_s, warmup_s)"},
        **part,
    }
    if args.json:
        write_json(report, args.json)
    return report


if __name__ == "__main__":
    main()
