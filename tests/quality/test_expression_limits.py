"""An expression that passes the load-time checks cannot exhaust the server, nor fail the form's
save or the nightly run, when it is evaluated: simpleeval's own limits and the functions' are
answered as "the rule does not apply"."""

import time

from assessments.expressions import compile_expression


def _compiled(text):
    return compile_expression(text, lambda parts: ".".join(parts))


def test_round_to_a_huge_number_of_digits_costs_nothing():
    # round(1, -10**7) builds 10**10_000_000 (seconds); -10**9, minutes and gigabytes: every
    # save of the form and every nightly run would.
    compiled = _compiled("round(x, -10000000) > 0")
    started = time.monotonic()
    assert compiled.evaluate({"x": 1}) is None
    assert time.monotonic() - started < 0.5
    assert _compiled("round(x, 1) > 2").evaluate({"x": 2.46}) is True
    assert _compiled("round(x) == 2").evaluate({"x": 2.4}) is True


def test_simpleevals_own_limits_mean_the_rule_does_not_apply():
    # Each exponent is a small constant (allowed at load), but the base grows past simpleeval's
    # MAX_POWER; a long text repeated passes its MAX_STRING_LENGTH. Both raise simpleeval's own
    # exceptions, which must not escape to the entry page (a 500) or fail the whole run.
    assert _compiled("((x ** 4) ** 4) ** 4 > 1").evaluate({"x": 9}) is None
    assert _compiled("x * 1000 == 'a'").evaluate({"x": "a" * 200}) is None


def test_percent_is_arithmetic_never_text_formatting():
    # '%999999999d' % 1 is Python's printf formatting: a string of 10**9 spaces (a gigabyte)
    # from a 11-character constant, or from a text item's value that someone typed.
    # (Unguarded, both are False after building 100 MB each: None says nothing was formatted.)
    assert _compiled("'%99999999d' % 1 == 'x'").evaluate({}) is None
    assert _compiled("x % 1 == 'x'").evaluate({"x": "%99999999d"}) is None
    assert _compiled("x % 3 == 1").evaluate({"x": 7}) is True
    assert _compiled("x % 0.5 == 0.25").evaluate({"x": 1.75}) is True
