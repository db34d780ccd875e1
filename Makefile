# videogen: every target sets up what it needs in project-local virtualenvs.
#   make demo   run the whole pipeline locally (moto + OpenRouter simulator) and save out/reference-video.mp4
#   make test   lint, type-check, run every test and check the SAM template
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# python3.12 must be on PATH for `sam build` (runtime python3.12); pyenv provides it on the dev machines.
SAM_BUILD_ENV ?= PYENV_VERSION=3.11.7:3.12.1

.PHONY: help venv demo serve test test-deployed unit lint typecheck format template-check build deploy clean chaos fuzz dashboard browser bench readme-dashboard

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt layers/videogen/requirements.txt layers/videogen/requirements-nodeps.txt layers/videogen/pyproject.toml local/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e layers/videogen -e local
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with the service, the videogen CLI and the test tools

demo: $(STAMP)  ## run the pipeline locally end to end and save out/reference-video.mp4
	$(BIN)/videogen demo

serve: $(STAMP)  ## run the local stack (API on http://127.0.0.1:8787/v1) until Ctrl-C
	$(BIN)/videogen local serve --port 8787

dashboard: $(STAMP) browser  ## the CloudWatch dashboard drawn from the last demo/serve run: out/dashboard.html, .png
	$(BIN)/videogen dashboard --metrics out/metrics.jsonl --html out/dashboard.html --png out/dashboard.png

readme-dashboard: $(STAMP) browser  ## redraw docs/dashboard.png (the README's screenshot) from a fresh local run
	$(BIN)/python scripts/readme_dashboard.py

# Debian's Chromium, headless: the dashboard's PNG and its browser test (tests/e2e/test_dashboard.py).
browser:  ## install Chromium from Debian's packages if /usr/bin/chromium is missing
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
		echo "Chromium is missing and there is no apt-get: install Chromium as /usr/bin/chromium" >&2; exit 1; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	elif command -v sudo >/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "Chromium is missing and there is no sudo: as root, run apt-get install chromium (or make browser)" >&2; exit 1; \
	fi

lint: $(STAMP)  ## ruff (lint and format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)  ## mypy (strict) on the core package, the handlers and the CLI
	$(BIN)/mypy layers/videogen/videogen local/videogen_local bench scripts
	for handler in functions/*/app.py; do $(BIN)/mypy "$$handler" || exit 1; done

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

template-check: $(STAMP)  ## sam validate --lint, cfn-lint, statelint and checkov on the template and state machine
	bash scripts/check_template.sh

unit: $(STAMP) browser  ## the tests only (no lint, no template checks)
	$(BIN)/python -m pytest -n 2 --dist loadscope $(PYTEST_ARGS)

test: lint typecheck template-check unit  ## everything CI runs

# The HTTP end-to-end tests against a deployed stack: VIDEOGEN_API_URL=<ApiUrl output>, AWS credentials for the
# IAM routes and/or VIDEOGEN_API_KEY (videogen keys create --stack <name> --tenant ...) for the /api/v1 routes.
test-deployed: $(STAMP)  ## the HTTP end-to-end tests against VIDEOGEN_API_URL (a deployed stack; see README)
	@test -n "$$VIDEOGEN_API_URL" || { echo "set VIDEOGEN_API_URL to the stack's ApiUrl output" >&2; exit 2; }
	# --confcutdir: not tests/conftest.py, which points every AWS client at fake credentials.
	$(BIN)/python -m pytest tests/deployed --confcutdir=tests/deployed --timeout 2400 -v $(PYTEST_ARGS)

$(SAM_VENV)/bin/sam:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli==1.170.0

build: $(SAM_VENV)/bin/sam  ## sam build (needs python3.12 on PATH)
	$(SAM_BUILD_ENV) $(SAM_VENV)/bin/sam build

deploy: build  ## sam deploy --guided to your AWS account
	$(SAM_VENV)/bin/sam deploy --guided

clean:  ## remove build output (keeps the virtualenvs)
	rm -rf .aws-sam out .pytest_cache .mypy_cache .ruff_cache

chaos: $(STAMP)  ## 200 jobs through local serve with 20 % OpenRouter and 10 % AWS-side faults; prints the figures
	$(BIN)/videogen chaos --jobs 200 --fault-rate 0.2 --aws-fault-rate 0.1

bench: $(STAMP) $(SAM_VENV)/bin/sam  ## the performance suite: bench/results.json, bench/results.md and the README table
	$(SAM_BUILD_ENV) $(BIN)/python -m bench

fuzz: $(STAMP)  ## schemathesis on the local API from its OpenAPI document, about 1,000 generated cases
	VIDEOGEN_FUZZ_EXAMPLES=100 $(BIN)/python -m pytest tests/e2e/test_fuzz.py -s -p no:randomly
