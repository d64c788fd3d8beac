"""Physics-informed Burgers' equation trained with L-BFGS alone (Raissi, Perdikaris &
Karniadakis 2019, Sec. 3.1; Goodfellow et al. 2016, Sec. 8.6.3).

u_t + u u_x − (0.01/π) u_xx = 0 on x ∈ [−1, 1], t ∈ [0, 1], u(0, x) = −sin(πx),
u(t, ±1) = 0; the 2-[20×8]-1 tanh network (3,021 weights) of
``keras_optlab.lab.burgers.pinn_model``; N_u = 100 initial/boundary points and
N_f = 10,000 Latin-hypercube collocation points; loss MSE_u + MSE_f. The paper trains
with scipy's L-BFGS-B: at most 50,000 iterations and 50,000 evaluations, 50 correction
pairs, 50 line-search steps, ftol = machine ε; its relative L2 error on the 256 × 100
grid is 6.7e-4. Here ``keras_optlab.optimizers.LBFGS(history=50, max_evaluations=50)``
with ``minimize(steps=…, max_function_evaluations=…, loss_tolerance=ε)`` — the whole
loop compiled, a progress line every ``--report`` steps — then the relative L2 error
against the exact solution (Cole–Hopf, computed in the package) and a figure like the
paper's Fig. 1: the predicted u(t, x), the exact one, the error, and slices at
t = 0.25, 0.5, 0.75.

Run: python examples/pinn_burgers.py [--quick] [--iterations N] [--history M]
     [--dtype float32|float64] [--seed S ...] [--backend B] [--json FILE]

``--quick`` trains 200 iterations on N_f = 2,000 points (a smoke run; its error is far
from the paper's). The default float32 is the paper's (TensorFlow 1's) precision; on
JAX float64 needs JAX_ENABLE_X64=1 (set here when --dtype float64).
"""

