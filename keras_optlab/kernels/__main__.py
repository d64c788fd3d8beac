"""``python -m keras_optlab.kernels``: the old name of ``python -m keras_optlab.accel.cpu``."""

import sys

from keras_optlab.accel.cpu.__main__ import main

sys.exit(main(prog="python -m keras_optlab.kernels"))
