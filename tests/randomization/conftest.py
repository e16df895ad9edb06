import pytest


@pytest.fixture
def study(danish):
    """The randomization tests are about the Danish preset: their people work in it."""
    return danish
