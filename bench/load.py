"""Page times and errors with 50 people using the site at once, through gunicorn and PostgreSQL.

Why: on a busy morning coordinators randomize callers at the phone desk while assessors type in
CRFs. The question is whether every page still answers, and how long the slowest 1% take,
with the production server (gunicorn, DEBUG off, hashed static files) in front of the
production database engine.

What it does, in a dedicated database that it drops and recreates (its name must contain
"bench"; never the dev or test database):

1. migrates, collects static files, loads the Danish preset twice: a desk trial (empty) and a
   CRF trial with --participants randomized participants whose visits are scheduled; makes
   the coordinators and assessors (half of --users each), all with the same password;
2. starts gunicorn on a free port with --workers sync workers (production runs 3), the
   database connection kept for 60 s as docker-compose does, no broker (the allocation notice
   runs in-process and the coordinators have no e-mail address, so it sends nothing) and
   TWO_FACTOR_REQUIRED=false (the bench users have no second factor);
3. every simulated user arrives within --ramp seconds and logs in through the login page, as
   a browser would (cookies, CSRF token from the form, redirects followed), then works; the
   measured window opens when the last one has logged in and lasts --seconds:
   - a coordinator screens a new caller (screening form), enrols them (stratification form),
     randomizes them (read-back form) and reads the result page;
   - an assessor opens the worklist, opens a PANSS of one of their own visits, completes it
     (when the data quality rules flag the random values, reads the warnings and saves them as
     they are, acknowledged) and lands on the visit page;
   pausing --think seconds on average (uniform, half to one and a half times) before each
   page action, as a person reads a page; a redirect after a form is followed at once;
4. counts as an error, from the first request on, any answer other than 2xx/3xx, any
   exception (refused connection, timeout) and any step whose page is not the one expected
   next (a form that comes back instead of redirecting); times pages only inside the window;
   then checks the allocations for anomalies with the randomization benchmark's checks, and
   reports the CPU used per request by gunicorn, by the database backends and by itself, and
   how busy the whole machine was (other work on it slows the pages down too).

Usage::

    python bench/load.py [--users 50] [--seconds 60] [--think 5] [--ramp 20] [--workers 3]
                         [--participants 1000] [--database-url postgres://.../imrtrial_bench_load]

Human-readable lines first; the last line is one JSON object with users, requests, errors,
p50_ms, p99_ms (over every page except the login, which is deliberately slow: argon2),
login_p99_ms, throughput (requests per second) and workers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html.parser
import http.client
import http.cookies
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

_BENCH_DIR = Path(__file__).resolve().parent
REPO = _BENCH_DIR.parent
# Keep this folder off the path: bench/randomization.py would shadow the randomization app.
sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _BENCH_DIR]
sys.path.insert(0, str(REPO))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imrtrial_bench_load"
PASSWORD = "bench-load-password-not-a-secret"
DESK_TRIAL, CRF_TRIAL = "load-desk", "load-crf"
GOALS = {"errors": 0, "p99_ms": 500.0}


# --- A browser in the standard library -------------------------------------------------------


class Form:
    """One <form>: its action, its fields as a browser would submit them by default, and the
    choices of its radio buttons and selects."""

    def __init__(self, action):
        self.action = action
        self.fields = {}  # name -> default value sent
        self.choices = {}  # name -> [values] of radios and select options
        self.buttons = {}  # submit button name -> value

    def names(self):
        return set(self.fields) | set(self.choices) | set(self.buttons)


class FormParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self._select = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append(Form(a.get("action") or ""))
            return
        if not self.forms:
            return
        form, name = self.forms[-1], a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("radio", "checkbox"):
                form.choices.setdefault(name, []).append(a.get("value", "on"))
                if "checked" in a:
                    form.fields[name] = a.get("value", "on")
            elif kind == "submit":
                form.buttons[name] = a.get("value", "")
            else:
                form.fields[name] = a.get("value") or ""
        elif tag == "button" and name and (a.get("type") or "submit") == "submit":
            form.buttons[name] = a.get("value", "")
        elif tag == "select" and name:
            self._select = name
            form.choices[name] = []
        elif tag == "option" and self._select:
            value = a.get("value", "")
            form.choices[self._select].append(value)
            if "selected" in a or self._select not in form.fields:
                form.fields[self._select] = value
        elif tag == "textarea" and name:
            form.fields[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def forms_of(page):
    parser = FormParser()
    parser.feed(page)
    return parser.forms


class Step(Exception):
    """The page that came back is not the one the workflow expects next."""


class Browser:
    """Cookies, CSRF, redirects and one keep-alive connection, as one browser tab. Every
    request is timed and recorded as (label, milliseconds, status or exception name)."""

    def __init__(self, host, port, timeout=30.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.origin = f"http://{host}:{port}"
        self.cookies = {}
        self.records = []
        self.conn = None

    def _connection(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.conn

    def reset(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def request(self, method, path, label, data=None):
        # The step's name, for the server's CPU per step (bench/gunicorn_steps.py).
        headers = {"Host": f"{self.host}:{self.port}", "Accept": "text/html", "X-Bench-Step": label}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if data is not None:
            body = urlencode(data, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin
            headers["Referer"] = self.origin + path
        started, start = time.time(), time.perf_counter()
        try:
            conn = self._connection()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            page = response.read().decode("utf-8", "replace")
        except Exception as exc:
            self.records.append(
                (label, (time.perf_counter() - start) * 1000, type(exc).__name__, started)
            )
            self.reset()
            raise
        self.records.append((label, (time.perf_counter() - start) * 1000, response.status, started))
        for header in response.msg.get_all("Set-Cookie") or []:
            jar = http.cookies.SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        if response.will_close:
            self.reset()
        return response.status, response.getheader("Location"), page

    def get(self, path, label, expect=200):
        status, location, page = self.request("GET", path, label)
        return self._expect(status, location, page, expect, label)

    def submit(self, path, label, form, values=(), button=None, expect=302):
        data = dict(form.fields)
        data.update(values)
        if button:
            data[button] = form.buttons[button]
        status, location, page = self.request("POST", form.action or path, label, data)
        return self._expect(status, location, page, expect, label)

    def _expect(self, status, location, page, expect, label):
        if status >= 400:
            raise Step(f"{label}: HTTP {status}")
        if status not in (expect if isinstance(expect, tuple) else (expect,)):
            raise Step(f"{label}: HTTP {status}, expected {expect}")
        if status in (301, 302, 303):
            return urlsplit(location).path + (
                "?" + urlsplit(location).query if urlsplit(location).query else ""
            )
        return page

    def follow(self, location, label):
        return location, self.get(location, label)

    def form(self, page, has, label):
        for form in forms_of(page):
            if has in form.names():
                return form
        raise Step(f"{label}: no form with {has!r} on the page")

    def login(self, username):
        page = self.get("/login/", "login_page")
        form = self.form(page, "username", "login_page")
        home = self.submit("/login/", "login", form, {"username": username, "password": PASSWORD})
        self.get(home, "home")


# --- Simulated people ------------------------------------------------------------------------


class Window:
    """The measured time: it opens when the last person has logged in and lasts --seconds.
    Each person starts work right after their own login, so nobody waits for the others and
    the 50 do not all click in the same instant when the window opens."""

    def __init__(self, people, seconds, on_open):
        self.people, self.seconds, self.on_open = people, seconds, on_open
        self.lock = threading.Lock()
        self.start, self.stop = None, math.inf

    def logged_in(self):
        with self.lock:
            self.people -= 1
            if self.people == 0:
                self.on_open()
                self.start = time.time()
                self.stop = self.start + self.seconds

    def is_open(self):
        return time.time() < self.stop


class Closed(Exception):  # noqa: N818 - an event, not an error
    """The window closed while the person paused: they stop work there."""


def think(rng, mean, window):
    """A person's pause before their next page action; when the window has closed meanwhile,
    they stop (Closed). Each pause is taken whole: cutting every pause short at the window's
    end made everyone still at work send their next page in the same instant, a burst of some
    40 requests no phone desk makes, which alone set the run's p99 (the last 5 s slice)."""
    if mean > 0:
        time.sleep(rng.uniform(0.5 * mean, 1.5 * mean))
    if not window.is_open():
        raise Closed


