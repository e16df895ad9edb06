import pytest

from tests.security.conftest import build_world


@pytest.fixture
def world(db):
    """The security world: both arms at North, one participant at South, a monitor at every
    site (users[Role.MONITOR]) and one at North only (users["monitor-north"])."""
    return build_world()
