import pytest

from tests.helpers import LOSS, digits_subset, make_mlp  # noqa: F401  (LOSS, make_mlp: see below)

# test_shared.py still imports LOSS and make_mlp from this conftest; they live in
# tests/helpers.py now, and the re-export goes once it imports them from there.


@pytest.fixture(scope="session")
def digits():
    """A small standardized slice of scikit-learn's bundled digits (no download)."""
    return digits_subset(512)
