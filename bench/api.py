"""Seconds to fetch the wide blinded dataset of a synthetic Danish trial (5,000 participants,
every form of every visit entered) over the web API, against the export task building the same
dataset's CSV export file. Goal: api_s <= 2 x export_csv_s.

- export_csv_s: a data manager's wide CSV export (the zipped CSV with its codebook) requested
  and built by the export task (exports.tasks.build_export, run eagerly in this process, as
  with no broker configured).
- api_s: GET /api/v1/records/?shape=wide&format=csv with the data manager's token, through
  gunicorn (one sync worker, DEBUG off) on a free local port, until the last byte; the body is
  checked to be the export file's CSV, byte for byte. api_json_s: the same as JSON.

The trial is made by bench/export.py's generator, in a database of its own that is dropped and
recreated (its name must contain "bench"). Human-readable lines first; the last line is one
JSON object.

    python bench/api.py [--participants 5000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import export as export_bench  # noqa: E402 (the path above first)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imrtrial_bench_api"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port, path, token):
    """(seconds, body bytes) of one GET, read to the end."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    chunks = []
    while chunk := response.read(1 << 16):
        chunks.append(chunk)
    conn.close()
    seconds = time.perf_counter() - start
    if response.status != 200:
        raise SystemExit(f"{path} answered {response.status}: {b''.join(chunks)[:300]!r}")
    return seconds, b"".join(chunks)


def start_server(port, log):
    env = dict(os.environ, ALLOWED_HOSTS="127.0.0.1")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "imrtrial.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "600",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_until_up(process, port, token):
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited at start; see its log")
        try:
            fetch(port, "/api/v1/metadata/", token)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("gunicorn did not answer within 60 s")


def stop_server(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=5000)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    export_bench.setup_environment(args.database_url)
    os.environ.pop("CACHE_URL", None)  # the rate limit in memory: one request, one worker
    import django

    export_bench.recreate_database(args.database_url)
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from api import services as tokens
    from exports import services as exporting
    from imrtrial.models import Membership, Perm, Role

    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    trial = export_bench.build_trial(args.participants)
    print(f"built {args.participants} participants in {time.perf_counter() - start:.1f} s")
    manager = get_user_model().objects.create_user("bench-data-manager")
    Membership.objects.create(user=manager, trial=trial, role=Role.DATA_MANAGER)
    _, token = tokens.create_token(
        manager, trial, name="bench", permissions=[Perm.EXPORT_BLINDED], days=1
    )

    with tempfile.TemporaryDirectory() as folder:
        settings.EXPORT_DIR = Path(folder)
        # No broker here, so the Celery task (exports.tasks.build_export) runs eagerly when the
        # request commits: this times the task building the file.
        start = time.perf_counter()
        run = exporting.request_export(trial, by=manager, dataset="wide", format="csv")
        export_csv_s = time.perf_counter() - start
        run.refresh_from_db()
        if run.status != "done":
            raise SystemExit(f"the export failed: {run.error}")
        with zipfile.ZipFile(run.path) as bundle:
            exported = bundle.read(f"{run.path.stem}.csv")
    print(f"export task (wide CSV file) {export_csv_s:7.2f} s  {run.rows} rows")

    django.db.connections.close_all()
    port = free_port()
    with tempfile.TemporaryFile() as log:
        server = start_server(port, log)
        try:
            wait_until_up(server, port, token)
            api_s, body = fetch(port, "/api/v1/records/?shape=wide&format=csv", token)
            api_json_s, json_body = fetch(port, "/api/v1/records/?shape=wide", token)
        except BaseException:
            log.seek(0)
            print(log.read().decode(errors="replace")[-3000:])
            raise
        finally:
            stop_server(server)
    if body != exported:
        raise SystemExit("the API's CSV differs from the export file's CSV")
    rows = len(json.loads(json_body)["rows"])
    print(f"API wide CSV                {api_s:7.2f} s  {len(body):,} bytes (same as the file)")
    print(f"API wide JSON               {api_json_s:7.2f} s  {rows} rows")
    print(
        json.dumps(
            {
                "participants": args.participants,
                "api_s": round(api_s, 2),
                "export_csv_s": round(export_csv_s, 2),
                "api_json_s": round(api_json_s, 2),
                "ratio": round(api_s / export_csv_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
