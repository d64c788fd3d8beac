import pytest

from tests.helpers import digits_subset


@pytest.fixture(scope="session")
def digits():
    """A small standardized slice of scikit-learn's bundled digits (no download)."""
    return digits_subset(512)