def coordinator(browser, plan, rng, args, window, outcome):
    """Screen, enrol, randomize, read the result: the phone desk workflow, page by page."""
    key = plan["desk_key"]
    n = 0
    while window.is_open():
        n += 1
        today = plan["today"]  # the site's local date: the forms refuse future dates
        page = browser.get(f"/trials/{key}/desk/screen/", "screen_page")
        think(rng, args.think, window)
        form = browser.form(page, "screened_on", "screen_page")
        values = {f"c_{code}": answer for code, answer in plan["answers"].items()}
        values.update(
            site=rng.choice(form.choices["site"]),
            screened_on=today,
            referral_source="GP",
            full_name=f"Caller {browser.port}-{plan['who']}-{n}",
            national_id=f"{rng.randrange(10**9, 10**10)}",
            phone="+45 12 34 56 78",
            consent_date=today,
            consent_form_version="v1.0",
            consent_obtained_by="Bench coordinator",
        )
        screening = browser.submit(f"/trials/{key}/desk/screen/", "screen_post", form, values)
        page = browser.get(screening, "screening_page")
        think(rng, args.think, window)
        form = browser.form(page, "enrol", "screening_page")
        levels = {name: rng.choice(form.choices[name]) for name in plan["factor_fields"]}
        randomize = browser.submit(screening, "enrol_post", form, levels, button="enrol")
        page = browser.get(randomize, "randomize_page")
        think(rng, args.think, window)
        form = browser.form(page, "read_back", "randomize_page")
        values = {"read_back": "on"}
        if "baseline_completed_on" in form.names():
            values["baseline_completed_on"] = today
        result = browser.submit(randomize, "randomize_post", form, values)
        if "/desk/result/" not in result:
            raise Step(f"randomize_post went to {result}, not the result page")
        browser.get(result, "result_page")
        outcome["randomized"] += 1
        think(rng, args.think, window)


