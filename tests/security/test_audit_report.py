"""The audit report: every change to a record (who, when, old -> new, why) and every view of
allocation data and export, filtered by user, period and participant; for view_audit holders
only, blinded per site, and fast however long the trail."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments.models import FormEntry
from imrtrial.models import Role
from tests.factories import grant, make_trial, make_user

from .conftest import GROUP_NAME

AUDITORS = [Role.TRIAL_ADMIN, Role.DATA_MANAGER, Role.KEY_HOLDER]
PAGES = ["audit_trail", "access_log"]


def text(response):
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def rows(response):
    """The body rows of the report's table, as text."""
    body = response.content.decode().split("<tbody>")[1].split("</tbody>")[0]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip() for r in body.split("<tr>")[1:]]


def audit(client, world, view="audit_trail", **params):
    return client.get(reverse(view, args=[world.trial.key]), params)


@pytest.mark.parametrize("role", [r for r in Role if r not in AUDITORS])
def test_only_holders_of_view_audit_reach_the_report(role, client, world):
    client.force_login(world.users[role])
    for page in PAGES:
        assert audit(client, world, page).status_code == 404, (role, page)


@pytest.mark.parametrize("role", AUDITORS)
def test_auditors_reach_both_parts_of_the_report(role, client, world):
    client.force_login(world.users[role])
    for page in PAGES:
        assert audit(client, world, page).status_code == 200
    other = make_trial()
    assert client.get(reverse("audit_trail", args=[other.key])).status_code == 404


def test_a_change_shows_who_when_old_and_new_values_and_the_reason(client, world):
    client.force_login(world.users[Role.DATA_MANAGER])
    response = audit(client, world, participant=world.tau.participant_id, kind="formentry")
    (changed, created) = [r for r in rows(response) if "gaf_f" in r]
    today = timezone.localdate().isoformat()
    assert changed.startswith(today) and "assessor-all" in changed
    assert "values: gaf_f 55 → 57" in changed and "typo" in changed
    assert "Created" in created and "55" in created


def test_filters_by_user_period_participant_and_kind(client, world):
    client.force_login(world.users[Role.KEY_HOLDER])
    everything = rows(audit(client, world))
    by_assessor = rows(audit(client, world, user="assessor-all"))
    assert by_assessor and all(" assessor-all " in f" {r} " for r in by_assessor)
    assert len(by_assessor) < len(everything)
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    assert rows(audit(client, world, until=yesterday.isoformat())) == ["No changes match."]
    assert len(rows(audit(client, world, since=timezone.localdate().isoformat()))) > 1
    theirs = rows(audit(client, world, participant=world.tau.participant_id))
    others = {world.imr.participant_id, world.south_tau.participant_id}
    assert theirs and not any(pid in r for r in theirs for pid in others)
    visits = rows(audit(client, world, kind="visit"))
    assert visits and all("Visit:" in r for r in visits)


def test_bad_filters_are_refused_with_a_clear_message_not_an_error(client, world):
    client.force_login(world.users[Role.TRIAL_ADMIN])
    for params, message in [
        ({"participant": "NOBODY"}, "No participant with that id"),
        ({"since": "2026-02-02", "until": "2026-01-01"}, "before its start"),
        ({"since": "not a date"}, "Enter a valid date"),
        ({"user": "\x00nobody"}, "Null characters are not allowed"),
        ({"user": "nobody"}, "Select a valid choice"),
        ({"kind": "allocation"}, "Select a valid choice"),  # not a kind a blinded user sees
        ({"page": "99999"}, None),
    ]:
        for page in PAGES:
            response = audit(client, world, page, **params)
            assert response.status_code == 200, params
            if message:
                assert message in text(response), (params, page)


