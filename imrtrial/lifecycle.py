"""What later apps do when a participant's schedule changes (enrolled, randomized), called
explicitly by the services that change it, in their transaction.

The phone desk (randomization) comes before the case record forms (assessments) in the layering,
so it cannot call their scheduler by name; assessments registers it here at start-up
(AssessmentsConfig.ready), the way apps register audit sources. This is not a model signal: the
call sits in the service, one line, where a reader of the service sees it; and no page writes
visits on GET any more.
"""

_followers = []


def follow(function):
    """Register `function(participant)`, run after a participant's enrolment or randomization."""
    if function not in _followers:
        _followers.append(function)
    return function


def schedule_changed(participant):
    for function in _followers:
        function(participant)
