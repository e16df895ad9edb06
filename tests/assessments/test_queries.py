"""Data queries: their life cycle, who may do what, the arm-word refusal, what they block, their
blinding on staff-rated forms, the pages and the reminder digest."""

import datetime

import pytest
from django.apps import apps
from django.core import mail
from django.utils import timezone

from assessments import queries, reminders
from assessments import services as crf
from assessments.models import DataQuery, FormEntry, QueryMessage, Reminder, Visit
from imrtrial import access, blinding_words
from imrtrial.errors import Refused
from imrtrial.models import Membership, Role, Trial
from tests.factories import grant
from tests.security import test_crawler
from tests.security.conftest import GROUP_NAME, build_world

pytestmark = pytest.mark.django_db

Status, Action = DataQuery.Status, QueryMessage.Action


def snapshot():
    labels = {"imrtrial", "randomization", "assessments", "fidelity"}
    return {
        m._meta.label: m._default_manager.count()
        for m in apps.get_models()
        if m._meta.app_label in labels and m._meta.model_name != "accesslog"
    }


def refused_with_nothing_saved(call):
    before = snapshot()
    with pytest.raises(Refused) as refused:
        call()
    assert snapshot() == before
    return str(refused.value)


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def people(world):
    u = world.users
    return u[Role.DATA_MANAGER], u[Role.ASSESSOR]


def gaf_of(participant):
    return FormEntry.objects.get(participant=participant, instrument="gaf_f")


def ask(world, participant=None, item="gaf_f", text="Is this value right?"):
    entry = gaf_of(participant or world.tau)
    return queries.open_query(
        entry.visit, entry, item, by=world.users[Role.DATA_MANAGER], category="range", text=text
    )


# --- Life cycle -------------------------------------------------------------------------------


def test_a_query_is_opened_answered_closed_reopened_and_cancelled_keeping_every_message(
    world, people
):
    dm, assessor = people
    query = ask(world)
    assert query.status == Status.OPEN and query.addressed_to == assessor  # who entered the form
    queries.answer_query(query, by=assessor, text="Checked: it is right.")
    queries.close_query(query, by=dm, text="Thanks.")
    queries.reopen_query(query, by=dm, text="The source says 75.")
    queries.cancel_query(query, by=dm, text="Asked in error after all.")
    query.refresh_from_db()
    assert query.status == Status.CANCELLED
    thread = list(query.messages.values_list("action", "author__username"))
    assert thread == [
        (Action.OPEN, dm.username),
        (Action.ANSWER, assessor.username),
        (Action.CLOSE, dm.username),
        (Action.REOPEN, dm.username),
        (Action.CANCEL, dm.username),
    ]
    history = list(
        DataQuery.history.filter(id=query.pk)
        .order_by("history_date")
        .values_list("status", "history_user__username", "history_change_reason")
    )
    assert [h[0] for h in history] == ["open", "answered", "closed", "open", "cancelled"]
    assert history[-1][1:] == (dm.username, "cancelled: Asked in error after all.")


def test_an_answer_without_a_value_leaves_the_form_as_it_was(world, people):
    _, assessor = people
    query = ask(world)
    entry = gaf_of(world.tau)
    queries.answer_query(query, by=assessor, text="It is right.")
    after = gaf_of(world.tau)
    assert (after.values, after.version) == (entry.values, entry.version)
    assert not query.messages.get(action=Action.ANSWER).changed_value


def test_the_value_correction_is_saved_with_the_query_as_reason_and_unverifies(world, people):
    dm, assessor = people
    entry = gaf_of(world.tau)
    crf.set_status(entry, FormEntry.Status.VERIFIED, by=dm)
    query = ask(world)
    queries.answer_query(
        query, by=assessor, text="Mistyped: 75 on paper.", values={"gaf_f": "75"}, version=None
    )
    entry.refresh_from_db()
    assert entry.values["gaf_f"] == 75
    assert entry.status == FormEntry.Status.COMPLETE  # a verified form changed is verified no more
    reason = FormEntry.history.filter(id=entry.pk).latest("history_date").history_change_reason
    assert reason.startswith(f"query #{query.pk}: Mistyped: 75 on paper.")
    assert query.messages.get(action=Action.ANSWER).changed_value


