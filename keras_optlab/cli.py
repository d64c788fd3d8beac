"""The ``optlab`` command: the lab of Goodfellow et al. (2016), ch. 8, from a shell.

Each subcommand is registered by an ``_add_<name>`` function that adds its parser and
sets ``handler``; a handler takes the parsed arguments and returns the exit status.
Heavy imports (the lab, matplotlib, scikit-learn) happen inside handlers, so ``--help``
stays cheap and a missing ``lab`` extra is reported as a one-line message.
"""

import argparse
import os
import sys

QUICK_EPOCHS = 3


def _add_race(subparsers):
    from keras_optlab.lab.race import DIGITS_EPOCHS

    parser = subparsers.add_parser(
        "race",
        help="train one MLP on digits with every optimizer; write a table and loss curves",
        description=(
            "Train the same MLP, from the same initial weights, on scikit-learn's digits with "
            "each of keras_optlab's optimizers (Goodfellow et al. 2016, Alg. 8.1-8.7). Prints a "
            "markdown table and writes DIR/race.md and DIR/loss_curves.png."
        ),
    )
    parser.add_argument(
        "--epochs", type=_positive_int, default=None, help=f"passes over the training set (default {DIGITS_EPOCHS})"
    )
    parser.add_argument("--quick", action="store_true", help=f"a short run: {QUICK_EPOCHS} epochs unless --epochs")
    parser.add_argument("--out", default=os.path.join("runs", "race"), metavar="DIR",
                        help="output directory (default runs/race)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, weights and shuffling (default 0)")
    parser.set_defaults(handler=_race)


def _race(args):
    from keras_optlab.lab import digits_race, format_table, plot_loss_curves
    from keras_optlab.lab.race import DIGITS_BATCH_SIZE, DIGITS_EPOCHS, DIGITS_HIDDEN_UNITS

    epochs = args.epochs or (QUICK_EPOCHS if args.quick else DIGITS_EPOCHS)
    rows = digits_race(epochs=epochs, seed=args.seed, verbose=1)
    table = format_table(rows)
    print()
    print(table)
    os.makedirs(args.out, exist_ok=True)
    curves = plot_loss_curves(rows, os.path.join(args.out, "loss_curves.png"))
    report = os.path.join(args.out, "race.md")
    with open(report, "w", encoding="utf-8") as file:
        file.write(
            "# Optimizer race on digits\n\n"
            f"MLP 64-{'-'.join(map(str, DIGITS_HIDDEN_UNITS))}-10 (ReLU, softmax), identical initial "
            f"weights for every optimizer, {epochs} epochs, batch size {DIGITS_BATCH_SIZE}, seed "
            f"{args.seed}. Losses are cross-entropy on the whole set after the last epoch; seconds "
            "are the wall time of `model.fit`.\n\n"
            f"{table}\n\n![loss curves](loss_curves.png)\n"
        )
    print(f"\nwrote {report} and {curves}")
    return 0


def _add_tune(subparsers):
    from keras_optlab.tuning import add_digits_search_arguments, run_digits_search

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
    add_digits_search_arguments(parser, default_out=os.path.join("runs", "tune"))
    parser.set_defaults(handler=run_digits_search)


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
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
    return parser


def main(argv=None):
    """Run ``optlab`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    from keras_optlab.lab import MissingExtraError

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
