"""The instruments this server knows, loaded once at start-up from settings.INSTRUMENTS_DIR."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .definitions import DefinitionError, load_dir

_instruments = {}


def load():
    try:
        found = load_dir(settings.INSTRUMENTS_DIR)
    except DefinitionError as exc:
        raise ImproperlyConfigured(
            "Malformed instrument definition(s):\n  - " + "\n  - ".join(exc.problems)
        ) from None
    _instruments.clear()
    _instruments.update(found)


def get(code):
    """The instrument with this code; KeyError if there is none."""
    return _instruments[code]


def all_instruments():
    return dict(_instruments)
