"""Every row of the bad-input table (tests/bad_inputs/) is refused at the call.

TypeError for a wrong type, ValueError for a wrong value; the message names the
argument and echoes the value received (keras_optlab/_checks.py's contract).
"""

import pytest

from tests.bad_inputs import calibration, cli, initializers, optimizers, quasi_newton, second_order, tuning

AREAS = {
    "optimizers": optimizers,
    "initializers": initializers,
    "calibration": calibration,
    "tuning": tuning,
    "second_order": second_order,
    "quasi_newton": quasi_newton,
    "cli": cli,
}
ROWS = [(f"{area}-{i}-{row.argument}", row) for area, module in AREAS.items() for i, row in enumerate(module.ROWS)]


def test_the_table_covers_the_public_api():
    assert len(ROWS) >= 150, len(ROWS)
    for area, module in AREAS.items():
        assert module.ROWS, f"no bad inputs for {area}"


@pytest.mark.parametrize(
    "row",
    [pytest.param(row, id=name, marks=() if row.tensorflow_only else pytest.mark.backend_agnostic) for name, row in ROWS],
)
def test_bad_input_is_refused_naming_the_argument(row):
    with pytest.raises(row.error) as info:
        row.call()
    message = str(info.value)
    assert row.argument in message, message
    assert row.echo in message, message
