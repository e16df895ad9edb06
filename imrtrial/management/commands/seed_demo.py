import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from imrtrial.models import Membership, Participant, Role, Trial
from imrtrial.trialconfig import load_trial

DEMO_TRIAL = "danish-imr"


class Command(BaseCommand):
    help = "Create the demo trial and one demo user per role; passwords are printed once."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="give the demo users new passwords and print them",
        )

    @transaction.atomic
    def handle(self, *args, reset_passwords=False, **options):
        User = get_user_model()
        trial = Trial.objects.filter(key=DEMO_TRIAL).first()
        if trial is None:
            trial = load_trial("danish")
            trial.status = Trial.Status.OPEN
            trial.save(update_fields=["status"])
            sites = list(trial.sites.all())
            for n in range(1, 13):
                site = sites[n % len(sites)]
                Participant.objects.create(
                    trial=trial,
                    site=site,
                    participant_id=f"DK-{site.code[:3].upper()}-{n:03d}",
                    factor_levels={"diagnosis": "bipolar" if n % 4 == 0 else "schizophrenia"},
                )
        logins = []
        for role in Role:
            username = f"demo-{role.value.replace('_', '-')}"
            user, created = User.objects.get_or_create(
                username=username, defaults={"first_name": "Demo", "last_name": role.label}
            )
            if created or reset_passwords:
                password = secrets.token_urlsafe(12)
                user.set_password(password)
                user.save(update_fields=["password"])
                logins.append((username, password, role.label))
            # Facilitators work at one centre; everyone else at all sites of the demo trial.
            site = trial.sites.order_by("name").first() if role == Role.FACILITATOR else None
            Membership.objects.get_or_create(user=user, trial=trial, site=site, role=role)
        if logins:
            self.stdout.write("Demo logins (shown once; --reset-passwords makes new ones):")
            for username, password, label in logins:
                self.stdout.write(f"  {username:22} {password:18} {label}")
        else:
            self.stdout.write(
                "The demo is already seeded. Run `python manage.py seed_demo --reset-passwords` "
                "for new demo passwords."
            )
