import getpass
import os

from django.core.management.base import BaseCommand, CommandError

from imrtrial.models import Trial
from randomization.listing import full_listing, verify


class Command(BaseCommand):
    help = (
        "For the holder of the randomization secret: print a trial's concealed sequence per "
        "stratum and verify every allocation made so far against it. The secret is read from "
        "the environment variable named by --secret-env, or asked for without echo."
    )

    def add_arguments(self, parser):
        parser.add_argument("trial", help="trial key")
        parser.add_argument(
            "--per-stratum",
            type=int,
            default=0,
            help="also print this many slots of each stratum's sequence",
        )
        parser.add_argument(
            "--stratum",
            action="append",
            default=None,
            help="a stratum key to list (repeatable); default: strata in use",
        )
        parser.add_argument("--secret-env", default="", help="environment variable holding it")

    def handle(self, *args, trial, per_stratum, stratum, secret_env, **options):
        try:
            trial = Trial.objects.get(key=trial)
        except Trial.DoesNotExist:
            raise CommandError(f"No trial with key {trial!r}.") from None
        secret = os.environ.get(secret_env, "") if secret_env else getpass.getpass("Secret: ")
        if not secret:
            raise CommandError("No secret given.")
        try:
            check = verify(trial, secret)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if per_stratum:
            for key, slots in full_listing(trial, secret, per_stratum, stratum).items():
                self.stdout.write(f"# stratum {key}")
                self.stdout.write("slot,block,block_size,position,arm")
                for s in slots:
                    self.stdout.write(
                        f"{s.slot},{s.block_index + 1},{s.block_size},"
                        f"{s.position_in_block + 1},{s.arm}"
                    )
        for number, key, slot, made, expected in check.mismatches:
            self.stderr.write(
                f"MISMATCH {number}: stratum {key} slot {slot} allocated {made}, "
                f"sequence says {expected}"
            )
        if check.mismatches:
            raise CommandError(
                f"{len(check.mismatches)} of {check.checked} allocations do not match the "
                "sequence from this secret."
            )
        self.stdout.write(
            self.style.SUCCESS(f"All {check.checked} allocations match the sequence.")
        )