@pytest.mark.parametrize("role", [Role.TRIAL_ADMIN, Role.DATA_MANAGER])
def test_blinded_auditors_learn_nothing_of_the_arms(role, client, world):
    client.force_login(world.users[role])
    pages = [audit(client, world, page) for page in PAGES]
    pages += [audit(client, world, participant=p.participant_id) for p in world.participants]
    pages += [audit(client, world, user=u.get_username()) for u in world.users.values()]
    kinds = ["IMR group", "IMR attendance", "IMR session", "Fidelity assessment", "Fidelity rating"]
    kinds += ["Allocation", "allocation"]
    for page in pages:
        assert page.status_code == 200
        content = text(page)
        for fact in world.revealing_texts():
            assert fact not in content, (role, fact)
        for word in kinds:  # not even as a kind of record or an action to filter by
            assert word not in content, (role, word)


def test_blinded_auditors_never_see_who_entered_a_staff_rated_form(client, world):
    facilitator = world.users[Role.FACILITATOR].get_username()
    client.force_login(world.users[Role.DATA_MANAGER])
    page = audit(client, world, participant=world.imr.participant_id, kind="formentry")
    staff_rows = [r for r in rows(page) if "imrs_s" in r or "adverse_events" in r]
    assert staff_rows and all("(hidden)" in r for r in staff_rows)
    assert facilitator not in " ".join(rows(page))
    # Nor can a filter by user recover it: their rows are left out for every user alike.
    assert rows(audit(client, world, user=facilitator)) == ["No changes match."]
    # Interview forms keep their author.
    gaf = [r for r in rows(page) if "gaf_f" in r]
    assert gaf and all("assessor-all" in r for r in gaf)
    # An auditor unblinded at the site sees the author.
    client.force_login(world.users[Role.KEY_HOLDER])
    page = audit(client, world, participant=world.imr.participant_id, kind="formentry")
    assert facilitator in " ".join(rows(page))
    assert rows(audit(client, world, user=facilitator)) != ["No changes match."]


def test_the_unblinded_auditor_sees_allocations_imr_delivery_and_every_access(client, world):
    client.force_login(world.users[Role.KEY_HOLDER])
    content = " ".join(
        text(audit(client, world, kind=kind)) for kind in ("imrgroup", "allocation", "attendance")
    )
    assert GROUP_NAME in content and "IMR + TAU" in content and "Absent → Excused" in content
    access = rows(audit(client, world, "access_log"))
    assert len(access) == 4
    exports = rows(audit(client, world, "access_log", kind="export"))
    assert len(exports) == 1 and "blinded dataset" in exports[0]


def test_the_access_log_shows_blinded_auditors_exports_only(client, world):
    client.force_login(world.users[Role.TRIAL_ADMIN])
    (only,) = rows(audit(client, world, "access_log"))
    assert "Exported data" in only
    assert audit(client, world, "access_log", kind="view_allocation").status_code == 200
    assert "Select a valid choice" in text(
        audit(client, world, "access_log", kind="view_allocation")
    )


def test_a_site_auditor_sees_only_their_sites_records(client, world):
    client.force_login(world.users["key_holder-north"])
    content = text(audit(client, world))
    assert world.imr.participant_id in content and world.south_tau.participant_id not in content
    response = audit(client, world, participant=world.south_tau.participant_id)
    assert "No participant with that id" in text(response)
    access = rows(audit(client, world, "access_log"))
    # Their site's participant and the export, not another group's name or a screening number.
    assert len(access) == 2 and not any(GROUP_NAME in r or "S-0001" in r for r in access)


def test_concealed_and_identifying_values_are_not_shown(client, world):
    client.force_login(world.users[Role.KEY_HOLDER])
    trial_rows = rows(audit(client, world, kind="trial"))
    assert trial_rows and not any("block sizes" in r or "[6, 8, 10]" in r for r in trial_rows)
    allocations = rows(audit(client, world, kind="allocation"))
    assert allocations and not any(" slot " in f" {r} " for r in allocations)
    details = " ".join(rows(audit(client, world, kind="identifying")))
    assert "Ada North" not in details and "(hidden)" in details
    # Someone who may see identifying details (a coordinator who also audits) sees them.
    both = make_user("desk-auditor")
    grant(both, world.trial, Role.KEY_HOLDER)
    grant(both, world.trial, Role.COORDINATOR)
    client.force_login(both)
    assert "Ada North" in " ".join(rows(audit(client, world, kind="identifying")))


