"""The table of bad inputs across keras_optlab's public API, one module per area.

Each area module (``optimizers``, ``initializers``, ``calibration``, ``tuning``,
``second_order`` — curvature, callbacks, SecondOrder and Newton —, ``cli``) holds
``ROWS``, a list of :class:`Bad`. ``tests/test_bad_inputs.py`` runs every row: the call
must raise ``error`` at once (not at first use), and the message must name
``argument`` and contain ``echo`` (the value received, as the message shows it).
"""

import dataclasses
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Bad:
    """One bad input: ``call()`` must raise ``error`` naming ``argument`` and echoing ``echo``.

    ``tensorflow_only`` rows need TensorFlow (curvature, callbacks, SecondOrder); the
    others run on every backend the suite runs on.
    """

    call: Callable[[], object]
    error: type
    argument: str
    echo: str
    tensorflow_only: bool = False
