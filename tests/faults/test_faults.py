"""Fault tests against real services: PostgreSQL restarted under load, a browser killed in the
middle of a randomization, Redis down when the reminders are due.

Each scenario stops or restarts a server, so it runs against private instances (see
services.py), never the shared PostgreSQL and Redis, and in a pytest process of its own whose
DATABASE_URL names the private cluster: Django reads its settings once per process, and a
scenario that breaks connections should not share a process with anything else. The scenarios
are the scenario_*.py files beside this one (not collected on their own); these tests start
the services, run one scenario each and fail with its output when it fails. Slow: `make faults`.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .services import PrivatePostgres, PrivateRedis

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def private_services():
    postgres = PrivatePostgres.create()
    try:
        redis = PrivateRedis.create()
    except Exception:
        postgres.destroy()
        raise
    yield postgres, redis
    redis.destroy()
    postgres.destroy()


def run_scenario(name, private_services, timeout=600):
    postgres, redis = private_services
    env = dict(os.environ)
    env.update(postgres.env())
    env.update(redis.env())
    env.update(
        DATABASE_URL=postgres.url("faults"),
        TEST_REDIS_URL=redis.url,
        CELERY_BROKER_URL="",  # eager unless the scenario points Celery at the private Redis
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
    )
    env.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
    env.setdefault("RANDOMIZATION_SECRET", "test-secret")
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--reuse-db",
            "-q",
            "-s",
            f"tests/faults/{name}.py",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    print(f"{name}: {time.monotonic() - started:.1f} s\n{result.stdout[-3000:]}")
    assert result.returncode == 0, output[-20000:]
    assert " passed" in result.stdout and " skipped" not in result.stdout, output[-20000:]
    # Both servers are up again for the next scenario.
    assert postgres.accepts_connections() and redis.ping()


def test_postgresql_restarted_under_randomization_load_loses_and_duplicates_nothing(
    private_services,
):
    run_scenario("scenario_postgres_restart", private_services)


def test_a_browser_killed_mid_randomization_gets_exactly_one_allocation_on_retry(
    private_services,
):
    run_scenario("scenario_killed_client", private_services)


def test_redis_down_when_reminders_are_due_delays_them_but_sends_each_digest_once(
    private_services,
):
    run_scenario("scenario_redis_outage", private_services)