def test_raw_fidelity_scores_stay_hidden_until_both_raters_are_in(client, world):
    from fidelity import services

    assessment = services.create_assessment(
        world.group,
        by=world.users["rater2"],
        kind="midway",
        date=world.group.start_date,
        data_sources=["observation"],
    )
    services.submit_rating(
        assessment, by=world.users["rater2"], scores=dict.fromkeys(range(1, 11), 2)
    )
    client.force_login(world.users[Role.KEY_HOLDER])
    ratings = rows(audit(client, world, kind="fidelityrating"))
    assert len(ratings) == 3
    first = [r for r in ratings if "Mid-way" in r or "midway" in r.lower()]
    newest = ratings[0]
    assert "scores — → (hidden)" in newest, newest
    assert all("scores — → (hidden)" not in r for r in ratings[1:]), first


# A page costs a few queries per kind of record on it (its rows, their predecessors, the rows
# they point to), whatever the length of the trail: 8 kinds reach a blinded auditor.
MAX_QUERIES = 50


def test_pages_of_a_long_trail_cost_the_same_few_queries(
    client, world, django_assert_max_num_queries
):
    entry = FormEntry.objects.get(participant=world.tau, instrument="gaf_f")
    history = FormEntry.history.model
    latest = entry.history.first()
    base = latest.history_date
    history.objects.bulk_create(
        history(
            **{
                f.attname: getattr(latest, f.attname)
                for f in history._meta.concrete_fields
                if f.attname not in ("history_id", "history_date")
            },
            history_date=base + datetime.timedelta(seconds=i + 1),
        )
        for i in range(300)
    )
    client.force_login(world.users[Role.DATA_MANAGER])
    with django_assert_max_num_queries(MAX_QUERIES):
        first = audit(client, world)
    pages = int(re.search(r"page 1 of (\d+)", text(first)).group(1))
    assert pages >= 7 and len(rows(first)) == 50
    with django_assert_max_num_queries(MAX_QUERIES):
        last = audit(client, world, page=pages)
    with django_assert_max_num_queries(MAX_QUERIES):
        beyond = audit(client, world, page=pages + 5)  # past the end: the last page
    assert 0 < len(rows(last)) <= 50 and rows(last)[0] != rows(first)[0]
    assert rows(beyond) == rows(last)


def test_trial_level_text_by_staff_unblinded_at_one_site_is_withheld_from_blinded_auditors(
    client, world
):
    """An administrator who is also the key holder at North (unblinded there, and the one who
    grants North its unblinded roles: access.may_grant_role) deactivates an account and grants
    an all-sites role. Those rows belong to no site; their reasons could name a North
    participant's arm, so a reader not unblinded everywhere sees only that text exists."""
    from staff import services as staff

    trial, north = world.trial, world.north
    admin = make_user("admin-keyholder-north")
    grant(admin, trial, Role.TRIAL_ADMIN)
    grant(admin, trial, Role.KEY_HOLDER, north)
    secret = "Quince: P in the IMR group asked to stop"
    target = world.users["assessor-north"]
    staff.grant_role(target, trial, Role.MONITOR, None, by=admin, reason=secret)
    staff.deactivate_account(world.users[Role.CASE_MANAGER], trial, by=admin, reason=secret)
    for role in (Role.DATA_MANAGER, Role.TRIAL_ADMIN):
        client.force_login(world.users[role])
        response = audit(client, world)
        assert "Quince" not in text(response), role
        theirs = [r for r in rows(response) if "not shown" in r and "case_manager" in r]
        assert theirs and all("admin-keyholder-north" not in r for r in theirs), role
    client.force_login(world.users[Role.KEY_HOLDER])  # unblinded at every site: reads it
    assert "Quince" in text(audit(client, world))
