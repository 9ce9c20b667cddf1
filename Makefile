# The two commands of the README:
#   make demo   anonymize the bundled sample frames with the built-in detectors (no Kafka, S3 or inference service)
#   make test   install what the tests need and run lint, type checks and the whole suite (servers start in fixtures)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	npm install --prefix $(VENV)/tools --no-audit --no-fund --silent dclint@3.1.0 @asyncapi/specs@6.11.1 azurite@3.37.0
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/anonymizer image --out anonymized

lint: $(VENV)/.test
	$(BIN)/ruff check processor schemas tests
	$(BIN)/mypy
	$(BIN)/python -m schemas.export --check

test: lint
	$(BIN)/pytest

bench: $(VENV)/.runtime
	$(BIN)/anonymizer bench
