"""The translation catalogues are complete: every marked string is in them (an extraction with
`makemessages` into a copy finds no msgid the committed catalogues lack), and each of da and nl
translates every entry, none fuzzy, keeping the placeholders of the English."""

import re
import shutil
from collections import Counter
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command

ROOT = Path(settings.BASE_DIR)
LANGUAGES = [code for code, _name in settings.LANGUAGES if code != "en"]
# The same as `make messages` (Makefile): what is not ours, or not shipped, is not extracted.
IGNORED = [".venv", "tests", "bench", "node_modules", "staticfiles", "locale"]
# %(name)s, %s, %d... (python-format, and blocktranslate's placeholders); %% is a literal.
PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifrxXeEgGcoa]")


def catalogue(language, root=ROOT):
    return polib.pofile(str(root / "locale" / language / "LC_MESSAGES" / "django.po"))


def key(entry):
    return (entry.msgctxt, entry.msgid, entry.msgid_plural)


def placeholders(text):
    return Counter(PLACEHOLDER.findall(text.replace("%%", "")))


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """The catalogues `make messages` would write now, made in a copy of locale/."""
    copy = tmp_path_factory.mktemp("extract")
    shutil.copytree(ROOT / "locale", copy / "locale")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        mp.setattr(settings, "LOCALE_PATHS", [copy / "locale"])
        call_command(
            "makemessages",
            locale=LANGUAGES,
            no_location=True,
            no_obsolete=True,
            ignore_patterns=IGNORED,
            verbosity=0,
        )
    return copy


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_string_is_in_the_committed_catalogue(extracted, language):
    committed = {key(e) for e in catalogue(language) if not e.obsolete}
    found = [e for e in catalogue(language, extracted) if not e.obsolete]
    missing = sorted(str(e.msgid) for e in found if key(e) not in committed)
    assert not missing, (
        f"{len(missing)} marked string(s) missing from locale/{language}: run `make messages` "
        "and translate them:\n" + "\n".join(missing)
    )
    stale = sorted(str(k[1]) for k in committed - {key(e) for e in found})
    assert not stale, "No longer marked anywhere (run `make messages`):\n" + "\n".join(stale)


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_is_translated_with_nothing_fuzzy(language):
    po = catalogue(language)
    assert po.metadata.get("Language") == language
    untranslated = [e.msgid for e in po.untranslated_entries()]
    fuzzy = [e.msgid for e in po.fuzzy_entries()]
    assert not untranslated, f"untranslated in {language}:\n" + "\n".join(untranslated)
    assert not fuzzy, f"fuzzy in {language}:\n" + "\n".join(fuzzy)


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(language):
    wrong = []
    for entry in catalogue(language).translated_entries():
        if entry.msgid_plural:
            # Every form has the plural's placeholders; the singular may spell out the number.
            allowed = placeholders(entry.msgid) | placeholders(entry.msgid_plural)
            for index, text in entry.msgstr_plural.items():
                have = placeholders(text)
                if have - allowed or (int(index) > 0 and have != placeholders(entry.msgid_plural)):
                    wrong.append(f"{entry.msgid_plural!r} [{index}]: {text!r}")
        elif placeholders(entry.msgstr) != placeholders(entry.msgid):
            wrong.append(f"{entry.msgid!r}: {entry.msgstr!r}")
    assert not wrong, f"placeholders changed in {language}:\n" + "\n".join(wrong)


def test_catalogues_compile(tmp_path):
    """msgfmt accepts each catalogue (checking its format strings)."""
    import subprocess

    for language in LANGUAGES:
        source = ROOT / "locale" / language / "LC_MESSAGES" / "django.po"
        result = subprocess.run(
            ["msgfmt", "--check-format", "-o", str(tmp_path / f"{language}.mo"), str(source)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
