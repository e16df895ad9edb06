"""History pages list what changed, field by field: not the fields the admin's own pages leave
out. The trial's block sizes help predict the next allocation (concealment); TrialAdmin
excludes them, and its history page listed their change to every trial administrator."""

from django.urls import reverse

from imrtrial.models import Role

from .test_crawler import worst_case_staff


def test_a_trials_history_does_not_show_its_block_sizes(client, world):
    trial = world.trial
    trial.block_sizes = [4, 12]
    trial.save(update_fields=["block_sizes"])
    trial.status = trial.Status.CLOSED
    trial.save(update_fields=["status"])
    client.force_login(worst_case_staff(world.users[Role.TRIAL_ADMIN]))
    response = client.get(reverse("admin:imrtrial_trial_history", args=[trial.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Status" in html and "closed" in html  # the history lists the other changes
    assert "Block sizes" not in html and "[4, 12]" not in html
    version = trial.history.filter(block_sizes=[4, 12]).first().history_id
    url = reverse("admin:imrtrial_trial_simple_history", args=[trial.pk, version])
    assert "[4, 12]" not in client.get(url).content.decode()
