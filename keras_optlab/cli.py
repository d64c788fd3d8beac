"""The ``optlab`` command: the lab of Goodfellow et al. (2016), ch. 8, from a shell.

Each subcommand is registered by an ``_add_<name>`` function that adds its parser and
sets ``handler``; a handler takes the parsed arguments and returns the exit status.
Building the parser imports only :mod:`keras_optlab.lab.options` (the names and
defaults it shows; standard library only), so ``optlab --help`` and every subcommand's
``--help`` import neither Keras nor TensorFlow nor Keras Tuner. A handler imports what
it needs when it runs; matplotlib and scikit-learn come through the lab's ``require``, so
a missing ``lab`` extra is reported as a one-line message.

The argparse types (:func:`positive_int`, :func:`positive_float`,
:func:`output_directory`) live here; the lab's ``add_digits_search_arguments`` takes them
as arguments, so the lab never imports the CLI.

A user's mistake (a bad option, a missing or wrong file, a model the command cannot use)
is one line on stderr and exit status 2, as argparse's own; a missing ``lab`` extra is
one line and status 1. Keras' progress bars are drawn only on a terminal: into a pipe or
a file every command prints plain lines (Keras' ``Progbar`` writes ANSI colour codes
whenever ``os.name`` is ``posix``, whatever stdout is).
"""

import argparse
import dataclasses
import math
import os
import sys

from keras_optlab.lab import MissingExtraError
from keras_optlab.lab.options import (
    BACKEND_NAMES,
    DIGITS_EPOCHS,
    FIGURE_NAMES,
    RACE_OPTIMIZER_NAMES,
    SURFACE_NAMES,
    add_digits_search_arguments,
)

QUICK_EPOCHS = 3
QUICK_STEPS = 60


def _add_race(subparsers):
    parser = subparsers.add_parser(
        "race",
        help="race every optimizer on the textbook surfaces and on digits; write tables and figures",
        description=(
            "Run keras_optlab's optimizers (Goodfellow et al. 2016, Alg. 8.1-8.9, Sec. 8.6.3) from the same "
            "start on the textbook surfaces of ch. 8 (ill-conditioned quadratic, Rosenbrock, saddle, cliff, "
            "plateau, long-term dependency) and train the same MLP on scikit-learn's digits with each "
            "first-order one (and NonlinearCG or LBFGS when named). Prints markdown tables (and a progress "
            "bar on a terminal, else one line per run) and writes DIR/race.md, DIR/trajectories_*.png, "
            "DIR/surface_losses.png and DIR/loss_curves.png."
        ),
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help=f"passes over digits' training set (default {DIGITS_EPOCHS})"
    )
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="updates per surface run (default: each surface's own, 100 to 500)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a short run: {QUICK_EPOCHS} epochs, at most {QUICK_STEPS} steps per surface, no Newton")
    parser.add_argument("--problems", nargs="+", default=None, choices=[*SURFACE_NAMES, "digits"], metavar="PROBLEM",
                        help=f"problems to race (default all): {', '.join([*SURFACE_NAMES, 'digits'])}")
    parser.add_argument("--optimizers", nargs="+", default=None, choices=RACE_OPTIMIZER_NAMES, metavar="NAME",
                        help=f"optimizers: {', '.join(RACE_OPTIMIZER_NAMES)} (default all but NonlinearCG and "
                             "LBFGS; Newton only on the surfaces)")
    parser.add_argument("--out", type=output_directory, default=os.path.join("runs", "race"), metavar="DIR",
                        help="output directory (default runs/race)")
    parser.add_argument("--seed", type=int, default=0, help="seed of digits' split, weights and shuffling (default 0)")
    parser.set_defaults(handler=_race)


