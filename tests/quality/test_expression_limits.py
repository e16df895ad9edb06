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

