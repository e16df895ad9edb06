"""The one error every service raises when an action is not allowed now.

Services of every app raise `Refused` with a message in the user's words (why, and what to do);
views show it beside the form, the API as a 400. Nothing is saved when it is raised: services
raise it inside their transaction, before or instead of writing."""


class Refused(Exception):
    """The action is not allowed now; the message says why."""


class Locked(Refused):
    """Refused because the database, a casebook or a form is locked (imrtrial.locking)."""
