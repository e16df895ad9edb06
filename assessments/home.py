"""The case record forms' links on the home page (imrtrial.home), with the rules of its pages."""

from django.utils.translation import gettext_lazy as _

from imrtrial import access
from imrtrial.home import Link, register
from imrtrial.models import Perm

ENTRY = (Perm.ENTER_INTERVIEW, Perm.ENTER_STAFF_RATING)
REMINDERS = (Perm.RANDOMIZE, Perm.VERIFY_FORMS)


def may_enter_forms(user, trial):
    return access.has_any(user, ENTRY, trial)


def may_view_participants(user, trial):
    return access.has(user, Perm.VIEW_PARTICIPANTS, trial)


def may_manage_queries(user, trial):
    """The query list: data managers and monitors (views.query_list asks the same)."""
    return access.query_sites(user, trial).exists()


def may_see_reminders(user, trial):
    return access.has_any(user, REMINDERS, trial)


register(
    Link(_("Worklist"), "assessments:worklist", may_enter_forms, order=20, style="btn-primary")
)
register(
    Link(
        _("Participants"),
        "assessments:participant_list",
        may_view_participants,
        order=30,
        style="btn-primary",
    )
)
register(
    Link(
        _("Data queries"),
        "assessments:query_list",
        may_manage_queries,
        order=75,
        style="btn-outline-secondary",
    )
)
register(
    Link(
        _("Reminders"),
        "assessments:reminders",
        may_see_reminders,
        order=80,
        style="btn-outline-secondary",
    )
)


def may_see_dashboard(user, trial):
    """The record status dashboard: data managers and assessors (at their sites)."""
    return access.has_any(user, (Perm.VERIFY_FORMS, Perm.ENTER_INTERVIEW), trial)


def may_manage_data(user, trial):
    """The data manager's queue."""
    return access.has(user, Perm.VERIFY_FORMS, trial)


def may_lock_database(user, trial):
    """The database lock page: the whole trial's, so a data manager of every site."""
    return access.has_everywhere(user, Perm.VERIFY_FORMS, trial)


register(
    Link(_("Record status"), "assessments:status", may_see_dashboard, order=35, style="btn-primary")
)
register(Link(_("Data manager's queue"), "assessments:queue", may_manage_data, order=36))
register(
    Link(
        _("Database lock"),
        "assessments:database_lock",
        may_lock_database,
        order=85,
        style="btn-outline-secondary",
    )
)
