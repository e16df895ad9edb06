"""Settings come from the environment and fail loudly on a bad value."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps([s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, "
    "s.EMAIL_BACKEND, s.SESSION_COOKIE_SECURE]))"
)


def run_settings(**env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "DEBUG",
            "SECRET_KEY",
            "EMAIL_URL",
            "SECURE_SSL_REDIRECT",
            "RANDOMIZATION_SECRET",
        }
    }
    clean.update(DJANGO_SETTINGS_MODULE="imrtrial.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unset_variables_give_the_embedded_default():
    result = run_settings(DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        '["django.db.backends.sqlite3", true, '
        '"django.core.mail.backends.console.EmailBackend", false]'
    )


def test_database_and_broker_urls_select_postgresql_and_a_real_broker():
    result = run_settings(
        DEBUG="false",
        SECRET_KEY="s" * 50,
        DATABASE_URL="postgres://u@db.example:5432/trial",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith('["django.db.backends.postgresql", false')
    assert result.stdout.strip().endswith("true]")  # production: secure cookies


@pytest.mark.parametrize(
    "env, complaint",
    [
        ({"DEBUG": "maybe"}, 'Environment variable "DEBUG" invalid'),
        (
            {"DEBUG": "true", "SESSION_IDLE_SECONDS": "half an hour"},
            'Environment variable "SESSION_IDLE_SECONDS" invalid',
        ),
        (
            {"DEBUG": "true", "LOGIN_FAILURE_LIMIT": "5.5"},
            'Environment variable "LOGIN_FAILURE_LIMIT" invalid',
        ),
        ({"DEBUG": "true", "DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DEBUG": "false"}, "SECRET_KEY must be set"),
    ],
)
def test_a_bad_value_stops_start_up_with_a_message_naming_it(env, complaint):
    result = run_settings(**env)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_every_variable_the_settings_read_is_listed_in_env_example():
    import re

    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', (ROOT / "imrtrial/settings.py").read_text()))
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "no variables found: the pattern is wrong"
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"
