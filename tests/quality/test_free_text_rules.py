"""A rule reads only what a blinded reader may (quality.models): never a free-text item. Free
text may be written by unblinded staff (an adverse event described by a facilitator) and is
shown to a blinded reader only as "text exists"; a rule comparing it (`== 'Marigold'`, or
`<` to bisect it) would turn the withheld words into a count on the rules page, a system query
and a warning on the blinded assessor's entry page."""

import pytest

from assessments import registry
from assessments.definitions import DefinitionError, parse
from assessments.expressions import ExpressionError
from quality.rules import trial_resolver


def test_a_trial_rule_may_not_read_a_free_text_item():
    resolve = trial_resolver(["adverse_events"], ["baseline"], registry.all_instruments())
    for parts in (
        ("adverse_events", "description"),
        ("previous", "adverse_events", "description"),
        ("visits", "baseline", "adverse_events", "description"),
    ):
        with pytest.raises(ExpressionError, match="free text"):
            resolve(parts)
    assert resolve(("adverse_events", "death")) == "this|adverse_events.death"


def test_a_form_rule_may_not_read_a_free_text_item():
    definition = {
        "code": "tiny",
        "name": "Tiny",
        "version": 1,
        "rater": "staff",
        "sections": [
            {
                "code": "s",
                "label": "S",
                "items": [
                    {"code": "a", "label": "A", "type": "integer", "min": 0, "max": 9},
                    {"code": "note", "label": "Note", "type": "text", "max_length": 200},
                ],
            }
        ],
        "scores": [],
        "rules": [{"code": "r", "name": "R", "message": "R.", "check": "note < 'M'"}],
    }
    with pytest.raises(DefinitionError, match="free text"):
        parse(definition, "tiny.yaml")
    definition["rules"][0]["check"] = "a > 8"
    assert parse(definition, "tiny.yaml").rules
