"""Private PostgreSQL and Redis instances for the fault tests, which stop and restart them.

The shared PostgreSQL (5432) and Redis (6379) serve everybody else on the machine and are never
touched here. A PrivatePostgres is a throwaway cluster (initdb) in a temporary folder on a free
port; a PrivateRedis is a redis-server on a free port with an append-only file, as in
docker-compose.yml, so what it had accepted survives a restart. The process that creates them
passes their coordinates to the scenario processes through FAULTS_* environment variables;
`from_env()` attaches to them there.
"""

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bindir():
    """The newest installed server binaries (Debian keeps them off the PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) found")


class PrivatePostgres:
    USER = "postgres"

    def __init__(self, root, port, bindir):
        self.root, self.port, self.bindir = Path(root), int(port), Path(bindir)
        self.data = self.root / "data"

    # initdb and the server refuse to run as root: as root, run them as the postgres user.
    def _as_owner(self, *args):
        command = [str(self.bindir / args[0]), *map(str, args[1:])]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)

    @classmethod
    def create(cls):
        root = Path(tempfile.mkdtemp(prefix="imrtrial-faults-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        server = cls(root, free_port(), postgres_bindir())
        server._as_owner(
            "initdb", "-D", server.data, "-U", cls.USER, "--auth=trust", "--no-sync", "-E", "UTF8"
        )
        with open(server.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"\nport = {server.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{root}'\nmax_connections = 60\n"
                "shared_buffers = 32MB\n"
            )
        server.start()
        return server

    @classmethod
    def from_env(cls):
        return cls(
            os.environ["FAULTS_PG_ROOT"], os.environ["FAULTS_PG_PORT"], os.environ["FAULTS_PG_BIN"]
        )

    def env(self):
        return {
            "FAULTS_PG_ROOT": str(self.root),
            "FAULTS_PG_PORT": str(self.port),
            "FAULTS_PG_BIN": str(self.bindir),
        }

    def url(self, database="postgres"):
        return f"postgres://{self.USER}@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, action, mode="fast"):
        log = self.root / "server.log"
        self._as_owner("pg_ctl", action, "-D", self.data, "-m", mode, "-w", "-t", "60", "-l", log)

    def start(self):
        self._as_owner(
            "pg_ctl", "start", "-D", self.data, "-w", "-t", "60", "-l", self.root / "server.log"
        )

    def restart(self, mode="fast"):
        self.pg_ctl("restart", mode)

    def stop(self, mode="fast"):
        self.pg_ctl("stop", mode)

    def accepts_connections(self):
        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def destroy(self):
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    def __init__(self, root, port):
        self.root, self.port = Path(root), int(port)

    @classmethod
    def create(cls):
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server is not installed")
        server = cls(tempfile.mkdtemp(prefix="imrtrial-faults-redis-"), free_port())
        server.start()
        return server

    @classmethod
    def from_env(cls):
        return cls(os.environ["FAULTS_REDIS_ROOT"], os.environ["FAULTS_REDIS_PORT"])

    def env(self):
        return {"FAULTS_REDIS_ROOT": str(self.root), "FAULTS_REDIS_PORT": str(self.port)}

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self):
        import redis

        try:
            return redis.Redis(port=self.port, socket_connect_timeout=1).ping()
        except redis.ConnectionError:
            return False

    def start(self):
        subprocess.run(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.root),
                "--daemonize", "yes",
                "--pidfile", str(self.root / "redis.pid"),
                "--logfile", str(self.root / "redis.log"),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
            ],
            check=True,
            timeout=30,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self.ping():
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.1)

    def stop(self):
        """Stop this instance only, by the pid it wrote, and wait until it is gone."""
        pidfile = self.root / "redis.pid"
        if not pidfile.exists():
            return
        pid = int(pidfile.read_text().strip())
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server {pid} did not stop")

    def destroy(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
