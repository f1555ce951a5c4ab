# Two commands for a fresh clone: `make run` and `make test`.
# Both create .venv when it is missing and (re)install when pyproject.toml or
# requirements.lock changed, so nothing needs a manual step.

# Settings from .env (see .env.example), if present, reach every command.
ifneq (,$(wildcard .env))
include .env
export
endif

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint protos lock clean

$(INSTALLED): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $@

run: $(INSTALLED)
	$(BIN)/python -m recommender

test: $(INSTALLED) lint
	$(BIN)/python -m pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

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
	rm -rf $(VENV) .pytest_cache .ruff_cache var
