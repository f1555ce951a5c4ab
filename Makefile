# Two commands for a fresh clone: `make run` and `make test`.
# Both create .venv when it is missing and (re)install when pyproject.toml or
# requirements.lock changed, so nothing needs a manual step.

# Settings from .env (see .env.example), if present, reach every command.
ifneq (,$(wildcard .env))
include .env
export
endif

# The PostgreSQL pass of `make test`; its database is created and dropped by the tests.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bookstore

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# Root installs system packages directly; anyone else through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint protos lock clean chromium axe docker images certs loadtest bench bench-quick

$(INSTALLED): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $@

# The whole shop in the foreground under supervisord (Procfile, scripts/supervise.py),
# logs prefixed by process, one that dies started again; Ctrl-C stops everything.
# Safe to re-run: every step is idempotent.
run: $(INSTALLED)
	$(BIN)/python scripts/ensure_services.py rabbitmq
	$(BIN)/python marketplace_site/manage.py migrate --no-input
	$(BIN)/python marketplace_site/manage.py load_catalog
	$(BIN)/python marketplace_site/manage.py ensure_demo_staff
	$(BIN)/python marketplace_site/manage.py ensure_demo_promotion
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/supervise.py

# Two lines of work side by side; either one failing fails the run.
# In the background: the deployments on Docker Engine (tests/deploy/:
# compose, then the swarm stack with its rolling updates, on one engine that
# the tests start where none runs, and stop), which mostly wait on their
# containers; then the fault tests (RabbitMQ clusters of their own, stopped,
# killed and frozen under time limits: beside the deployments' own cluster
# they ran out of time on two cores). In the foreground: Chromium and axe-core
# installed where missing (the browser test's), the linters, every other test
# on SQLite, the database tests again on PostgreSQL, and the benchmark harness
# once, small (a smoke check that fails only if it breaks). The background's
# output follows.
DEPLOY_LOG := test-artifacts/deploy-tests.log
FAULTS_LOG := test-artifacts/fault-tests.log
test: $(INSTALLED) docker
	$(BIN)/python scripts/ensure_services.py postgres rabbitmq
	@mkdir -p $(dir $(DEPLOY_LOG)); \
	{ $(BIN)/python -m pytest -m docker tests/deploy > $(DEPLOY_LOG) 2>&1; deployed=$$?; \
	  $(BIN)/python -m pytest -m "not postgres and not docker" tests/faults > $(FAULTS_LOG) 2>&1; faulted=$$?; \
	  test $$deployed -eq 0 -a $$faulted -eq 0; } & background=$$!; \
	$(MAKE) --no-print-directory chromium axe lint \
	  && $(BIN)/python -m pytest -m "not postgres and not docker" --ignore=tests/faults \
	  && DATABASE_URL="$(TEST_DATABASE_URL)" $(BIN)/python -m pytest -m "not docker" tests/marketplace tests/events \
	  && $(BIN)/python -m bench --quick; status=$$?; \
	wait $$background; finished=$$?; \
	echo "--- tests/deploy (compose and the swarm stack on Docker Engine) ---"; cat $(DEPLOY_LOG); \
	echo "--- tests/faults (after the deployments) ---"; cat $(FAULTS_LOG) 2>/dev/null; \
	test $$status -eq 0 -a $$finished -eq 0

# Every hop against its bare baseline (bench/README.md); bench-results/report.{md,json}.
bench: $(INSTALLED)
	$(BIN)/python scripts/ensure_services.py postgres rabbitmq
	$(BIN)/python -m bench --full

bench-quick: $(INSTALLED)
	$(BIN)/python scripts/ensure_services.py postgres rabbitmq
	$(BIN)/python -m bench --quick

# Load on a running shop (`make run` in another terminal): browsing, buying and a
# promotion surge (loadtest/locustfile.py); fails if any request failed.
MARKETPLACE_URL ?= http://127.0.0.1:8000
loadtest: $(INSTALLED)
	$(BIN)/locust -f loadtest/locustfile.py --headless --host "$(MARKETPLACE_URL)" \
	  -u 20 -r 5 -t 60s --only-summary

# Debian's Chromium for the browser test (Playwright drives it; no browser download).
chromium:
	@test -x /usr/bin/chromium || { \
	  command -v apt-get >/dev/null || { echo "the browser test needs Debian's chromium package (/usr/bin/chromium)"; exit 1; }; \
	  $(SUDO) apt-get install -y -q chromium || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }; }

# axe-core, which the browser test injects into each page it checks for
# accessibility, from npm at a pinned version (npm from Debian, installed as
# chromium is). Reinstalled when the version here changes.
AXE_CORE_VERSION := 4.14.1
AXE_CORE := var/axe/node_modules/axe-core
axe: $(AXE_CORE)/.version-$(AXE_CORE_VERSION)
$(AXE_CORE)/.version-$(AXE_CORE_VERSION):
	@command -v npm >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "the browser test needs npm for axe-core"; exit 1; }; \
	  $(SUDO) apt-get install -y -q npm || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q npm; }; }
	npm install --silent --no-save --no-audit --no-fund --prefix var/axe axe-core@$(AXE_CORE_VERSION)
	@touch $@

# Debian's Docker Engine (20.10) and debootstrap, for `make images` and the
# deployment test; installed as chromium is.
docker:
	@test -x /usr/sbin/dockerd -a -x /usr/sbin/debootstrap || { \
	  command -v apt-get >/dev/null || { echo "the deployment test needs Debian's docker.io and debootstrap packages"; exit 1; }; \
	  $(SUDO) apt-get install -y -q docker.io debootstrap || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q docker.io debootstrap; }; }

# Every image of compose/docker-compose.yml, from a Debian mirror: no registry
# (scripts/images.py; DEBIAN_MIRROR, EXTRA_CA_CERTS, IMAGE_TAG). Needs a running
# Docker Engine.
images: $(INSTALLED) docker
	$(BIN)/python scripts/images.py

# mypy's cache (.mypy_cache, git-ignored) keeps a re-run to the files that changed.
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# Development TLS certificates in var/certs/ (git-ignored): a CA, the
# recommender's server certificate, the site's client certificate. Keeps an
# existing set; `make certs FORCE=1` replaces it.
certs: $(INSTALLED)
	$(BIN)/python scripts/dev_certs.py $(if $(FORCE),--force)

# Regenerate the Python modules beside every .proto (tests fail when stale).
protos: $(INSTALLED)
	$(BIN)/python protos/generate.py

# Re-pin every dependency after changing pyproject.toml.
lock:
	rm -rf /tmp/bookstore-lock-venv
	$(PYTHON) -m venv /tmp/bookstore-lock-venv
	/tmp/bookstore-lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	echo "# Every version, pinned; regenerate with \`make lock\`." > requirements.lock
	/tmp/bookstore-lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e' >> requirements.lock
	rm -rf /tmp/bookstore-lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache var