def test_an_invalid_corrected_value_saves_neither_value_nor_answer(world, people):
    _, assessor = people
    query = ask(world)
    before = snapshot()
    with pytest.raises(crf.FormInvalid):
        queries.answer_query(query, by=assessor, text="Fixed.", values={"gaf_f": "900"})
    assert snapshot() == before


@pytest.mark.parametrize(
    "moves, illegal",
    [
        ([], "close"),  # an open query is answered before it is closed
        ([], "reopen"),
        (["answer"], "answer"),
        (["answer", "close"], "cancel"),
        (["answer", "close"], "close"),
        (["cancel"], "reopen"),
        (["cancel"], "answer"),
    ],
)
def test_illegal_moves_are_refused_with_nothing_saved(world, people, moves, illegal):
    dm, assessor = people
    query = ask(world)
    do = {
        "answer": lambda: queries.answer_query(query, by=assessor, text="An answer."),
        "close": lambda: queries.close_query(query, by=dm, text="Done."),
        "reopen": lambda: queries.reopen_query(query, by=dm, text="Again."),
        "cancel": lambda: queries.cancel_query(query, by=dm, text="Never mind."),
    }
    for move in moves:
        do[move]()
    message = refused_with_nothing_saved(do[illegal])
    assert f"Query #{query.pk} is" in message


def test_every_action_needs_a_message(world, people):
    dm, assessor = people
    query = ask(world)
    for call in (
        lambda: ask(world, text="  "),
        lambda: queries.answer_query(query, by=assessor, text=""),
        lambda: queries.cancel_query(query, by=dm, text=" "),
    ):
        assert "Write a message" in refused_with_nothing_saved(call)


def test_only_data_managers_manage_and_only_the_addressee_answers(world, people):
    dm, assessor = people
    other = world.users["assessor-north"]  # an assessor of the site, not the form's enterer
    query = ask(world)
    entry = gaf_of(world.tau)
    refused_with_nothing_saved(
        lambda: queries.open_query(entry.visit, entry, by=assessor, category="other", text="Hm")
    )
    refused_with_nothing_saved(lambda: queries.answer_query(query, by=other, text="I did it."))
    refused_with_nothing_saved(lambda: queries.answer_query(query, by=dm, text="Fine."))
    refused_with_nothing_saved(lambda: queries.cancel_query(query, by=assessor, text="No."))
    south_dm = world.users["data_manager-north"]
    south = world.south_tau.visits.get(timepoint__code="baseline")
    refused_with_nothing_saved(  # a data manager of North only, at South
        lambda: queries.open_query(south, by=south_dm, category="other", text="Date?")
    )


def test_a_query_addressed_to_the_site_is_answered_by_any_assessor_who_may_enter_the_form(
    world, people
):
    dm, assessor = people
    visit = world.south_tau.visits.get(timepoint__code="post")  # no assessor assigned
    query = queries.open_query(visit, by=dm, category="missing", text="When was it?")
    assert query.addressed_to is None
    assert queries.may_answer(assessor, query)
    assert not queries.may_answer(world.users["assessor-north"], query)  # not at South
    queries.answer_query(query, by=assessor, text="Next week.")


# --- The arm-word refusal ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, word",
    [
        ("Is this the IMR + TAU participant?", "IMR + TAU"),  # an arm's label
        ("Was the treatment as usual noted?", "treatment as usual"),
        (f"Ask {GROUP_NAME.lower()} about it", GROUP_NAME.lower()),  # an IMR group
        ("facilitator-north says otherwise", "facilitator-north"),  # a facilitator
        ("Check with the IMR staff", "IMR"),  # the programme's words
        ("As in Illness Management sessions", "Illness Management"),
        ("After the recovery group met", "recovery group"),
        ("Which module was that?", "module"),
        ("Their attendance was low", "attendance"),  # the crawler's words
        ("The fidelity review said", "fidelity"),
    ],
)
def test_a_message_naming_an_arm_is_refused_saying_which_word(world, people, text, word):
    """The word is named, except a person's or a group's: that a name is one of the
    programme's facilitators or groups is what a blinded writer must not learn."""
    dm, assessor = people
    unnamed = word in (GROUP_NAME.lower(), "facilitator-north")
    message = refused_with_nothing_saved(lambda: ask(world, text=text))
    if unnamed:
        assert word.lower() not in message.lower() and "person or group" in message, message
    else:
        assert repr(word) in message, message
    query = ask(world)
    message = refused_with_nothing_saved(
        lambda: queries.answer_query(query, by=assessor, text=text)
    )
    if unnamed:
        assert word.lower() not in message.lower() and "person or group" in message
    else:
        assert repr(word) in message
    assert query.messages.count() == 1


