"""`manage.py seed_demo`: the demo trial and its users (demo.seed). The logins are written to a
file (mode 600) and printed last, after anything else the seed had to say."""

from django.core.management.base import BaseCommand

from demo import seed


class Command(BaseCommand):
    help = (
        "Create the demo trial: two of every role that works in pairs, participants in every "
        "state, IMR groups with sessions and a fidelity consensus. Writes the demo logins "
        "(passwords, two-factor secrets) to a file readable by you alone and prints them last. "
        "Refuses to seed twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="give the demo users new passwords (two-factor secrets are kept), rewrite the "
            "logins file and print them",
        )
        parser.add_argument(
            "--logins-file",
            default=None,
            help=f"where to write the logins (default: {seed.default_logins_path()})",
        )

    def handle(self, *args, reset_passwords=False, logins_file=None, **options):
        path = logins_file or seed.default_logins_path()
        if reset_passwords:
            result = seed.reset_passwords(path)
            if not result.logins:
                self.stdout.write("There are no demo users yet: run `manage.py seed_demo` first.")
                return
        else:
            try:
                result = seed.seed(path)
            except seed.AlreadySeeded:
                self.stdout.write(
                    f"The demo is already seeded (trial {seed.DEMO_TRIAL} exists): nothing was "
                    f"changed. Its logins were written to {path} when it was seeded; "
                    "`manage.py seed_demo --reset-passwords` gives new passwords and rewrites "
                    "that file."
                )
                return
            self._story(result)
        self._logins(result)

    def _story(self, result):
        self.stdout.write(
            f"Seeded the demo trial {seed.DEMO_TRIAL}. {result.notices} e-mail notice(s) made "
            "while seeding (allocation notices to the IMR facilitators) were not sent or printed."
        )
        self.stdout.write("Where to try the two-person work:")
        for line in result.pointers:
            self.stdout.write(f"  - {line}")

    def _logins(self, result):
        self.stdout.write("")
        self.stdout.write("Demo logins (two-factor users: the TOTP secret is in the file):")
        for login in result.logins:
            second = "two-factor" if login.secret else ""
            self.stdout.write(
                f"  {login.username:22} {login.password:18} {second:10} {login.role} "
                f"({login.where})"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"The logins, with each two-factor user's TOTP secret and otpauth address, are "
                f"in {result.path} (mode 600, readable by you alone)."
            )
        )
