"""Search the initial weight scale and dense-vs-sparse initialization of a deep tanh MLP on digits.

Goodfellow et al. (2016), Sec. 8.4: treat each layer's initial scale — and dense vs
sparse initialization — as hyperparameters and choose them by random search (Bergstra &
Bengio 2012). The model is a 10 × 64 tanh MLP trained with plain SGD, where the initial
scale decides whether the signal survives the depth. After the search the same model is
trained from Keras' default glorot_uniform for comparison.

Writes to tuning/results/ (git-ignored): trials.csv, trials.md, best.json,
val_loss_vs_init_scale.png, and the Keras Tuner project search/digits (a rerun resumes;
--overwrite starts afresh). `optlab tune` runs the same search
(keras_optlab.lab.init_search; the search itself is keras_optlab.tuning.search_init).

    python tuning/search_digits.py                    # 24 trials, 10 epochs each
    python tuning/distributed.py --workers 2 -- python tuning/search_digits.py
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def main(argv=None):
    from keras_optlab.cli import positive_float, positive_int
    from keras_optlab.lab.init_search import add_digits_search_arguments, run_digits_search

    parser = argparse.ArgumentParser(
        prog="search_digits.py",
        description=__doc__.split("\n\n")[0] + " Random search by default (Goodfellow et al. 2016, Sec. 8.4).",
    )
    add_digits_search_arguments(parser, os.path.relpath(RESULTS), count_type=positive_int, rate_type=positive_float)
    return run_digits_search(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
