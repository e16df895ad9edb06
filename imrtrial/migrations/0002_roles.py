"""The roles of a trial as Django groups, each with the permissions (on Trial) it holds.

This table is the blinding policy in data: reviewed here, tested in tests/imrtrial/test_access.py.
A change of policy is a new migration, never an edit of this one.
"""

from django.db import migrations

ROLE_PERMISSIONS = {
    # Configures the trial and its staff; deliberately not unblinded.
    "trial_admin": ["manage_trial", "view_participants", "view_audit"],
    # The phone desk: screens, randomizes and reads back the arm, so is unblinded.
    "coordinator": [
        "view_participants",
        "view_identifying",
        "randomize",
        "view_unblinded",
    ],
    "assessor": ["view_participants", "enter_interview"],
    "facilitator": [
        "view_participants",
        "view_unblinded",
        "log_attendance",
        "enter_staff_rating",
    ],
    "fidelity_rater": ["view_unblinded", "rate_fidelity"],
    "data_manager": ["view_participants", "verify_forms", "export_blinded", "view_audit"],
    "statistician": ["export_blinded", "view_unblinded_after_unblinding"],
    "key_holder": [
        "view_participants",
        "view_unblinded",
        "release_allocation_key",
        "export_blinded",
        "view_audit",
    ],
}


def create_roles(apps, schema_editor):
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    # Custom permissions are normally made after all migrations; make them now to use them.
    create_permissions(global_apps.get_app_config("imrtrial"), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = Permission.objects.filter(
            content_type__app_label="imrtrial", codename__in=codenames
        )
        if perms.count() != len(codenames):
            raise RuntimeError(f"Missing permissions for role {role}")
        group.permissions.set(perms)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("imrtrial", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