def test_the_crawler_searches_pages_for_the_same_words_the_refusal_uses(world):
    assert test_crawler.WORDS is blinding_words.PAGE_WORDS
    words = blinding_words.revealing_words(world.trial)
    patterns = {w.pattern.pattern for w in words if w.kind == "page"}
    assert patterns == set(blinding_words.PAGE_WORDS)
    # The names among them are facts the crawler looks for.
    names = {w.literal for w in words if w.kind in ("arm", "group")}
    # The arms' labels in every language the trial gives them (tests/security/conftest.py).
    assert names == {
        "IMR + TAU",
        "Treatment as usual",
        "IMR + standardbehandling",
        "Standardbehandling",
        "IMR + gebruikelijke zorg",
        "Gebruikelijke zorg",
        GROUP_NAME,
    }
    assert names <= world.revealing_texts()
    for sample in ("Attended twice", "Allocation seen", "catch-up", "stops the intervention"):
        assert blinding_words.names_arm(sample, world.trial), sample
    assert blinding_words.names_arm("GAF-F was 57 at baseline; please check.", world.trial) is None


# --- What open queries block ------------------------------------------------------------------


def test_a_form_with_open_queries_is_neither_verified_nor_locked(world, people):
    dm, assessor = people
    query = ask(world)
    entry = gaf_of(world.tau)
    for status in (FormEntry.Status.VERIFIED, FormEntry.Status.LOCKED):
        message = refused_with_nothing_saved(lambda s=status: crf.set_status(entry, s, by=dm))
        assert f"#{query.pk}" in message
    queries.answer_query(query, by=assessor, text="Right as it is.")
    refused_with_nothing_saved(lambda: crf.set_status(entry, FormEntry.Status.VERIFIED, by=dm))
    queries.close_query(query, by=dm, text="Thanks.")
    assert crf.set_status(entry, FormEntry.Status.VERIFIED, by=dm).status == "verified"


def test_the_casebook_and_the_database_are_not_locked_while_queries_are_open(world, people):
    dm, _ = people
    trial = world.trial
    waiting = DataQuery.objects.open().filter(participant=world.tau).count()
    assert waiting == 1  # the world's question about the post visit
    assert ("open data queries", waiting) in crf.lock_blockers(trial, world.tau)
    assert ("open data queries", 2) in crf.lock_blockers(trial)
    message = refused_with_nothing_saved(
        lambda: crf.lock_casebook(world.tau, by=dm, reason="clean")
    )
    assert "1 open data queries" in message
    Trial.objects.filter(pk=trial.pk).update(status=Trial.Status.CLOSED)
    trial.refresh_from_db()
    assert "2 open data queries" in refused_with_nothing_saved(
        lambda: crf.lock_database(trial, by=dm, reason="all clean")
    )
    query = world.extra["visit_queries"][1]
    queries.cancel_query(query, by=dm, text="Answered by phone.")
    assert not [b for b in crf.lock_blockers(trial, world.tau) if "queries" in b[0]]


# --- Blinding: queries on staff-rated forms ---------------------------------------------------


def test_a_staff_rated_forms_query_reaches_only_its_unblinded_rater(world, people, client):
    dm, assessor = people
    facilitator = world.users[Role.FACILITATOR]
    entry = world.staff_entry  # the IMRS the IMR participant's facilitator rated
    query = queries.open_query(
        entry.visit, entry, by=dm, category="missing", text="Item 3 is empty."
    )
    assert query.addressed_to == facilitator
    assert queries.rater_of(query) == "staff"
    refused_with_nothing_saved(lambda: queries.answer_query(query, by=assessor, text="Hmm"))
    secret = "Not rated: the participant was away that week"
    queries.answer_query(query, by=facilitator, text=secret)
    # The blinded data manager sees that an answer exists, not its words nor its author.
    thread = queries.thread_for(dm, query)
    assert thread[1][1:] == (access.NEUTRAL_AUTHOR, access.TEXT_WITHHELD)
    client.force_login(dm)
    page = client.get(f"/trials/{world.trial.key}/queries/{query.pk}/").content.decode()
    assert secret not in page and facilitator.username not in page
    assert access.TEXT_WITHHELD in page
    # The rater reads the whole thread.
    assert queries.thread_for(facilitator, query)[1][2] == secret
    # A blinded assessor does not see the query at all.
    client.force_login(assessor)
    assert client.get(f"/trials/{world.trial.key}/queries/{query.pk}/").status_code == 404


