"""The API is as blinded as the pages.

For every endpoint a blinded role's token can call, the answers about two participants of
different arms (same site, same visit state, the same forms and queries) are identical once
their ids are removed (and, in the dataset, the neutral arm code, which is the dataset's
design: exports.dataset), and no arm label, group, attendance or fidelity word appears in any
answer. The endpoints only the unblinded may use answer 404 to every blinded token."""

import json
import re

import pytest

from assessments import queries
from assessments import services as crf
from imrtrial.blinding_words import PAGE_WORDS
from imrtrial.models import Participant, Role
from tests.api.conftest import Api, body, make_token
from tests.factories import make_allocation, make_person, make_ready_participant, make_trial
from tests.security.conftest import BLINDED_ROLES, _timepoints, build_world
from tests.security.test_crawler import EXEMPT

# The codebook's own variable labels, the same for every participant: configuration, as the
# crawler exempts the roles' names ("Allocation flagged as made in error" is a variable).
CODEBOOK_LABELS = ["Allocation flagged as made in error"]
GETS = [
    ("/api/v1/metadata/", {}),
    ("/api/v1/records/", {"shape": "long"}),
    ("/api/v1/records/", {"shape": "wide"}),
    ("/api/v1/records/", {"shape": "long", "format": "csv"}),
    ("/api/v1/records/", {"shape": "wide", "format": "csv"}),
    ("/api/v1/records/", {"shape": "wide", "form": "gaf_f", "timepoint": "baseline"}),
    ("/api/v1/status/", {}),
    ("/api/v1/queries/", {}),
]


def words_in(text, facts=()):
    found = [fact for fact in facts if fact in text]
    for phrase in [*EXEMPT, *CODEBOOK_LABELS]:
        text = re.sub(re.escape(phrase), " ", text, flags=re.I)
    for pattern in PAGE_WORDS:
        if m := re.search(pattern, text):
            found.append(text[max(0, m.start() - 40) : m.end() + 40])
    return found


@pytest.fixture
def pair(db):
    """Two participants at North, one in each arm, randomized the same day, with the same
    forms entered and the same query asked about each."""
    trial = make_trial()
    _timepoints(trial)
    north = trial.sites.get(code="north")
    desk = make_person(trial, Role.COORDINATOR)
    users = {role: make_person(trial, role) for role in BLINDED_ROLES}
    pair = {}
    for arm in ("imr", "tau"):
        p = make_ready_participant(trial, desk, site=north)
        make_allocation(p, arm, by=desk)
        Participant.objects.filter(pk=p.pk).update(randomized_on="2026-03-02")
        pair[arm] = Participant.objects.get(pk=p.pk)
    crf.schedule_visits(trial)
    for p in pair.values():
        baseline = p.visits.get(timepoint__code="baseline")
        crf.save_entry(
            baseline,
            "gaf_f",
            {"gaf_f": "61"},
            by=users[Role.ASSESSOR],
            kind="single",
            complete=True,
        )
        queries.open_query(
            baseline, by=users[Role.DATA_MANAGER], category="other", text="Date of the visit?"
        )
    return trial, users, pair


def _without(value, ids):
    """The value with every participant id, primary key and time of day (when a row was
    written in the test, not a fact of the participant) replaced by a placeholder."""
    text = json.dumps(value, sort_keys=True, default=str)
    for found in ids:
        text = text.replace(found, "<id>")
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?", "<time>", text)
    return re.sub(r'"id": \d+', '"id": 0', text)


