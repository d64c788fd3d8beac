"""Bad inputs: the ``optlab`` command and the curvature report's loaders (see
tests/bad_inputs/__init__.py).

A command-line row runs ``keras_optlab.cli.main(argv)``; a non-zero exit becomes
:class:`Refused`, whose message is what ``optlab`` printed on stderr (argparse's
``argument --epochs: must be a positive integer, got 0``, or the handler's one line).
"""

import contextlib
import io

import numpy as np

from keras_optlab.cli import main
from keras_optlab.lab.curvature_report import check_batch, load_batch
from tests.bad_inputs import Bad


class Refused(Exception):
    """``optlab`` exited with a non-zero status; the message is its stderr."""


def optlab(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(list(argv))
        except SystemExit as exit_:
            status = exit_.code
    if status != 0:
        raise Refused(f"exit {status}: {err.getvalue()}")
    return status


X, Y = np.zeros((4, 3), "float32"), np.zeros(4, "int32")

ROWS = [
    Bad(lambda: optlab("race", "--epochs", "0"), Refused, "--epochs", "got 0"),
    Bad(lambda: optlab("race", "--epochs", "ten"), Refused, "--epochs", "ten"),
    Bad(lambda: optlab("race", "--steps", "-1"), Refused, "--steps", "-1"),
    Bad(lambda: optlab("race", "--problems", "everest"), Refused, "--problems", "everest"),
    Bad(lambda: optlab("race", "--optimizers", "Adadelta"), Refused, "--optimizers", "Adadelta"),
    # An output folder that is a file (this module): refused by the parser, not a
    # FileExistsError after the run.
    Bad(lambda: optlab("race", "--out", __file__), Refused, "--out", f"is a file, got {__file__}"),
    Bad(lambda: optlab("figures", "--out", __file__), Refused, "--out", f"is a file, got {__file__}"),
    Bad(lambda: optlab("tune", "--out", __file__), Refused, "--out", f"is a file, got {__file__}"),
    Bad(lambda: optlab("curvature", "m.keras", "d.npz", "--out", __file__), Refused, "--out", __file__),
    Bad(lambda: optlab("spectrum", "m.keras", "d.npz", "--out", __file__), Refused, "--out", __file__),
    Bad(lambda: optlab("race", "--out", ""), Refused, "--out", "empty string"),
    Bad(lambda: optlab("race", "--seed", "1.5"), Refused, "--seed", "1.5"),
    Bad(lambda: optlab("tune", "--trials", "0"), Refused, "--trials", "got 0"),
    Bad(lambda: optlab("tune", "--epochs", "-2"), Refused, "--epochs", "-2"),
    Bad(lambda: optlab("tune", "--learning-rate", "0"), Refused, "--learning-rate", "got 0"),
    Bad(lambda: optlab("tune", "--learning-rate", "nan"), Refused, "--learning-rate", "nan"),
    Bad(lambda: optlab("tune", "--learning-rate", "inf"), Refused, "--learning-rate", "inf"),
    Bad(lambda: optlab("tune", "--tuner", "grid"), Refused, "--tuner", "grid"),
    Bad(lambda: optlab("tune", "--verbose", "3"), Refused, "--verbose", "3"),
    Bad(lambda: optlab("tune", "--batch-size", "0"), Refused, "--batch-size", "got 0"),
    Bad(lambda: optlab("figures", "--only", "mona_lisa"), Refused, "--only", "mona_lisa"),
    Bad(lambda: optlab("curvature", "m.keras", "d.npz", "--k", "0"), Refused, "--k", "got 0"),
    Bad(lambda: optlab("curvature", "m.keras", "d.npz", "--batch-size", "0"), Refused, "--batch-size", "got 0"),
    Bad(lambda: optlab("curvature", "m.keras", "d.npz", "--learning-rate", "-0.1"), Refused, "--learning-rate",
        "-0.1"),
    Bad(lambda: optlab("curvature", "/nonexistent/m.keras", "/nonexistent/d.npz"), Refused, "`data`",
        "/nonexistent/d.npz"),
    Bad(lambda: load_batch("/nonexistent/d.npz"), FileNotFoundError, "`data`", "'/nonexistent/d.npz'"),
    Bad(lambda: check_batch(X[:0], Y[:0]), ValueError, "`x`", "(0, 3)"),
    Bad(lambda: check_batch(X, Y[:2]), ValueError, "`y`", "2 samples"),
    Bad(lambda: check_batch(np.full((4, 3), np.nan), Y), ValueError, "`x`", "12 NaN"),
    Bad(lambda: check_batch(X, np.array([0.0, np.inf, 0.0, 0.0])), ValueError, "`y`", "1 infinite"),
]