# --- Pages ------------------------------------------------------------------------------------


def test_a_data_manager_asks_the_assessor_corrects_and_the_data_manager_closes(
    world, people, client
):
    dm, assessor = people
    key, entry = world.trial.key, gaf_of(world.tau)
    visit = entry.visit
    client.force_login(dm)
    page = client.get(f"/trials/{key}/visits/{visit.pk}/").content.decode()
    new = f"/trials/{key}/visits/{visit.pk}/queries/new/"
    assert f"{new}?entry={entry.pk}" in page
    items = client.get(new, {"entry": entry.pk}).content.decode()
    assert f"?entry={entry.pk}&amp;item=gaf_f" in items
    response = client.post(
        new, {"entry": entry.pk, "item": "gaf_f", "category": "range", "text": "57 or 75?"}
    )
    assert response.status_code == 302
    query = DataQuery.objects.latest("pk")
    assert (query.entry, query.item, query.addressed_to) == (entry, "gaf_f", assessor)

    client.force_login(assessor)
    worklist = client.get(f"/trials/{key}/worklist/").content.decode()
    assert "Queries to answer" in worklist and f"/queries/{query.pk}/" in worklist
    form = client.get(f"/trials/{key}/visits/{visit.pk}/forms/gaf_f/single/").content.decode()
    assert f'id="query-{query.pk}"' in form and "57 or 75?" in form
    response = client.post(
        f"/trials/{key}/queries/{query.pk}/answer/",
        {"text": "75 on paper.", "value": "75", "version": gaf_of(world.tau).version},
    )
    assert response.status_code == 302
    assert gaf_of(world.tau).values["gaf_f"] == 75

    client.force_login(dm)
    response = client.post(
        f"/trials/{key}/queries/{query.pk}/act/", {"action": "close", "text": "Thanks."}
    )
    assert response.status_code == 302
    query.refresh_from_db()
    assert query.status == Status.CLOSED
    listing = client.get(f"/trials/{key}/queries/", {"status": "closed"}).content.decode()
    assert f"#{query.pk}" in listing


def test_a_refused_message_is_shown_on_the_page_with_nothing_saved(world, people, client):
    dm, _ = people
    visit = world.tau.visits.get(timepoint__code="post")
    client.force_login(dm)
    before = snapshot()
    response = client.post(
        f"/trials/{world.trial.key}/visits/{visit.pk}/queries/new/",
        {"category": "other", "text": f"Did {GROUP_NAME} meet?"},
    )
    assert response.status_code == 200
    assert "Not sent" in response.content.decode()
    assert snapshot() == before


def test_query_pages_are_not_found_without_the_rights(world, client):
    key, query = world.trial.key, world.extra["visit_queries"][0]
    visit = query.visit
    urls = [
        f"/trials/{key}/queries/",
        f"/trials/{key}/queries/{query.pk}/",
        f"/trials/{key}/visits/{visit.pk}/queries/new/",
    ]
    for user in (world.users[Role.STATISTICIAN], world.users[Role.COORDINATOR]):
        client.force_login(user)
        assert [client.get(url).status_code for url in urls] == [404] * 3, user
    client.force_login(world.users["assessor-north"])  # not the addressee
    assert client.get(urls[1]).status_code == 404
    assert client.post(urls[1] + "answer/", {"text": "x"}).status_code == 404
    client.force_login(world.users[Role.ASSESSOR])  # the addressee, who does not manage
    assert client.post(urls[1] + "act/", {"action": "cancel", "text": "x"}).status_code == 404


