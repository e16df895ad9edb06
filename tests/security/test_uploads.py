"""Hostile files: the allocation-list upload (oversized, formulas, binary, wrong encodings)
and the YAML the trial and instrument loaders read (python tags, encodings). Each is refused
with a message that says why, and nothing is saved or run."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assessments.definitions import DefinitionError, load_file
from imrtrial import trialconfig
from imrtrial.models import Role, Trial
from randomization import listing
from tests.factories import grant, load_list_trial, make_user

pytestmark = pytest.mark.django_db

GOOD = "stratum,slot,arm\nteam=team-01,1,imr\nteam=team-01,2,cau\n"


@pytest.fixture
def list_trial():
    return load_list_trial()


@pytest.fixture
def holder(list_trial, client):
    user = make_user("holder")
    grant(user, list_trial, Role.KEY_HOLDER)
    client.force_login(user)
    return user


def upload(client, trial, content, name="list.csv"):
    url = reverse("randomization:list_upload", args=[trial.key])
    return client.post(url, {"file": SimpleUploadedFile(name, content, "text/csv")})


@pytest.mark.parametrize(
    "content, message",
    [
        (b"x" * (5 * 1024 * 1024), "larger than 2 MB"),  # streamed to a temporary file first
        (GOOD.encode().replace(b"team=team-01,1", b'"=HYPERLINK(""http://x"")",1'), "formulas"),
        (GOOD.encode().replace(b",imr", b",=1+2"), "formulas"),
        (GOOD.encode().replace(b",imr", b",@SUM(A1)"), "formulas"),
        (GOOD.encode().replace(b"\nteam", b"\n\t=cmd|'/C calc'!A0,team"), "formulas"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not UTF-8"),
        (GOOD.encode().replace(b"imr", b"im\x00r"), "NUL bytes"),
        ("stratum,slot,arm\nteam=team-01,1,imr\n".encode("utf-16"), "not UTF-8"),
        ("stratum,slot,arm\nteam=tëam-01,1,imr\n".encode("latin-1"), "not UTF-8"),
        (b"", "empty"),
        ("stratum,slot,arm\nteam=team-01,\u00b2,imr\n".encode(), "not a whole number"),
        (b'stratum,slot,arm\nteam=team-01,1,"imr\r', "not CSV"),
    ],
)
def test_a_hostile_list_is_refused_with_the_reason_and_nothing_is_stored(
    client, list_trial, holder, content, message
):
    response = upload(client, list_trial, content)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert list_trial.list_entries.count() == 0


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_a_list_saved_by_excel_with_a_bom_and_crlf_imports(client, list_trial, holder, newline):
    content = "\ufeff".encode() + GOOD.replace("\n", newline).encode()
    assert upload(client, list_trial, content).status_code == 302
    assert list_trial.list_entries.count() == 2


CSVISH = st.text(alphabet=',"\n\r\t =+-@team01imrcau23²٣\x00é', max_size=200)


@settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.binary(max_size=2000)
    | st.text(max_size=500).map(str.encode)
    | CSVISH.map(lambda body: ("stratum,slot,arm\n" + body).encode())
)
def test_random_bytes_never_crash_the_list_parser(list_trial, content):
    """Whatever the bytes, the parser answers with rows or with the problems, and the page
    with a message: never an exception."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return  # the form refuses it before the parser (above)
    try:
        rows = listing.parse_list(list_trial, text)
    except listing.ListError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
    else:
        assert rows and all(isinstance(slot, int) and slot >= 1 for _, slot, _ in rows)


# --- YAML -------------------------------------------------------------------------------------

TAGS = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:os.system ['touch {marker}']",
    "!!python/name:os.system",
    "!!python/object/apply:subprocess.check_output [['touch', '{marker}']]",
]


@pytest.mark.parametrize("tag", TAGS)
def test_a_trial_file_with_python_tags_is_refused_and_nothing_runs(tmp_path, tag):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.yaml"
    text = trialconfig.resolve("danish").read_text()
    path.write_text(text.replace("name: Danish", f"name: {tag.format(marker=marker)}\n# "))
    with pytest.raises(CommandError, match="not valid YAML"):
        call_command("load_trial", str(path))
    assert not marker.exists()
    assert Trial.objects.count() == 0


@pytest.mark.parametrize(
    "content, message",
    [
        ("key: x\n".encode("utf-16"), "cannot read the file"),
        ("name: Tr\xefal\n".encode("latin-1"), "cannot read the file"),
        (b"\x00\x01\x02\xff", "cannot read the file"),
        (
            b"a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\n",
            "unknown key .a.",
        ),
        (b"- just\n- a list\n", "must be a mapping"),
    ],
)
def test_a_trial_file_that_is_not_a_trial_is_refused_whole(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        call_command("load_trial", str(path))
    assert Trial.objects.count() == 0


def test_a_trial_file_with_a_utf8_bom_loads(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeff".encode() + trialconfig.resolve("danish").read_bytes())
    call_command("load_trial", str(path))
    assert Trial.objects.get().key == "danish-imr"


def test_an_instrument_file_with_python_tags_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "gaf_f.yaml"
    path.write_text(f"code: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(DefinitionError, match="cannot read"):
        load_file(path)
    assert not marker.exists()
