# The README's two commands: `make run` (demo site on SQLite) and `make test` (the whole suite on
# the local PostgreSQL and Redis). Everything else here serves those two.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Tests run against the local PostgreSQL (trust auth) unless DATABASE_URL says otherwise.
TEST_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/imrtrial)
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# Production-like values for `check --deploy`; nothing here is a real secret.
DEPLOY_ENV := DEBUG=false SECRET_KEY=$$(printf 'x%.0s' $$(seq 60))-deploy-check \
	ALLOWED_HOSTS=trial.example.org RANDOMIZATION_SECRET=$$(printf 'r%.0s' $$(seq 40)) \
	SITE_URL=https://trial.example.org EMAIL_URL=smtp://mail.example.org:587 \
	SMS_BACKEND=selfreport.sms.HttpSender SMS_API_URL=https://sms.example.org/v1 SMS_FROM=Research

.PHONY: run test lint services browser pspp install install-dev migrate clean backup restore faults \
	messages compilemessages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The translation catalogues (locale/<language>/LC_MESSAGES/django.po; English is the source):
# `make messages` collects every marked string into them, for the translators to fill in; the
# compiled .mo files are built (here, by `make run` and `make test`, and in the Docker image),
# never committed. Only our own locale/ is compiled, not the catalogues of installed packages.
MAKEMESSAGES := makemessages -l da -l nl --no-location --no-obsolete -i .venv -i tests -i bench \
	-i node_modules -i staticfiles -i locale

messages: install
	DEBUG=true $(BIN)/python manage.py $(MAKEMESSAGES)

compilemessages: install
	DEBUG=true $(BIN)/python manage.py compilemessages -i $(VENV) -i node_modules -i staticfiles -i .git

# Two-factor sign-in as in production (DEBUG alone would turn it off): the TOTP secrets of the
# demo users who need it are in the logins file seed_demo writes (demo-logins.txt, mode 600).
run: install compilemessages
	DEBUG=true $(BIN)/python manage.py migrate --noinput
	DEBUG=true $(BIN)/python manage.py seed_demo
	@echo "Serving the demo on http://127.0.0.1:8000 (Ctrl-C to stop); logins in demo-logins.txt."
	DEBUG=true TWO_FACTOR_REQUIRED=true $(BIN)/python manage.py runserver 127.0.0.1:8000

services:
	@scripts/services.sh

# Chromium for the browser tests, and axe-core (npm, pinned) for their accessibility checks.
browser:
	@scripts/ensure-chromium.sh
	@scripts/ensure-axe.sh

# One export test reads the SPSS file with GNU PSPP (tests/exports/test_file_types.py).
pspp:
	@scripts/ensure-pspp.sh

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=true $(BIN)/python manage.py makemigrations --check --dry-run
	$(DEPLOY_ENV) $(BIN)/python manage.py check --deploy --fail-level WARNING

# The suite runs in production mode (DEBUG off, hashed static files) on the local services.
TEST_ENV := DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) DEBUG=false \
	SECRET_KEY=test-only-secret-key-not-for-production RANDOMIZATION_SECRET=test-secret \
	SECURE_SSL_REDIRECT=false

test: install-dev services browser pspp compilemessages
	$(TEST_ENV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(TEST_ENV) $(BIN)/pytest -m "not worker and not faults" $(PYTEST_ARGS)
	$(TEST_ENV) $(BIN)/pytest -m worker $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: none selected

# Slow fault tests: they start private PostgreSQL and Redis instances and restart or stop them
# (never the shared ones); see tests/faults/test_faults.py.
faults: install-dev services compilemessages
	$(TEST_ENV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(TEST_ENV) $(BIN)/pytest -m faults tests/faults $(PYTEST_ARGS)

# Backups of the database `make test` uses unless DATABASE_URL (or BACKUP_DATABASE_URL) says
# otherwise: `make backup [DUMP=file.dump]`, `make restore DUMP=file.dump TARGET=name [FORCE=1]`.
BACKUP_DATABASE_URL ?= $(TEST_DATABASE_URL)

backup:
	scripts/backup.sh --database-url $(BACKUP_DATABASE_URL) $(if $(DUMP),--output $(DUMP))

restore:
	@test -n "$(DUMP)" -a -n "$(TARGET)" || { echo "usage: make restore DUMP=file.dump TARGET=database [FORCE=1]" >&2; exit 2; }
	scripts/restore.sh $(DUMP) $(TARGET) --database-url $(BACKUP_DATABASE_URL) $(if $(FORCE),--force)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache .cache
