import pytest
from django.conf import settings
from django.utils import translation


@pytest.fixture(autouse=True)
def _language_reset():
    """A request in another language leaves it active in this thread; the next test starts in
    the default again."""
    yield
    translation.activate(settings.LANGUAGE_CODE)