def test_the_worklist_finds_answerable_queries_behind_many_the_user_may_not_answer(world, people):
    """Older site-wide queries on a participant who unblinded the assessor fill the first
    candidates; the assessor's own query behind them is still listed."""
    dm, assessor = people
    DataQuery.objects.update(status=DataQuery.Status.CANCELLED)  # the world's own, out of the way
    unblinded_to = world.south_tau
    crf.record_unblinding(
        unblinded_to, assessor, by=dm, occurred_on=timezone.localdate(), description="Told me."
    )
    visit = unblinded_to.visits.get(timepoint__code="post")
    for n in range(6):
        queries.open_query(visit, by=dm, category="other", text=f"Date {n}?")
    mine = ask(world)  # the GAF-F the assessor entered: addressed to them, opened last
    sites = world.trial.sites.all()
    assert [q.pk for q in queries.waiting_on(assessor, world.trial, sites, limit=2)] == [mine.pk]


# --- The reminder digest ----------------------------------------------------------------------


def test_open_queries_older_than_the_reminder_days_are_in_the_addressees_digest(world, people):
    dm, assessor = people
    for user in world.users.values():
        user.email = f"{user.username}@example.org"
        user.save(update_fields=["email"])
    days = world.trial.query_reminder_days
    now = timezone.now()
    old, recent = world.extra["visit_queries"]
    DataQuery.objects.filter(pk=old.pk).update(opened_at=now - datetime.timedelta(days=days))
    site_wide = queries.open_query(
        world.south_tau.visits.get(timepoint__code="post"), by=dm, category="other", text="Date?"
    )
    DataQuery.objects.filter(pk=site_wide.pk).update(
        opened_at=now - datetime.timedelta(days=days + 3)
    )
    answered = ask(world)
    queries.answer_query(answered, by=assessor, text="It is right.")
    DataQuery.objects.filter(pk=answered.pk).update(opened_at=now - datetime.timedelta(days=30))
    Visit.objects.update(missed=True)  # only the query lines matter here
    today = timezone.localdate()
    reminders.queue_reminders(today)
    lines = set(
        Reminder.objects.filter(kind=Reminder.Kind.QUERY).values_list(
            "recipient__username", "visit_id"
        )
    )
    assert lines == {
        (assessor.username, old.visit_id),  # addressed to the visit's assessor
        (assessor.username, site_wide.visit_id),  # the site's assessors: all-site assessor
    }
    assert reminders.queue_reminders(today) == 0  # once a day
    mail.outbox.clear()
    reminders.send_pending()
    body = next(m.body for m in mail.outbox if m.to == [assessor.email])
    assert "Data queries waiting for your answer" in body
    assert f"{world.imr.participant_id} (North CMHC): Post-treatment, 1 open data query" in body
    assert world.tau.participant_id not in body  # its query is not old enough yet
    assert blinding_words.names_arm(body, world.trial) is None


def test_a_digest_line_on_a_staff_rated_form_is_dropped_once_its_rater_is_only_an_assessor(
    world, people
):
    """Queued while the facilitator rated the form; by send time they hold only the assessor
    role, which passes the digest's role rule but may not answer a staff-rated query: the line
    is dropped with the reason and nothing is mailed (not even "0 open data queries")."""
    dm, _ = people
    facilitator = world.users[Role.FACILITATOR]
    facilitator.email = "rater@example.org"
    facilitator.save(update_fields=["email"])
    entry = world.staff_entry
    query = queries.open_query(entry.visit, entry, by=dm, category="missing", text="Item 3?")
    days = world.trial.query_reminder_days
    DataQuery.objects.filter(pk=query.pk).update(
        opened_at=timezone.now() - datetime.timedelta(days=days + 1)
    )
    Visit.objects.update(missed=True)
    DataQuery.objects.exclude(pk=query.pk).update(status=DataQuery.Status.CANCELLED)
    reminders.queue_reminders(timezone.localdate())
    line = Reminder.objects.get(kind=Reminder.Kind.QUERY, recipient=facilitator)
    Membership.objects.filter(user=facilitator, role=Role.FACILITATOR).update(active=False)
    grant(facilitator, world.trial, Role.ASSESSOR, entry.participant.site)
    mail.outbox.clear()
    reminders.send_pending()
    assert not [m for m in mail.outbox if m.to == [facilitator.email]]
    line.refresh_from_db()
    assert line.sent_at is None and line.dropped_at is not None
    assert "any more" in line.last_error