def assessor(browser, plan, rng, args, window, outcome):
    """Worklist, open a PANSS of one of their visits, complete it, land on the visit page."""
    key = plan["crf_key"]
    visits = list(plan["visits"])
    while window.is_open() and visits:
        browser.get(f"/trials/{key}/worklist/", "worklist")
        think(rng, args.think, window)
        visit = visits.pop()
        url = f"/trials/{key}/visits/{visit}/forms/panss/single/"
        page = browser.get(url, "entry_page")
        think(rng, args.think, window)
        form = browser.form(page, "item_p1", "entry_page")
        values = {name: str(rng.randint(1, 7)) for name in form.fields if name.startswith("item_")}
        landed = browser.submit(
            url, "entry_post", form, values, button="complete", expect=(302, 200)
        )
        if not landed.startswith("/"):
            # The page came back with the data quality rules' warnings (e.g. P1 absent while G9
            # is severe): the assessor checks the values and saves them as they are.
            think(rng, args.think, window)
            form = browser.form(landed, "acknowledge", "entry_warnings")
            landed = browser.submit(
                url, "entry_acknowledge", form, {**values, "acknowledge": "1"}, button="complete"
            )
        browser.get(landed, "visit_page")
        outcome["saved"] += 1
        think(rng, args.think, window)


def person(role, browser, plan, args, window, outcome, seed):
    """Arrive, log in, work until the window closes."""
    rng = random.Random(seed)
    # People arrive over --ramp seconds, not all in the same millisecond.
    time.sleep(rng.uniform(0, args.ramp))
    give_up = time.time() + args.ramp + 120
    while "sessionid" not in browser.cookies and time.time() < give_up:
        try:
            browser.login(plan["who"])
        except Exception as exc:  # counted; tried again
            outcome["errors"].append(f"{plan['who']}: {type(exc).__name__}: {exc}")
            time.sleep(1)
    window.logged_in()
    work = coordinator if role == "coordinator" else assessor
    while window.is_open():
        try:
            if "sessionid" not in browser.cookies:
                browser.login(plan["who"])
            work(browser, plan, rng, args, window, outcome)
        except Closed:
            break
        except Exception as exc:  # counted; the person starts the workflow again
            outcome["errors"].append(f"{plan['who']}: {type(exc).__name__}: {exc}")
            try:
                think(rng, args.think, window)
            except Closed:
                break


# --- Environment, database and server --------------------------------------------------------


