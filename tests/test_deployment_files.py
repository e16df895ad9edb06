"""docker-compose.yml is the production-like stack, configured only by the environment."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_web_worker_beat_postgres_and_redis_with_health_checks():
    services = compose()["services"]
    assert set(services) == {"web", "worker", "beat", "postgres", "redis"}
    for name in ["web", "worker", "postgres", "redis"]:
        assert "healthcheck" in services[name], name
    assert "gunicorn" in services["web"]["command"]
    assert "worker" in services["worker"]["command"] and "beat" in services["beat"]["command"]


def test_compose_takes_secrets_only_from_the_environment():
    for name in ["web", "worker", "beat"]:
        env = compose()["services"][name]["environment"]
        for key in ["SECRET_KEY", "RANDOMIZATION_SECRET"]:
            assert env[key].startswith("${") and ":?" in env[key], (name, key)
        assert env["DEBUG"] == "false"


def compose_command():
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_config_is_accepted_by_docker_compose():
    command = compose_command()
    if command is None:
        pytest.skip("no docker compose client on this machine")
    env = dict(
        os.environ,
        SECRET_KEY="s",
        RANDOMIZATION_SECRET="r",
        POSTGRES_PASSWORD="p",
        ALLOWED_HOSTS="h",
    )
    result = subprocess.run(
        [*command, "config", "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
