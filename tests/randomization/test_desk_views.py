"""The phone desk through HTTP, as a coordinator, and as every blinded role."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from imrtrial.models import AccessLog, Participant, Role
from randomization.models import Allocation, Withdrawal
from tests.factories import grant, make_ready_participant, make_user, yes_to_all

pytestmark = pytest.mark.django_db
BLINDED = [Role.ASSESSOR, Role.DATA_MANAGER, Role.STATISTICIAN, Role.TRIAL_ADMIN]


def screening_post(trial, site, **extra):
    data = {
        "site": site.pk,
        "screened_on": "2026-11-02",
        "referral_source": "GP",
        "full_name": "Ada Jensen",
        "national_id": "010190-1234",
        "phone": "12345678",
        "consent_date": "2026-11-02",
        "consent_form_version": "2.0",
        "consent_obtained_by": "Dr Who",
    }
    data |= {f"c_{code}": "yes" if ok else "no" for code, ok in yes_to_all(trial).items()}
    data.update(extra)
    return data


def test_a_coordinator_screens_enrols_and_randomizes_and_a_refresh_allocates_nothing(
    client, danish, coordinator, django_capture_on_commit_callbacks
):
    coordinator.email = "desk@example.org"
    coordinator.save(update_fields=["email"])
    client.force_login(coordinator)
    site = danish.sites.first()
    response = client.post(
        reverse("randomization:screen", args=[danish.key]), screening_post(danish, site)
    )
    assert response.status_code == 302
    screening_url = response["Location"]
    page = client.get(screening_url).content.decode()
    assert "Eligible" in page and "Ada Jensen" in page
    response = client.post(screening_url, {"enrol": "1", "diagnosis": "bipolar"})
    participant = Participant.objects.get()
    assert participant.factor_levels == {"diagnosis": "bipolar"}
    randomize_url = reverse(
        "randomization:randomize", args=[danish.key, participant.participant_id]
    )
    assert response["Location"] == randomize_url
    page = client.get(randomize_url).content.decode()
    assert "Bipolar disorder (F31.x)" in page and site.name in page
    form = {"baseline_completed_on": "2026-11-01", "read_back": "on"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(randomize_url, form)
    result_url = reverse("randomization:result", args=[danish.key, participant.participant_id])
    assert response["Location"] == result_url
    allocation = Allocation.objects.get()
    page = client.get(result_url).content.decode()
    assert allocation.arm.label in page and allocation.confirmation_code in page
    assert allocation.randomization_number in page
    # The caller's line drops and the coordinator presses Randomize again.
    again = client.post(randomize_url, form)
    assert again["Location"] == result_url
    assert Allocation.objects.count() == 1
    assert mail.outbox == []  # the coordinator read it back; no recruiter is mailed arms
    assert AccessLog.objects.filter(action=AccessLog.Action.VIEW_ALLOCATION).exists()


def test_a_bad_screening_is_refused_with_field_errors_and_nothing_saved(
    client, danish, coordinator
):
    client.force_login(coordinator)
    data = screening_post(
        danish, danish.sites.first(), screened_on="2999-01-01", consent_form_version=""
    )
    del data["c_adult"]
    response = client.post(reverse("randomization:screen", args=[danish.key]), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "cannot be in the future" in page
    assert "Consent needs all three" in page
    assert "This field is required" in page
    assert not danish.screenings.exists()


def test_the_randomize_page_refuses_without_read_back_and_allocates_nothing(
    client, danish, coordinator
):
    p = make_ready_participant(danish, coordinator)
    client.force_login(coordinator)
    url = reverse("randomization:randomize", args=[danish.key, p.participant_id])
    response = client.post(url, {})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert not Allocation.objects.exists()


def test_a_refused_randomization_records_no_baseline_date_either(
    client, danish, coordinator, settings
):
    """The baseline date reported on the call and the allocation are one transaction: when
    randomizing is refused, the date typed with it is not kept either."""
    p = make_ready_participant(danish, coordinator)
    Participant.objects.filter(pk=p.pk).update(baseline_completed_on=None)
    settings.RANDOMIZATION_SECRET = ""  # refused after the form is valid: "not configured"
    client.force_login(coordinator)
    url = reverse("randomization:randomize", args=[danish.key, p.participant_id])
    response = client.post(url, {"baseline_completed_on": "2026-11-01", "read_back": "on"})
    assert response.status_code == 200 and "not configured" in response.content.decode()
    assert Participant.objects.get(pk=p.pk).baseline_completed_on is None
    assert not Allocation.objects.exists()


@pytest.mark.parametrize("role", BLINDED)
def test_every_desk_page_is_404_for_blinded_roles(role, client, danish, coordinator):
    p = make_ready_participant(danish, coordinator)
    client.force_login(coordinator)
    client.post(
        reverse("randomization:randomize", args=[danish.key, p.participant_id]), {"read_back": "on"}
    )
    user = make_user(f"blind-{role}")
    grant(user, danish, role)
    client.force_login(user)
    number = p.screening.screening_number
    pid = p.participant_id
    for name, args in [
        ("desk", []),
        ("screen", []),
        ("screening", [number]),
        ("randomize", [pid]),
        ("result", [pid]),
        ("in_error", [pid]),
        ("allocations", []),
        ("allocation_history", []),
    ]:
        url = reverse(f"randomization:{name}", args=[danish.key, *args])
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"reason": "x", "read_back": "on"}).status_code == 404, url
    assert Allocation.objects.get().in_error is False


@pytest.mark.parametrize("role", BLINDED)
def test_blinded_roles_see_no_identifying_details_and_no_level_1_withdrawal(
    role, client, danish, coordinator
):
    p = make_ready_participant(
        danish, coordinator, full_name="Ada Jensen", national_id="010190-1234"
    )
    client.force_login(coordinator)
    client.post(
        reverse("randomization:randomize", args=[danish.key, p.participant_id]), {"read_back": "on"}
    )
    Withdrawal.objects.create(
        participant=p,
        level=1,
        withdrawn_on="2026-11-05",
        reason="stopped groups",
        recorded_by=coordinator,
    )
    user = make_user(f"blind2-{role}")
    grant(user, danish, role)
    client.force_login(user)
    page = client.get(
        reverse("assessments:participant_detail", args=[danish.key, p.participant_id])
    ).content.decode()
    for secret in ["Ada Jensen", "010190", "stopped groups", "Stops the intervention"]:
        assert secret not in page


def test_a_coordinator_flags_an_allocation_in_error_with_a_reason(client, danish, coordinator):
    p = make_ready_participant(danish, coordinator)
    client.force_login(coordinator)
    client.post(
        reverse("randomization:randomize", args=[danish.key, p.participant_id]), {"read_back": "on"}
    )
    url = reverse("randomization:in_error", args=[danish.key, p.participant_id])
    client.post(url, {"reason": ""})
    assert not Allocation.objects.get().in_error
    client.post(url, {"reason": "Randomized the wrong person"})
    assert Allocation.objects.get().in_error


# --- What the phone desk shows: the participant at hand, never the history ------------------


@pytest.fixture
def one_stratum(danish, coordinator):
    """Six participants randomized in one stratum (one centre, one diagnosis) by the real
    sequence: both arms are among them whatever the block size."""
    from randomization import services

    site = danish.sites.order_by("code").first()
    made = []
    for _ in range(6):
        p = make_ready_participant(danish, coordinator, site=site)
        made.append(services.randomize(p, by=coordinator))
    assert {a.arm.code for a in made} == {"imr", "tau"}
    return made


def page_text(response, trial):
    """The page's visible text, without the trial's name (which names both arms)."""
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", text.replace(trial.name, " "))


def arm_labels_in(text, trial):
    labels = sorted((a.label for a in trial.arms.all()), key=len, reverse=True)
    return re.findall("|".join(rf"(?<!\w){re.escape(label)}(?!\w)" for label in labels), text)


def randomization_urls(trial, values):
    """Every URL of the randomization app, once for each value a coordinator could put in it;
    a new URL with a parameter this test does not know fails it."""
    import itertools

    from randomization.urls import urlpatterns

    for pattern in urlpatterns:
        params = re.findall(r"<(?:\w+:)?(\w+)>", str(pattern.pattern))
        assert set(params) <= set(values), f"{pattern.name}: give the test values for {params}"
        for combo in itertools.product(*(values[p] for p in params)):
            yield reverse(
                f"randomization:{pattern.name}", kwargs=dict(zip(params, combo, strict=True))
            )


def test_no_page_a_coordinator_reaches_lists_arms_in_order_or_shows_block_sizes(
    client, danish, coordinator, one_stratum
):
    client.force_login(coordinator)
    pids = [a.participant.participant_id for a in one_stratum]
    urls = list(
        randomization_urls(
            danish,
            {
                "trial_key": [danish.key],
                "participant_id": pids,
                "number": [a.participant.screening.screening_number for a in one_stratum],
            },
        )
    )
    lookup = reverse("randomization:allocations", args=[danish.key])
    urls += [f"{lookup}?participant={q}" for q in [*pids, "", "%", "DK", "*"]]
    seen = 0
    for url in urls:
        response = client.get(url)
        if response.status_code != 200:
            continue
        seen += 1
        text = page_text(response, danish)
        shown = [pid for pid in pids if pid in text]
        arms = arm_labels_in(text, danish)
        # An arm is shown only on a page about one participant, and only once.
        assert not arms or (len(shown) == 1 and len(arms) == 1), (url, shown, arms)
        lowered = text.lower()
        for word in ("block", "slot", "stratum", "strata", "next allocation"):
            assert word not in lowered, (url, word)
        sizes = danish.block_sizes
        assert not re.search(r"\b" + r"\W{1,3}".join(map(str, sizes)) + r"\b", text), url
    assert seen >= len(pids) * 2  # the result pages and the look-ups were read


def test_a_coordinator_looks_up_one_participant_and_sees_only_that_one(
    client, danish, coordinator, one_stratum
):
    client.force_login(coordinator)
    first, *others = one_stratum
    url = reverse("randomization:allocations", args=[danish.key])
    page = client.get(url, {"participant": first.participant.participant_id})
    text = page_text(page, danish)
    for shown in (first.arm.label, first.randomization_number, first.confirmation_code):
        assert shown in text
    assert not any(a.participant.participant_id in text for a in others)
    assert AccessLog.objects.filter(
        user=coordinator,
        action=AccessLog.Action.VIEW_ALLOCATION,
        target=str(first.participant),
    ).exists()
    # The page without a participant shows no arm at all, and logs nothing.
    logged = AccessLog.objects.count()
    assert arm_labels_in(page_text(client.get(url), danish), danish) == []
    assert AccessLog.objects.count() == logged


def test_a_look_up_outside_ones_sites_reads_like_no_such_participant(
    client, danish, coordinator, one_stratum
):
    site = one_stratum[0].participant.site
    elsewhere = make_user("desk-elsewhere")
    grant(elsewhere, danish, Role.COORDINATOR, danish.sites.exclude(pk=site.pk).first())
    client.force_login(elsewhere)
    url = reverse("randomization:allocations", args=[danish.key])
    pid = one_stratum[0].participant.participant_id
    theirs = page_text(client.get(url, {"participant": pid}), danish).replace(pid, "X")
    nobody = page_text(client.get(url, {"participant": "DK-NOBODY"}), danish)
    assert theirs == nobody.replace("DK-NOBODY", "X")
    assert arm_labels_in(theirs, danish) == []


def test_the_key_holder_sees_the_allocations_of_each_stratum_in_order(
    client, danish, coordinator, one_stratum
):
    holder = make_user("key-holder")
    grant(holder, danish, Role.KEY_HOLDER)
    client.force_login(holder)
    lookup = client.get(reverse("randomization:allocations", args=[danish.key]))
    history_url = reverse("randomization:allocation_history", args=[danish.key])
    assert history_url in lookup.content.decode()
    response = client.get(history_url)
    assert response.status_code == 200
    text = page_text(response, danish)
    positions = [text.index(a.participant.participant_id) for a in one_stratum]
    assert positions == sorted(positions)
    assert len(arm_labels_in(text, danish)) == len(one_stratum)
    assert one_stratum[0].stratum.key in text
    assert AccessLog.objects.filter(user=holder, action=AccessLog.Action.VIEW_ALLOCATION).exists()


@pytest.mark.parametrize(
    "role",
    [*BLINDED, Role.COORDINATOR, Role.FACILITATOR, Role.FIDELITY_RATER],
)
def test_the_history_is_404_for_everyone_but_the_key_holder(role, client, danish, one_stratum):
    user = make_user(f"no-history-{role}")
    grant(user, danish, role)
    client.force_login(user)
    response = client.get(reverse("randomization:allocation_history", args=[danish.key]))
    assert response.status_code == 404
    assert not any(a.participant.participant_id in response.content.decode() for a in one_stratum)
    if role in (Role.COORDINATOR, Role.FACILITATOR):
        lookup = client.get(reverse("randomization:allocations", args=[danish.key]))
        assert "allocation_history" not in lookup.content.decode()
        assert "by-stratum" not in lookup.content.decode()


def test_a_cached_renderings_key_changes_with_the_templates_and_catalogs_that_draw_it(
    tmp_path, settings, danish
):
    """A deploy that changes a template, a translation (or crispy) must not be served the
    fields the release before it drew into a shared cache: the key holds a digest of the
    project's templates and catalogs and of the rendering packages' versions
    (imrtrial.forms.rendering_release)."""
    from imrtrial.forms import rendering_release, unbound_rendering_key
    from randomization.forms import ScreeningForm

    def key():
        rendering_release.cache_clear()
        return unbound_rendering_key(
            ScreeningForm(None, criteria=danish.criteria.all(), sites=danish.sites.all())
        )

    templates, catalogs = tmp_path / "templates", tmp_path / "locale" / "zz" / "LC_MESSAGES"
    (templates / "randomization").mkdir(parents=True)
    catalogs.mkdir(parents=True)
    fields = templates / "randomization" / "_screening_fields.html"
    fields.write_text("{{ field }}")
    catalog = catalogs / "django.mo"
    catalog.write_bytes(b"one")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [templates]}]
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    try:
        before = key()
        assert key() == before
        fields.write_text("<div>{{ field }}</div>")
        edited = key()
        assert edited != before
        (templates / "new.html").write_text("")
        added = key()
        assert added not in (before, edited)
        catalog.write_bytes(b"two")  # a deploy that changes only a translation
        assert key() not in (before, edited, added)
    finally:
        rendering_release.cache_clear()


def test_the_screening_forms_fields_are_drawn_from_the_cache_only_for_the_same_definition(
    client, danish, coordinator
):
    """The unbound screening form's fields come from the cache (imrtrial.forms.
    unbound_rendering_key), and only while nothing they are drawn from has changed: a site's
    name, a criterion's text, the reader's language. A form that comes back with errors is
    drawn afresh, with them."""
    from imrtrial.forms import unbound_rendering_key
    from imrtrial.models import UserSettings
    from randomization.forms import ScreeningForm

    def form():
        return ScreeningForm(None, criteria=danish.criteria.all(), sites=danish.sites.all())

    assert unbound_rendering_key(form()) == unbound_rendering_key(form())
    with pytest.raises(ValueError):
        unbound_rendering_key(ScreeningForm({}, criteria=[], sites=danish.sites.all()))

    client.force_login(coordinator)
    url = reverse("randomization:screen", args=[danish.key])

    def page(**headers):
        return client.get(url, **headers).content.decode()

    csrf = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    first = page()
    assert csrf.sub("", page()) == csrf.sub("", first)  # the second from the cache
    site = danish.sites.order_by("code").first()
    site.name = "Renamed Centre Nord"
    site.save(update_fields=["name"])
    assert "Renamed Centre Nord" in page()
    criterion = danish.criteria.first()
    criterion.text = "A criterion reworded since"
    criterion.translations = {}
    criterion.save(update_fields=["text", "translations"])
    assert "A criterion reworded since" in page()
    for language, words in (("nl", "Gescreend op"), ("da", "Screenet den"), ("en", "Screened on")):
        UserSettings.objects.update_or_create(user=coordinator, defaults={"language": language})
        assert words in page(), language
    response = client.post(url, screening_post(danish, site, screened_on="2999-01-01"))
    assert "cannot be in the future" in response.content.decode()
