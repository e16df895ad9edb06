"""No user-facing text outside translation.

Templates: each template under templates/ is read with Django's own Lexer; text outside
{% translate %} / {% blocktranslate %} (tags, comments, scripts, styles, variables, entities and
what is not prose stripped) must hold no words, nor may the user-facing attributes (title,
aria-label, placeholder, alt). Python: a string literal given directly as a user-facing message
(ValidationError, Refused, PermissionDenied, Http404, messages.*, label=, help_text=,
verbose_name=, a choice's label) must be wrapped in a gettext call.

Words of tests/i18n/allowlist.txt (product, instrument and format names) may stand alone.
Directories still being marked are expected failures for now (NOT_YET), one list each.
"""

import ast
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template.base import Lexer, TokenType

ROOT = Path(settings.BASE_DIR)
TEMPLATES = ROOT / "templates"

# Template directories (under templates/; "." is templates/ itself) and Python packages whose
# marking is still under way; the entries go as each is merged.
NOT_YET_TEMPLATES = set()
NOT_YET_PYTHON = set()

ALLOWED = {
    line.strip()
    for line in (Path(__file__).parent / "allowlist.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}
WORD = re.compile(r"[^\W\d_]{2,}")
CODE = re.compile(r"\S*_\S*")  # identifiers and codes (imrt_..., snake_case), not prose
ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|\w+);")
ATTRIBUTES = {"title", "aria-label", "placeholder", "alt"}
MARK = "\x00"  # stands for a variable or a tag in the text given to the HTML parser


def words(text):
    """The words of `text` that need translating (none in names of the allowlist)."""
    text = ENTITY.sub(" ", text.replace(MARK, " "))
    text = CODE.sub(" ", text)
    return [w for w in WORD.findall(text) if w not in ALLOWED]


def untranslated_text(source):
    """The template's text with translated blocks, comments, variables and tags replaced by
    MARK, for the HTML parser."""
    parts, skip = [], None
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0] if token.contents.split() else ""
            if skip:
                if name == skip:
                    skip = None
                continue
            if name in ("blocktranslate", "blocktrans"):
                skip = "end" + name
            elif name == "comment":
                skip = "endcomment"
            parts.append(f" {MARK} ")
        elif token.token_type == TokenType.TEXT and not skip:
            parts.append(token.contents)
        elif token.token_type == TokenType.VAR and not skip:
            parts.append(f" {MARK} ")
    return "".join(parts)


class _Finder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.found, self._raw = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._raw += 1
        for name, value in attrs:
            if name in ATTRIBUTES and value and words(value):
                self.found.append(f'{name}="{value}"')

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._raw = max(0, self._raw - 1)

    def handle_data(self, data):
        if not self._raw and words(data):
            self.found.append(" ".join(data.split()))


def unmarked_in_template(path):
    finder = _Finder()
    finder.feed(untranslated_text(path.read_text()))
    finder.close()
    return finder.found


def template_directories():
    return sorted({p.parent.relative_to(TEMPLATES).parts[:1] or (".",) for p in _templates()})


def _templates():
    return [p for p in TEMPLATES.rglob("*") if p.suffix in (".html", ".txt")]


def _param(name, not_yet):
    marks = [pytest.mark.xfail(reason="being marked (NOT_YET)", strict=False)] * (name in not_yet)
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize(
    "directory",
    [_param(d[0], NOT_YET_TEMPLATES) for d in template_directories()],
)
def test_templates_have_no_unmarked_text(directory):
    where = TEMPLATES if directory == "." else TEMPLATES / directory
    paths = [
        p for p in _templates() if p.parent == where or (directory != "." and where in p.parents)
    ]
    found = [
        f"{path.relative_to(ROOT)}: {text}"
        for path in sorted(paths)
        for text in unmarked_in_template(path)
    ]
    assert not found, "text outside {% translate %}:\n" + "\n".join(found)


# --- Python --------------------------------------------------------------------------------

GETTEXT = {
    "_",
    "gettext",
    "gettext_lazy",
    "ngettext",
    "ngettext_lazy",
    "pgettext",
    "pgettext_lazy",
    "npgettext",
    "npgettext_lazy",
    "format_lazy",
}
MESSAGE_CLASSES = {"ValidationError", "Refused", "PermissionDenied", "Http404"}
MESSAGE_FUNCTIONS = {"success", "info", "warning", "error", "debug", "add_message"}
KEYWORDS = {"label", "help_text", "verbose_name", "verbose_name_plural", "empty_label"}
CHOICES_BASES = {"TextChoices", "IntegerChoices", "Choices"}


def _name(func):
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _literal(node):
    """A string written out in the code (not a gettext call): "..." , f"...", "..." % x,
    "...".format(...), "a" + "b"; None when it is anything else or holds no words."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if words(node.value) else None
    if isinstance(node, ast.JoinedStr):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        return text if words(text) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return _literal(node.left) or (
            _literal(node.right) if isinstance(node.op, ast.Add) else None
        )
    if isinstance(node, ast.Call) and _name(node.func) == "format":
        return _literal(node.func.value) if isinstance(node.func, ast.Attribute) else None
    return None


def unmarked_in_module(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []

    def flag(node, text):
        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _name(node.func)
            message = None
            if name in MESSAGE_CLASSES and node.args:
                message = node.args[0]
            elif (
                name in MESSAGE_FUNCTIONS
                and isinstance(node.func, ast.Attribute)
                and _name(node.func.value) == "messages"
                and len(node.args) >= 2
            ):
                message = node.args[-1] if name != "add_message" else node.args[2]
            for candidate in [message] + [k.value for k in node.keywords if k.arg in KEYWORDS]:
                if candidate is not None and (text := _literal(candidate)):
                    flag(candidate, text)
            if name in MESSAGE_CLASSES:
                for k in node.keywords:
                    if k.arg == "message" and (text := _literal(k.value)):
                        flag(k.value, text)
        elif isinstance(node, ast.ClassDef) and {_name(b) for b in node.bases} & CHOICES_BASES:
            for item in node.body:
                if (
                    isinstance(item, ast.Assign)
                    and isinstance(item.value, ast.Tuple)
                    and len(item.value.elts) >= 2
                    and (text := _literal(item.value.elts[-1]))
                ):
                    flag(item.value.elts[-1], text)
    return found


def packages():
    return sorted(
        p.parent.name
        for p in ROOT.glob("*/__init__.py")
        if p.parent.name not in ("tests", "bench", "scripts", "demo", "locale")
    )


# The web API's description (OpenAPI help texts) stays in English, as its field names do.
EXEMPT_MODULES = {"api/serializers.py", "imrtrial/settings.py"}


def _modules(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT / package).parts
        if "migrations" in rel or "tests" in rel:
            continue
        if str(path.relative_to(ROOT)) in EXEMPT_MODULES:
            continue
        yield path


@pytest.mark.parametrize("package", [_param(p, NOT_YET_PYTHON) for p in packages()])
def test_python_messages_are_marked(package):
    found = [text for path in _modules(package) for text in unmarked_in_module(path)]
    assert not found, "user-facing strings outside gettext:\n" + "\n".join(found)
