"""Bad inputs: optimizers (see tests/bad_inputs/__init__.py)."""

from tests.bad_inputs import Bad  # noqa: F401

ROWS = []
