"""The case manager: unblinded staff who plan treatment with the patient and rate them (the
clinician version of the IMR scale, substance use, adverse events; DOMAIN.md 8). They see their
site's allocation and enter staff ratings, without IMR delivery (attendance) or fidelity rights,
which until now only a facilitator could enter staff ratings with. The policy table of migration
0002, extended (a change of policy is a new migration); tested in
tests/imrtrial/test_roles_and_access.py."""

from django.db import migrations, models

ROLE = "case_manager"
CODENAMES = ["view_participants", "view_unblinded", "enter_staff_rating"]


def create_role(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="imrtrial", codename__in=CODENAMES)
    if perms.count() != len(CODENAMES):
        raise RuntimeError(f"Missing permissions for role {ROLE}")
    group, _ = Group.objects.get_or_create(name=ROLE)
    group.permissions.set(perms)


def remove_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=ROLE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("imrtrial", "0013_monitor_and_investigator_roles"),
    ]

    operations = [
        migrations.RunPython(create_role, remove_role),
        migrations.AlterField(
            model_name="historicalmembership",
            name="role",
            field=models.CharField(
                choices=[
                    ("trial_admin", "Trial administrator"),
                    ("coordinator", "Coordinator (phone desk)"),
                    ("assessor", "Blinded assessor"),
                    ("facilitator", "IMR facilitator"),
                    ("fidelity_rater", "Fidelity rater"),
                    ("data_manager", "Data manager"),
                    ("statistician", "Statistician"),
                    ("key_holder", "Unblinded data administrator"),
                    ("monitor", "Monitor (clinical research associate)"),
                    ("investigator", "Site investigator"),
                    ("case_manager", "Case manager"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="membership",
            name="role",
            field=models.CharField(
                choices=[
                    ("trial_admin", "Trial administrator"),
                    ("coordinator", "Coordinator (phone desk)"),
                    ("assessor", "Blinded assessor"),
                    ("facilitator", "IMR facilitator"),
                    ("fidelity_rater", "Fidelity rater"),
                    ("data_manager", "Data manager"),
                    ("statistician", "Statistician"),
                    ("key_holder", "Unblinded data administrator"),
                    ("monitor", "Monitor (clinical research associate)"),
                    ("investigator", "Site investigator"),
                    ("case_manager", "Case manager"),
                ],
                max_length=20,
            ),
        ),
    ]
