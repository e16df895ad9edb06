import datetime
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from imrtrial.models import Membership, Role, Trial
from imrtrial.trialconfig import load_trial
from randomization import services

DEMO_TRIAL = "danish-imr"


class Command(BaseCommand):
    help = (
        "Create the demo trial (screenings, participants, a few randomized) and one demo user "
        "per role; passwords are printed once."
    )

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
        created_trial = trial is None
        if created_trial:
            trial = load_trial("danish")
            trial.status = Trial.Status.OPEN
            trial.save(update_fields=["status"])
        logins = []
        for role in Role:
            username = f"demo-{role.value.replace('_', '-')}"
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": "Demo",
                    "last_name": role.label,
                    "email": f"{username}@example.org",
                },
            )
            if created or reset_passwords:
                password = secrets.token_urlsafe(12)
                user.set_password(password)
                user.save(update_fields=["password"])
                logins.append((username, password, role.label))
            # Facilitators work at one centre; everyone else at all sites of the demo trial.
            site = trial.sites.order_by("name").first() if role == Role.FACILITATOR else None
            Membership.objects.get_or_create(user=user, trial=trial, site=site, role=role)
        if created_trial:
            self._demo_participants(trial)
        if logins:
            self.stdout.write("Demo logins (shown once; --reset-passwords makes new ones):")
            for username, password, label in logins:
                self.stdout.write(f"  {username:22} {password:18} {label}")
        else:
            self.stdout.write(
                "The demo is already seeded. Run `python manage.py seed_demo --reset-passwords` "
                "for new demo passwords."
            )

    def _demo_participants(self, trial):
        """Screen 14 people through the real services; enrol 12 and randomize 6 of them."""
        desk = get_user_model().objects.get(username="demo-coordinator")
        sites = list(trial.sites.order_by("name"))
        criteria = list(trial.criteria.all())
        day = timezone.localdate() - datetime.timedelta(days=20)
        for n in range(14):
            answers = {c.code: c.kind == "inclusion" for c in criteria}
            if n >= 12:  # two people who do not meet the criteria
                answers[criteria[-1].code] = True
            screening = services.screen(
                trial,
                sites[n % len(sites)],
                by=desk,
                answers=answers,
                screened_on=day,
                referral_source="Case manager",
                consent_date=None if n >= 12 else day,
                consent_form_version="1.0",
                consent_obtained_by="Demo coordinator",
            )
            if n >= 12:
                continue
            participant = services.enrol(
                screening,
                by=desk,
                factor_levels={"diagnosis": "bipolar" if n % 4 == 0 else "schizophrenia"},
            )
            participant = services.record_baseline(participant, by=desk, completed_on=day)
            if n < 6:
                services.randomize(participant, by=desk)
