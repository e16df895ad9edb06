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


def name_of(code):
    """The instrument's name; its code for an instrument no longer installed (a page about old
    data still answers)."""
    found = _instruments.get(code)
    return found.name if found else code


def all_instruments():
    return dict(_instruments)


def is_staff_rated(code):
    """Whether entries of the instrument `code` are staff ratings, whose author can reveal the
    arm (Instrument.staff_rated). An instrument no longer installed may have been one: assume
    the worst. The one answer to this question; the audit report and the admin both ask it."""
    instrument = _instruments.get(code)
    return instrument is None or instrument.staff_rated


def staff_rated_codes():
    """Codes of the installed staff-rated instruments. Entries may also carry codes no longer
    installed: to hide what is staff-rated, filter by what is not (see assessments.audit)."""
    return sorted(code for code in _instruments if is_staff_rated(code))


def unexported_items(code, values):
    """Keys of `values` (a form's stored values) that no export carries: free text and any type
    outside the exported allow-list (definitions.EXPORTED_TYPES). What no blinded dataset holds,
    no blinded reader reads when an unblinded author wrote it (the audit trail, the admin). For
    an instrument no longer installed, every key: assume the worst."""
    instrument = _instruments.get(code)
    if instrument is None:
        return set(values or {})
    exported = {item.code for item in instrument.exported_items}
    return {item.code for item in instrument.items} - exported
