"""Arm-revealing words: the one definition the blinding crawler searches blinded pages for and
the free-text refusal (data queries) refuses.

Contract: `revealing_words(trial)` lists every word or phrase that names, or points to, an arm
of the trial: the words no blinded page may say (PAGE_WORDS: attendance, fidelity, allocation),
the programme's own words (PROGRAMME_WORDS), the arms' labels and codes, and what later apps
register through `register(source)` (IMR group names, facilitators' names and usernames:
fidelity/blinding.py), discovered as each app's `blinding` module, the way home links are.
`names_arm(text, trial)` is the first of them found in `text` (a `Found` saying which word, of
what kind), or None. Text meant for blinded readers that names one is refused, with the word.

The crawler (tests/security/test_crawler.py) takes PAGE_WORDS as its word list and the arm
labels and group names as facts; the programme words and people's names it cannot search whole
pages for (an instrument is called the Illness Management and Recovery Scale; the admin lists
users), so they are refused where text is written.
"""

import re
from dataclasses import dataclass

from django.utils.module_loading import autodiscover_modules

from .models import Membership, Role

# Facts about a participant's arm that no blinded page may say: the crawler's word list.
PAGE_WORDS = [
    r"\bIMR groups?\b",
    r"(?i)\battendance\b",
    r"\bAttended\b",
    r"\bAbsent\b",
    r"\bExcused\b",
    r"(?i)\bcatch-up\b",
    r"(?i)\bfidelity\b",
    r"\bAllocations?\b",
    r"(?i)\brandomization number\b",
    r"(?i)\bstops? the intervention\b",  # withdrawal level 1: the IMR arm only
    # The same facts as the Danish and Dutch pages say them (locale/*/django.po).
    r"\bIMR-grupper?(?:ne)?\b",
    r"(?i)\bIMR-groep(?:en)?\b",
    r"(?i)\bfremmøde\b",
    r"(?i)\baanwezigheid\b",
    r"\bDeltog\b",
    r"\bFraværende\b",
    r"\bAfbud\b",
    r"\bAanwezig\b",
    r"\bAfwezig\b",
    r"\bAfgemeld\b",
    r"(?i)\bindhentning\b",
    r"(?i)\binhaalsessie\b",
    r"(?i)\bprogramtroskab\w*",
    r"(?i)\bmodelgetrouwheid\w*",
    r"\bAllokering(?:er)?\b",
    r"\bToewijzing(?:en)?\b",
    r"(?i)\brandomiseringsnummer\b",
    r"(?i)\brandomisatienummer\b",
    r"(?i)\bstopper interventionen\b",
    r"(?i)\bstopt (?:met )?de interventie\b",
]
# The programme's own words: whoever writes them about a participant knows they are in it.
PROGRAMME_WORDS = [
    r"(?i)\bIMR\b",
    r"(?i)\bIllness Management\b",
    r"(?i)\brecovery groups?\b",
    r"(?i)\bmodules?\b",
    r"(?i)\bfacilitat(?:or|ors|ed|es|ion)\b",
]

# Names shorter than this are not matched on their own (an initial would refuse everything).
MIN_NAME_LENGTH = 3


@dataclass(frozen=True)
class Word:
    kind: str  # "page", "programme", "arm", "arm code", "group", "facilitator"
    pattern: re.Pattern
    literal: str = ""  # the name itself, for literal words (arm labels, group names, people)


@dataclass(frozen=True)
class Found:
    word: Word
    text: str  # what matched

    def __str__(self):
        if self.word.kind in UNNAMED_KINDS:
            # Saying that "Anna Berg" is a facilitator, or "Marigold" an IMR group, would tell a
            # blinded writer who works in the programme: so the word is not repeated back.
            return "a person or group of the IMR programme"
        return f"{self.text!r} ({_KIND_LABELS.get(self.word.kind, self.word.kind)})"


# Words not repeated in a refusal: whether a name belongs to the programme's staff or groups is
# itself what a blinded writer must not learn.
UNNAMED_KINDS = {"group", "facilitator"}

_KIND_LABELS = {
    "page": "a word that tells the arm",
    "programme": "a word of the programme",
    "arm": "an arm of the trial",
    "arm code": "an arm of the trial",
    "group": "an IMR group",
    "facilitator": "a facilitator",
}

_sources = []
_discovered = False


def register(source):
    """`source(trial)` -> [(kind, literal)] of names that tell the arm (later apps')."""
    _sources.append(source)
    return source


def literal(kind, text):
    """A Word matching `text` as a whole word or phrase, whatever its case."""
    text = " ".join(text.split())
    start = r"\b" if text[:1].isalnum() else ""
    end = r"\b" if text[-1:].isalnum() else ""
    body = r"\s+".join(re.escape(part) for part in text.split(" "))
    return Word(kind, re.compile(f"{start}{body}{end}", re.IGNORECASE), text)


def _facilitators(trial):
    users = Membership.objects.filter(trial=trial, role=Role.FACILITATOR).select_related("user")
    return [(m.user.get_username(), m.user.get_full_name()) for m in users]


def people(kind, users):
    """Literal words for people: each username and full name (users: (username, full name))."""
    words = []
    for username, full_name in users:
        for name in (username, full_name):
            if name and len(name.strip()) >= MIN_NAME_LENGTH:
                words.append((kind, name))
    return words


def revealing_words(trial):
    """Every Word that tells the arm in `trial`."""
    global _discovered
    if not _discovered:
        autodiscover_modules("blinding")
        _discovered = True
    pairs, words = [], []
    # An arm's label in every language the trial gives: a Danish page may say "Standardbehandling".
    for code, label, translations in trial.arms.values_list("code", "label", "translations"):
        pairs += [("arm", label), ("arm code", code)]
        pairs += [("arm", other) for other in (translations or {}).values()]
    pairs += people("facilitator", _facilitators(trial))
    for source in _sources:
        pairs += list(source(trial))
    seen = set()
    for kind, text in pairs:
        key = " ".join(text.split()).lower()
        if key and key not in seen:
            seen.add(key)
            words.append(literal(kind, text))
    # Names first: the refusal then names the most telling word ("IMR + TAU", not "IMR").
    words += [Word("page", re.compile(p)) for p in PAGE_WORDS]
    words += [Word("programme", re.compile(p)) for p in PROGRAMME_WORDS]
    return words


def names_arm(text, trial, words=None):
    """The first arm-revealing word in `text` (a Found), or None."""
    if not text:
        return None
    for word in words if words is not None else revealing_words(trial):
        if m := word.pattern.search(text):
            return Found(word, m.group(0))
    return None