def server_environment(database_url):
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DATABASE_CONN_MAX_AGE="60",  # as docker-compose.yml
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        SECURE_COOKIES="false",  # plain HTTP on the loopback; behind TLS in production
        ALLOWED_HOSTS="127.0.0.1",
        CELERY_BROKER_URL="",
        EMAIL_URL="dummy://",
        TWO_FACTOR_REQUIRED="false",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="imrtrial.settings",
    )
    env.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    env.setdefault("RANDOMIZATION_SECRET", "bench-only-randomization-secret-" + "r" * 16)
    return env


def recreate_database(url):
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        raise SystemExit(f"refusing to drop database {name!r}: its name must contain 'bench'")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def build(args):
    """The two trials, the people, and who does what: {username: plan}."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from assessments.services import schedule_visits
    from imrtrial.models import Membership, Participant, Role
    from imrtrial.trialconfig import create_trial, parse, resolve

    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)
    config = parse(resolve("danish").read_text(encoding="utf-8"))
    trials = {}
    for key in (DESK_TRIAL, CRF_TRIAL):
        trial = create_trial(dict(config, key=key, name=f"{config['name']} [{key}]"))
        trial.status = "open"
        trial.save(update_fields=["status"])
        trials[key] = trial
    desk, crf = trials[DESK_TRIAL], trials[CRF_TRIAL]

    # The CRF trial: randomized nine months ago, so baseline, post and follow-up visits exist.
    sites = list(crf.sites.order_by("code"))
    randomized_on = timezone.localdate() - dt.timedelta(days=270)
    Participant.objects.bulk_create(
        Participant(
            trial=crf,
            site=sites[i % len(sites)],
            participant_id=f"{crf.id_prefix}-L{i:05d}",
            status="randomized",
            randomized_on=randomized_on,
            factor_levels={"diagnosis": "schizophrenia"},
        )
        for i in range(args.participants)
    )
    schedule_visits(crf)
    from assessments.models import Visit

    visits = list(
        Visit.objects.filter(participant__trial=crf).order_by("?").values_list("pk", flat=True)
    )

    # One hash for everyone: argon2 is slow by design, and it is the login that pays it.
    password = make_password(PASSWORD)
    n_coordinators = args.users // 2
    n_assessors = args.users - n_coordinators
    User = get_user_model()
    users = User.objects.bulk_create(
        [
            User(username=f"load-coordinator-{i:02d}", password=password)
            for i in range(n_coordinators)
        ]
        + [User(username=f"load-assessor-{i:02d}", password=password) for i in range(n_assessors)]
    )
    Membership.objects.bulk_create(
        [Membership(user=u, trial=desk, role=Role.COORDINATOR) for u in users[:n_coordinators]]
        + [Membership(user=u, trial=crf, role=Role.ASSESSOR) for u in users[n_coordinators:]]
    )
    answers = {c.code: "yes" if c.kind == "inclusion" else "no" for c in desk.criteria.all()}
    factor_fields = [f.code for f in desk.factors.filter(from_site=False)]
    plans = {}
    for user in users[:n_coordinators]:
        plans[user.username] = {
            "role": "coordinator",
            "who": user.username,
            "desk_key": desk.key,
            "today": timezone.localdate().isoformat(),
            "answers": answers,
            "factor_fields": factor_fields,
        }
    for i, user in enumerate(users[n_coordinators:]):
        plans[user.username] = {
            "role": "assessor",
            "who": user.username,
            "crf_key": crf.key,
            "visits": visits[i::n_assessors],
        }
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return desk, crf, plans


def process_group_cpu_seconds(pgid):
    """CPU seconds used so far by the processes of a group (the gunicorn master and workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... utime stime
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def database_backend_cpu(database):
    """{pid: CPU seconds} of the PostgreSQL backends serving `database` on this machine."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if not cmdline.startswith("postgres: ") or f" {database} " not in cmdline:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[proc.name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env, workers, log):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "imrtrial.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--timeout",
            "60",
            "--config",
            str(_BENCH_DIR / "gunicorn_steps.py"),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited at start; see its log above")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/login/")
            if conn.getresponse().status == 200:
                conn.close()
                return process, port
        except OSError:
            time.sleep(0.3)
    stop_server(process)
    raise SystemExit("gunicorn did not answer /login/ within 60 s")


def stop_server(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- Main ------------------------------------------------------------------------------------


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[max(1, math.ceil(q * len(sorted_values))) - 1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="simulated people, half each role")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they work")
    # 5 s between page actions is still quicker than a person reads a page and fills a form;
    # lower it (e.g. --think 1) to stress the server beyond what 50 people can do.
    parser.add_argument("--think", type=float, default=5.0, help="mean pause between pages, s")
    parser.add_argument("--ramp", type=float, default=20.0, help="logins spread over, s")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--participants", type=int, default=1000, help="in the CRF trial")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_LOAD_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database to DROP and recreate (name must contain 'bench')",
    )
    args = parser.parse_args(argv)
    if args.users < 2 or args.seconds <= 0 or args.workers < 1:
        parser.error("--users must be at least 2, --seconds and --workers positive")

    env = server_environment(args.database_url)
    database = urlsplit(args.database_url).path.lstrip("/")
    os.environ.update(env)
    print(f"load: recreating {urlsplit(args.database_url).path.lstrip('/')!r}, building trials")
    recreate_database(args.database_url)
    import django

    django.setup()
    from bench.randomization import busy_cpu_seconds

    desk, crf, plans = build(args)

    steps_log = tempfile.NamedTemporaryFile("r", suffix=".steps", delete=False)  # noqa: SIM115
    env["BENCH_STEP_CPU_LOG"] = steps_log.name
    with tempfile.TemporaryFile("w+") as log:
        server, port = start_server(env, args.workers, log)
        print(
            f"load: gunicorn on 127.0.0.1:{port}, {args.workers} workers; {args.users} people "
            f"for {args.seconds:g} s, {args.think:g} s mean pause, {os.cpu_count()} CPUs"
        )
        browsers = {who: Browser("127.0.0.1", port) for who in plans}
        # One tally per person, so no two threads write the same counter.
        tallies = {who: {"randomized": 0, "saved": 0, "errors": []} for who in plans}
        counters = {}

        def open_window():
            counters["busy"] = busy_cpu_seconds()
            counters["server_cpu"] = process_group_cpu_seconds(server.pid)
            counters["client_cpu"] = time.process_time()
            counters["database_cpu"] = database_backend_cpu(database)

        window = Window(len(plans), args.seconds, open_window)
        threads = [
            threading.Thread(
                target=person,
                args=(plan["role"], browsers[who], plan, args, window, tallies[who]),
                kwargs={"seed": args.seed + i},
                daemon=True,
            )
            for i, (who, plan) in enumerate(sorted(plans.items()))
        ]
        arrival = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        end = time.time()
        wall = end - window.start  # the window and the last pauses (no requests after it)
        # Requests start only inside the window: people stop at their first pause after it.
        window_s = min(end, window.stop) - window.start
        busy = (busy_cpu_seconds() or 0) - (counters["busy"] or 0)
        server_cpu = process_group_cpu_seconds(server.pid) - counters["server_cpu"]
        client_cpu = time.process_time() - counters["client_cpu"]
        # Backends that ended in the window are missed: with connections kept 60 s, none do.
        database_cpu = sum(
            cpu - counters["database_cpu"].get(pid, 0.0)
            for pid, cpu in database_backend_cpu(database).items()
        )
        print(f"load: everyone logged in after {window.start - arrival:.1f} s")
        for b in browsers.values():
            b.reset()
        stop_server(server)
        log.seek(0)
        server_log = log.read()

    outcome = {
        "randomized": sum(t["randomized"] for t in tallies.values()),
        "saved": sum(t["saved"] for t in tallies.values()),
        "errors": [e for t in tallies.values() for e in t["errors"]],
    }
    every = [r for b in browsers.values() for r in b.records]
    # Errors count from the first request; times only inside the window, once everyone is in.
    bad_status = [r for r in every if isinstance(r[2], int) and not 200 <= r[2] < 400]
    exceptions = [r for r in every if not isinstance(r[2], int)]
    logins = sorted(ms for label, ms, _, _ in every if label == "login")
    records = [r for r in every if r[3] >= window.start]
    pages = sorted(ms for label, ms, _, _ in records if label != "login")
    by_label = {}
    for label, ms, _, _ in records:
        by_label.setdefault(label, []).append(ms)

    from django.db import connections

    from assessments.models import FormEntry
    from bench.randomization import anomalies_of

    connections.close_all()
    allocated_anomalies, facts = anomalies_of(desk, outcome["randomized"])
    # A randomization the server made but whose answer the browser never got is an error
    # already counted; here only what is wrong in the rows themselves.
    allocated_anomalies.pop("unallocated", None)
    complete = FormEntry.objects.filter(participant__trial=crf, status="complete").count()

    # The server's CPU per request of each step, from the workers' own count, in the window.
    step_cpu = {}
    for line in steps_log.read().splitlines():
        at, step, cpu_ms = line.split()
        if window.start <= float(at) <= end:
            step_cpu.setdefault(step, []).append(float(cpu_ms))
    steps_log.close()
    os.unlink(steps_log.name)
    for label, values in sorted(by_label.items()):
        values.sort()
        cpu = step_cpu.get(label)
        print(
            f"  {label:17s} n={len(values):5d}  p50 {percentile(values, 0.5):7.1f} ms  "
            f"p99 {percentile(values, 0.99):7.1f} ms  max {values[-1]:7.1f} ms  "
            f"server CPU {sum(cpu) / len(cpu) if cpu else float('nan'):5.1f} ms"
        )
    # When the slow pages happened: one stall shows as one bad slice, steady queueing as all.
    slices = {}
    for label, ms, _, started in records:
        if label != "login":
            slices.setdefault(int((started - window.start) // 5), []).append(ms)
    print(
        "  p99 by 5 s of the window: "
        + ", ".join(
            f"{5 * k}-{5 * k + 5} s {percentile(sorted(v), 0.99):.0f} ms"
            for k, v in sorted(slices.items())
        )
    )
    errors = outcome["errors"]
    for error in errors[:10]:
        print(f"  error: {error}")
    if errors and "Traceback" in server_log:
        print("  server log (last lines):\n" + "\n".join(server_log.splitlines()[-30:]))
    print(
        f"load: {len(records)} requests in the {window_s:.1f} s window; "
        f"{outcome['randomized']} randomized "
        f"({facts['allocations']} allocations, anomalies {sum(allocated_anomalies.values())}), "
        f"{outcome['saved']} PANSS completed ({complete} complete in the database); "
        f"errors {len(errors)} ({len(bad_status)} non-2xx/3xx, {len(exceptions)} exceptions)"
    )
    result = {
        "users": args.users,
        "seconds": args.seconds,
        "think_s": args.think,
        "requests": len(records),
        "errors": len(errors),
        "http_errors": len(bad_status),
        "exceptions": len(exceptions),
        "p50_ms": round(percentile(pages, 0.50), 1),
        "p99_ms": round(percentile(pages, 0.99), 1),
        "max_ms": round(pages[-1], 1) if pages else None,
        "login_p50_ms": round(percentile(logins, 0.50), 1),
        "login_p99_ms": round(percentile(logins, 0.99), 1),
        "throughput": round(len(records) / window_s, 1),
        "workers": args.workers,
        "server_cpu_ms_per_request": round(server_cpu * 1000 / max(1, len(records)), 1),
        "client_cpu_ms_per_request": round(client_cpu * 1000 / max(1, len(records)), 1),
        "database_cpu_ms_per_request": round(database_cpu * 1000 / max(1, len(records)), 1),
        "server_cpu_ms_by_step": {
            step: round(sum(values) / len(values), 1) for step, values in sorted(step_cpu.items())
        },
        # Share of both CPUs busy in the window, with whatever else the machine was running.
        "machine_busy": round(busy / wall / (os.cpu_count() or 1), 2) if busy else None,
        "randomized": outcome["randomized"],
        "allocations": facts["allocations"],
        "allocation_anomalies": sum(allocated_anomalies.values()),
        "crf_completed": outcome["saved"],
        "crf_complete_in_db": complete,
        "cpus": os.cpu_count(),
    }
    met = {
        "errors": result["errors"] == 0 and result["allocation_anomalies"] == 0,
        "p99_ms": result["p99_ms"] <= GOALS["p99_ms"],
    }
    result["goals_met"] = met
    print(
        f"goals: errors {result['errors']} (goal 0) {'met' if met['errors'] else 'MISSED'}; "
        f"p99 {result['p99_ms']} ms (goal <= {GOALS['p99_ms']:g}) "
        f"{'met' if met['p99_ms'] else 'MISSED'}"
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
