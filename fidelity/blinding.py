"""The names this app adds to the arm-revealing words (imrtrial.blinding_words): the trial's
IMR groups and every facilitator of one, by username and full name."""

from imrtrial import blinding_words

from .models import ImrGroup


@blinding_words.register
def group_words(trial):
    groups = ImrGroup.objects.filter(trial=trial)
    words = [("group", name) for name in groups.values_list("name", flat=True)]
    facilitators = groups.values_list(
        "facilitators__username", "facilitators__first_name", "facilitators__last_name"
    ).distinct()
    return words + blinding_words.people(
        "facilitator",
        [(u, f"{first} {last}".strip()) for u, first, last in facilitators if u],
    )