def _race(args):
    from keras_optlab.lab import Digits, format_surface_table, format_table, race, surfaces
    from keras_optlab.lab.figures import write_race_report
    from keras_optlab.lab.racing import DIGITS_BATCH_SIZE, DIGITS_EPOCHS, DIGITS_HIDDEN_UNITS, OPTIMIZER_NAMES

    if _make_out(args.out, "race"):
        return 2
    _quiet_tensorflow()
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else DIGITS_EPOCHS)
    names = args.problems or [*surfaces.SURFACES, "digits"]
    problems = [Digits(epochs=epochs) if name == "digits" else surfaces.SURFACES[name]() for name in names]
    if args.quick and args.steps is None:
        problems = [
            dataclasses.replace(p, steps=min(p.steps, QUICK_STEPS)) if isinstance(p, surfaces.Surface) else p
            for p in problems
        ]
    optimizers = args.optimizers
    if args.quick and optimizers is None:
        # Tracing Newton's step (a Hessian and its eigendecomposition) costs ~1.5 s per
        # surface: most of a quick run's budget.
        optimizers = [name for name in OPTIMIZER_NAMES if name != "Newton"]
    if optimizers is not None and "digits" in names and "Newton" in optimizers:
        optimizers = [name for name in optimizers if name != "Newton"]
        print("optlab race: Newton races on the surfaces only (on digits use keras_optlab.SecondOrder)")
    verbose = 1 if _on_terminal() else 2  # a progress bar, else one line per run
    if optimizers is None:
        rows = race(problems=problems, steps=args.steps, seed=args.seed, verbose=verbose)
    else:
        rows = race(optimizers, problems=problems, steps=args.steps, seed=args.seed, verbose=verbose)
    surface_rows = [row for row in rows if row.problem != "digits"]
    digits_rows = [row for row in rows if row.problem == "digits"]
    for table in (format_surface_table(surface_rows) if surface_rows else "",
                  format_table(digits_rows) if digits_rows else ""):
        if table:
            print("\n" + table)
    intro = (
        f"Digits: MLP 64-{'-'.join(map(str, DIGITS_HIDDEN_UNITS))}-10 (ReLU, softmax), identical initial "
        f"weights for every optimizer, {epochs} epochs, batch size {DIGITS_BATCH_SIZE}, seed {args.seed}; "
        "losses are cross-entropy on the whole set after the last epoch, seconds the wall time of "
        "`model.fit`."
        if digits_rows else ""
    )
    report = write_race_report(rows, problems, args.out, intro)
    print(f"\nwrote {report} and its figures in {args.out}")
    return 0