import argparse
import json
import os
import sys
import time


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=50_000, help="L-BFGS iterations and evaluations (50000)")
    parser.add_argument("--history", type=int, default=50, help="correction pairs (50, the paper's maxcor)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="seeds: data, weights (0)")
    parser.add_argument("--n-f", type=int, default=10_000, help="collocation points (10000)")
    parser.add_argument("--report", type=int, default=1000, help="progress line every this many steps")
    parser.add_argument("--backend", choices=["tensorflow", "jax", "torch"], default=None)
    parser.add_argument("--quick", action="store_true", help="200 iterations on 2,000 collocation points")
    parser.add_argument("--json", default=None, help="append one JSON line per seed to this file")
    parser.add_argument("--figure", default=None, help="figure path (default $OPTLAB_OUT or runs/ pinn_burgers.png)")
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.n_f, args.report = min(args.iterations, 200), min(args.n_f, 2000), 50
    for name in ("iterations", "history", "n_f", "report"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def train(args, seed):
    """One seed: the trained model, the MinimizeResult and the relative L2 error."""
    import keras
    import numpy as np

    from keras_optlab.lab import burgers
    from keras_optlab.optimizers import LBFGS

    keras.utils.set_random_seed(seed)
    model = burgers.pinn_model(seed=seed, dtype=args.dtype)
    loss_fn = burgers.pinn_loss(model, burgers.training_data(n_f=args.n_f, seed=seed, dtype=args.dtype))
    optimizer = LBFGS(history=args.history, max_evaluations=50)
    print(f"seed {seed}: L-BFGS(history={args.history}) on {keras.backend.backend()}, {args.dtype}, "
          f"{args.iterations} iterations at most", flush=True)
    result = optimizer.minimize(loss_fn, model.trainable_variables, steps=args.iterations,
                                max_function_evaluations=args.iterations,
                                loss_tolerance=float(np.finfo(np.float64).eps), report_every=args.report,
                                verbose=True)
    error = burgers.relative_l2_error(model)
    print(f"seed {seed}: relative L2 error {error:.3e} ({result.message}; {result.iterations} iterations, "
          f"{result.function_evaluations} evaluations, {result.seconds:.0f} s)", flush=True)
    return model, result, error


def figure(model, path):
    """Predicted u(t, x), exact u, |error| over the grid, and three time slices."""
    import keras
    import numpy as np

    from keras_optlab.lab import burgers
    from keras_optlab.lab.plots import new_figure, save

    grid = burgers.reference_grid()
    dtype = keras.backend.standardize_dtype(model.trainable_variables[0].dtype)
    predicted = np.asarray(keras.ops.convert_to_numpy(model(grid.points().astype(dtype))), np.float64)
    predicted = predicted.reshape(grid.u.shape)
    fig = new_figure("examples/pinn_burgers.py", figsize=(14, 7))
    axes = fig.subplots(2, 3)
    extent = [grid.t[0], grid.t[-1], grid.x[0], grid.x[-1]]
    # The two fields on one colour scale (u ∈ [−1, 1]); the error on its own.
    panels = ((predicted, "predicted u(t, x)", "RdBu_r", (-1.0, 1.0)),
              (grid.u, "exact u(t, x) (Cole–Hopf)", "RdBu_r", (-1.0, 1.0)),
              (np.abs(predicted - grid.u), "|predicted − exact|", "viridis", (None, None)))
    for ax, (values, title, cmap, (low, high)) in zip(axes[0], panels):
        image = ax.imshow(values.T, origin="lower", aspect="auto", extent=extent, cmap=cmap, vmin=low, vmax=high)
        ax.set_xlabel("t")
        ax.set_ylabel("x")
        ax.set_title(title)
        fig.colorbar(image, ax=ax)
    for ax, when in zip(axes[1], (0.25, 0.5, 0.75)):
        row = int(np.argmin(np.abs(grid.t - when)))
        ax.plot(grid.x, grid.u[row], color="0.2", linewidth=3, label="exact")
        ax.plot(grid.x, predicted[row], "--", color="tab:red", linewidth=1.5, label="predicted")
        ax.set_title(f"t = {grid.t[row]:.2f}")
        ax.set_xlabel("x")
        ax.set_ylabel("u")
        ax.set_ylim(-1.1, 1.1)
        ax.legend(loc="upper right")
    error = np.linalg.norm(predicted - grid.u) / np.linalg.norm(grid.u)
    fig.suptitle(f"Burgers' equation, PINN trained with keras_optlab L-BFGS: relative L2 error {error:.2e} "
                 "(Raissi et al. 2019: 6.7e-4)")
    save(fig, path)


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    if args.dtype == "float64":
        os.environ.setdefault("JAX_ENABLE_X64", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from keras_optlab.lab.plots import output_dir

    rows = []
    for seed in args.seed:
        started = time.perf_counter()
        model, result, error = train(args, seed)
        row = {"seed": seed, "backend": keras.backend.backend(), "dtype": args.dtype, "history": args.history,
               "n_f": args.n_f, "max_iterations": args.iterations, "relative_l2_error": error,
               "iterations": result.iterations, "function_evaluations": result.function_evaluations,
               "message": result.message, "final_loss": result.loss, "seconds": time.perf_counter() - started,
               "minimize_seconds": result.seconds, "date": time.strftime("%Y-%m-%d")}
        rows.append(row)
        if args.json:
            with open(args.json, "a") as handle:
                handle.write(json.dumps(row) + "\n")
        path = args.figure or os.path.join(output_dir(), f"pinn_burgers_seed{seed}.png")
        figure(model, path)
        print(f"wrote {path}", flush=True)
    if len(rows) > 1:
        errors = sorted(r["relative_l2_error"] for r in rows)
        print(f"median relative L2 error over {len(rows)} seeds: {errors[len(errors) // 2]:.3e} "
              f"(paper: 6.7e-4)")
    return rows


if __name__ == "__main__":
    main()