def _parts(path, params, response, pair):
    """{arm: the part of the answer about that arm's participant}."""
    ids = {arm: p.participant_id for arm, p in pair.items()}
    text = body(response)
    if path.endswith("/records/"):
        if params.get("format") == "csv":
            lines = text.splitlines()
            header = lines[0].split(",")
            rows = [line.split(",") for line in lines[1:]]
        else:
            data = json.loads(text)
            header, rows = data["columns"], data["rows"]
        arm = header.index("arm")
        return {
            a: [[c for k, c in enumerate(r) if k != arm] for r in rows if r[0] == pid]
            for a, pid in ids.items()
        }
    data = json.loads(text)
    if path.endswith("/status/"):
        return {
            a: [p for p in data["participants"] if p["participant_id"] == pid]
            for a, pid in ids.items()
        }
    if path.endswith("/queries/"):
        return {a: [q for q in data if q["participant_id"] == pid] for a, pid in ids.items()}
    return None


@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_blinded_tokens_get_the_same_answers_about_both_arms(role, pair):
    trial, users, pair = pair
    api = Api(make_token(users[role], trial))
    labels = [arm.label for arm in trial.arms.all()]
    ids = [p.participant_id for p in pair.values()]
    answered = 0
    for path, params in GETS:
        response = api.get(path, params)
        assert response.status_code in (200, 404), (role, path, response.status_code)
        if response.status_code == 404:
            continue
        answered += 1
        assert words_in(body_of := body(response), labels) == [], (role, path)
        response = api.get(path, params)  # body() consumed the stream
        parts = _parts(path, params, response, pair)
        if parts is not None:
            assert parts["imr"], (role, path, "the participant is not in the answer")
            assert _without(parts["imr"], ids) == _without(parts["tau"], ids), (role, path)
        assert body_of
    assert answered >= 1
    # Per participant, with a body: randomize (unblinded only), answering each one's query,
    # importing the same form for each.
    answers = {}
    for arm, p in pair.items():
        randomize = api.post("/api/v1/randomize/", {"participant_id": p.participant_id, "key": arm})
        assert randomize.status_code == 404, (role, "randomize")
        query = p.queries.get()
        answer = api.post(f"/api/v1/queries/{query.pk}/answer/", {"text": "On the 2nd."})
        imported = api.post(
            "/api/v1/forms/import/",
            {
                "entries": [
                    {
                        "participant_id": p.participant_id,
                        "timepoint": "post",
                        "instrument": "gaf_f",
                        "values": {"gaf_f": "64"},
                    }
                ]
            },
        )
        answers[arm] = [(r.status_code, json.loads(body(r))) for r in (randomize, answer, imported)]
        for r in (randomize, answer, imported):
            assert words_in(json.dumps(answers[arm]), labels) == [], (role, r)
    assert _without(answers["imr"], ids) == _without(answers["tau"], ids), role


def test_the_check_finds_a_planted_difference_and_a_planted_word():
    assert words_in("the IMR group met", ["IMR + TAU"]) != []
    assert words_in('{"x": "Attended"}') != []
    assert words_in("IMR + TAU", ["IMR + TAU"]) == ["IMR + TAU"]
    assert _without({"a": "P-1", "id": 3}, ["P-1"]) == _without({"a": "P-2", "id": 9}, ["P-2"])
    assert _without({"a": 1}, []) != _without({"a": 2}, [])
    assert _without({"at": "2026-01-01T10:00:00Z"}, []) == _without({"at": "2026-01-01T11:00Z"}, [])


@pytest.fixture
def world(db):
    return build_world()


@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_no_blinded_token_reads_an_allocation_revealing_fact_in_the_security_world(role, world):
    """The world of the crawler: a group, attendance, fidelity, a level-1 withdrawal and free
    text by unblinded staff, in one arm only. Nothing of it reaches a blinded token."""
    api = Api(make_token(world.users[role], world.trial))
    facts = world.revealing_texts()
    for path, params in GETS:
        response = api.get(path, params)
        assert response.status_code in (200, 404), (role, path)
        assert words_in(body(response), facts) == [], (role, path)
    for p in (world.imr, world.tau):
        response = api.post("/api/v1/randomize/", {"participant_id": p.participant_id, "key": "k"})
        assert response.status_code == 404, role