def _on_terminal():
    """Whether stdout is a terminal (Keras' progress bars are for one only)."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def _refuse(command, error):
    """``error`` as one line on stderr, ``optlab COMMAND: ...`` (a message that echoes an
    array's repr spans lines)."""
    print(f"optlab {command}: {' '.join(str(error).split())}", file=sys.stderr)


def _make_out(path, command):
    """Create the output directory ``path``; 0, or 2 after one line on stderr naming ``--out``."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        print(f"optlab {command}: `--out` must be a directory that can be created. Received: --out {path} "
              f"({error.strerror or error})", file=sys.stderr)
        return 2
    return 0


def _quiet_tensorflow():
    """Silence TensorFlow's Python logger (retracing notices of the per-run step functions)."""
    try:
        import tensorflow as tf
    except ImportError:
        return
    tf.get_logger().setLevel("ERROR")


def _add_tune(subparsers):
    parser = subparsers.add_parser(
        "tune",
        help="random search of the initial weight scale and dense vs sparse init (Keras Tuner)",
        description=(
            "Search init_scale and dense-vs-sparse initialization of a deep tanh MLP on digits with "
            "Keras Tuner (Goodfellow et al. 2016, Sec. 8.4; random search, Bergstra & Bengio 2012), "
            "then train it from Keras' default glorot_uniform for comparison. Writes DIR/trials.csv, "
            "trials.md, best.json and val_loss_vs_init_scale.png; rerun on DIR to resume. "
            "Same search as tuning/search_digits.py."
        ),
    )
    add_digits_search_arguments(parser, os.path.join("runs", "tune"), count_type=positive_int,
                                rate_type=positive_float, out_type=output_directory, verbose_default=None)
    parser.set_defaults(handler=_tune)


def _tune(args):
    if args.verbose is None:
        args.verbose = 1 if _on_terminal() else 2  # progress bars, else one line per epoch
    if _make_out(args.out, "tune"):
        return 2
    from keras_optlab.lab.init_search import run_digits_search

    return run_digits_search(args)


def _add_figures(subparsers):
    parser = subparsers.add_parser(
        "figures",
        help="regenerate the notes' figures (optimizer trajectories, cliff and clipping, ill-conditioning, ...)",
        description=(
            "Regenerate the figures of the notes on Goodfellow et al. (2016), ch. 8, as PNG files: "
            "the trajectories of SGD with momentum, Nesterov, AdaGrad, RMSProp, Adam and Newton's "
            "method, the cliff with and without gradient clipping, ill-conditioning, plateaus and "
            "saddles, and long-term dependencies. Every run is deterministic."
        ),
    )
    parser.add_argument("--out", type=output_directory, default=os.path.join("runs", "figures"), metavar="DIR",
                        help="output directory (default runs/figures; the README gallery uses docs/figures)")
    parser.add_argument("--only", nargs="+", choices=FIGURE_NAMES, metavar="NAME", default=None,
                        help=f"only these figures: {', '.join(FIGURE_NAMES)}")
    parser.set_defaults(handler=_figures)


def _figures(args):
    if _make_out(args.out, "figures"):
        return 2
    from keras_optlab.lab.figures import make_figures

    _quiet_tensorflow()
    make_figures(args.out, args.only)
    return 0


def _add_curvature(subparsers):
    parser = subparsers.add_parser(
        "curvature",
        help="curvature report of a saved .keras model on data from a .npz file",
        description=(
            "Load a compiled .keras model and data (x, y) from a .npz file; report the loss, gᵀg, "
            "gᵀHg, the critical learning rate 2gᵀg/gᵀHg, the top Hessian eigenvalues and 2/λmax "
            "(Goodfellow et al. 2016, Sec. 8.2.1), and draw the change of the loss after one step -εg "
            "against its second-order prediction (Eq. 8.10). Writes DIR/curvature.md and "
            "DIR/curvature.png. Runs on the TensorFlow, JAX or PyTorch backend (--backend, else "
            "$KERAS_BACKEND, else TensorFlow)."
        ),
    )
    _add_model_and_data_arguments(parser)
    parser.add_argument("--k", type=positive_int, default=3,
                        help="number of top Hessian eigenvalues, at most the model's parameters (default 3)")
    parser.add_argument("--learning-rate", type=positive_float, default=None,
                        help="ε for the predicted change (default the model's optimizer's rate)")
    _add_out_and_backend_arguments(parser, "curvature")
    parser.set_defaults(handler=_curvature)


def _add_model_and_data_arguments(parser):
    """The positional model and data, and which arrays of the .npz: `curvature`, `spectrum`."""
    parser.add_argument("model", help="path of a compiled .keras model")
    parser.add_argument("data", help="path of an .npz file holding the inputs and targets")
    parser.add_argument("--x-key", default="x", help="name of the inputs in the .npz (default x)")
    parser.add_argument("--y-key", default="y", help="name of the targets in the .npz (default y)")
    parser.add_argument("--batch-size", type=positive_int, default=None, metavar="N",
                        help="compute over all samples of DATA, N at a time (the mean loss over the whole set; "
                             "memory: one batch); default all at once")


def _add_out_and_backend_arguments(parser, command):
    parser.add_argument("--out", type=output_directory, default=os.path.join("runs", command), metavar="DIR",
                        help=f"output directory (default runs/{command})")
    parser.add_argument("--backend", choices=BACKEND_NAMES, default=None,
                        help="Keras backend to load the model with (default $KERAS_BACKEND, else tensorflow)")


def _select_backend(backend, command):
    """Set KERAS_BACKEND before Keras is imported; exit status 2 (and a one-line message)
    if Keras was already imported with another backend (``main`` called in-process)."""
    if backend is None:
        return 0
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != backend:
            print(f"optlab {command}: `--backend {backend}` must be chosen before Keras is imported; this "
                  f"process already runs Keras on {current!r}. Received: --backend {backend}", file=sys.stderr)
            return 2
        return 0
    os.environ["KERAS_BACKEND"] = backend
    return 0


def _load_model_and_batch(args, command):
    """``(model, x, y)`` of ``args`` on ``args.backend``, or an exit status: 2 (and one
    line on stderr naming the argument) for a wrong backend, file, key or batch, a model
    without a compiled loss, or (``curvature``) more eigenvalues than parameters; then
    the output directory is created (a bad input leaves none behind)."""
    status = _select_backend(args.backend, command)
    if status:
        return status
    import keras

    # keras_optlab's registered classes (its optimizers, initializers, SecondOrder), so
    # that a model compiled or built with them loads; `import keras_optlab` is lazy.
    import keras_optlab.initializers  # noqa: F401
    import keras_optlab.optimizers  # noqa: F401
    import keras_optlab.second_order  # noqa: F401
    from keras_optlab.lab.curvature_report import check_compiled, check_inputs, load_batch, num_parameters

    _quiet_tensorflow()
    # The user's files are checked before any work: a missing or wrong file, a key the
    # .npz lacks or inputs the model does not take is one line, not a traceback.
    try:
        x, y = load_batch(args.data, args.x_key, args.y_key)
        if not os.path.isfile(args.model):
            raise FileNotFoundError(f"`model` must be an existing .keras file. Received: model={args.model!r} "
                                    "(no such file)")
        try:
            model = keras.models.load_model(args.model)
        except Exception as error:  # Keras raises ValueError, OSError, zipfile errors, ...
            raise ValueError(f"`model` could not be loaded as a .keras model. Received: model={args.model!r} "
                             f"({type(error).__name__}: {error})") from error
        check_compiled(model, args.model)
        check_inputs(model, x)  # load_batch checked the batch itself
        n = num_parameters(model)
        if n == 0:
            raise ValueError(f"`model` must have trainable parameters. Received: model={args.model!r} (none)")
        k = getattr(args, "k", None)
        if k is not None and k > n:
            raise ValueError(f"`--k` must be at most the number of trainable parameters of `model`, {n}. "
                             f"Received: --k {k}")
    except (OSError, TypeError, ValueError) as error:  # TypeError: arrays that are not numbers
        _refuse(command, error)
        return 2
    if _make_out(args.out, command):
        return 2
    return model, x, y


def _curvature(args):
    loaded = _load_model_and_batch(args, "curvature")
    if isinstance(loaded, int):
        return loaded
    model, x, y = loaded
    from keras_optlab.lab.curvature_report import curvature_report

    try:
        report, markdown = curvature_report(model, x, y, args.out, k=args.k, learning_rate=args.learning_rate,
                                            batch_size=args.batch_size)
    except ValueError as error:  # what the curvature functions refuse, as in `spectrum`
        _refuse("curvature", error)
        return 2
    print(markdown)
    print(f"\nwrote {os.path.join(args.out, 'curvature.md')} and {report['figure']}")
    return 0


CURVATURE_NAMES = ("hessian", "gauss_newton", "fisher")  # keras_optlab.curvature.CURVATURES, without Keras


def _add_spectrum(subparsers):
    parser = subparsers.add_parser(
        "spectrum",
        help="eigenvalue density of a saved .keras model's Hessian (stochastic Lanczos quadrature)",
        description=(
            "Load a compiled .keras model and data (x, y) from a .npz file; estimate the density of the "
            "eigenvalues of the Hessian of its compiled loss (or of the Gauss-Newton matrix, or of the empirical "
            "Fisher) by stochastic Lanczos quadrature (Ghorbani, Krishnan & Xiao 2019): the bulk and outliers "
            "of ill-conditioning and the negative eigenvalues of a saddle (Goodfellow et al. 2016, Sec. 8.2.1, "
            "8.2.3). Writes DIR/spectrum.png, DIR/spectrum.md and DIR/spectrum.json. Runs on the TensorFlow, "
            "JAX or PyTorch backend (--backend, else $KERAS_BACKEND, else TensorFlow)."
        ),
    )
    _add_model_and_data_arguments(parser)
    parser.add_argument("--probes", type=positive_int, default=10, help="random probe vectors (default 10)")
    parser.add_argument("--steps", type=positive_int, default=40,
                        help="Lanczos steps per probe, capped at the number of parameters (default 40)")
    parser.add_argument("--points", type=_grid_points, default=1000, help="points of the density's grid (default 1000)")
    parser.add_argument("--sigma", type=positive_float, default=None,
                        help="width of the Gaussian kernel (default 1%% of λmax − λmin)")
    parser.add_argument("--curvature", choices=CURVATURE_NAMES, default="hessian",
                        help="matrix whose spectrum is drawn (default hessian)")
    parser.add_argument("--log-y", action="store_true", help="density on a log scale (shows outliers and tails)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the probes (default 0)")
    _add_out_and_backend_arguments(parser, "spectrum")
    parser.set_defaults(handler=_spectrum)


def _spectrum(args):
    loaded = _load_model_and_batch(args, "spectrum")
    if isinstance(loaded, int):
        return loaded
    model, x, y = loaded
    from keras_optlab.lab.spectrum_report import spectrum_report

    try:
        report, markdown = spectrum_report(model, x, y, args.out, num_probes=args.probes, lanczos_steps=args.steps,
                                           points=args.points, sigma=args.sigma,
                                           curvature=args.curvature, seed=args.seed, log_y=args.log_y,
                                           batch_size=args.batch_size)
    except ValueError as error:  # a loss the Fisher cannot split per example
        _refuse("spectrum", error)
        return 2
    print(markdown)
    print(f"\nwrote {os.path.join(args.out, 'spectrum.md')}, spectrum.json and {report['figure']}")
    return 0


def positive_int(text):
    """argparse type: an integer ≥ 1 (also the counts of ``tuning/search_digits.py``)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def output_directory(text):
    """argparse type: a directory to write into, existing or not yet; not an existing file
    (nor a path through one), not empty."""
    if not text:
        raise argparse.ArgumentTypeError("must be a directory path, got an empty string")
    path = os.path.abspath(text)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"must be a directory, but {path} is a file, got {text}")
    return text


def _grid_points(text):
    """argparse type: an integer ≥ 2 (a grid has two ends)."""
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be an integer >= 2, got {text}")
    return value


def positive_float(text):
    """argparse type: a finite number > 0 (a learning rate)."""
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def build_parser():
    """The ``optlab`` argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="optlab",
        description="keras_optlab's lab: chapter 8 of Deep Learning (Goodfellow et al. 2016) in numbers and figures.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_race(subparsers)
    _add_tune(subparsers)
    _add_figures(subparsers)
    _add_curvature(subparsers)
    _add_spectrum(subparsers)
    return parser


def main(argv=None):
    """Run ``optlab`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except MissingExtraError as error:
        print(f"optlab: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
