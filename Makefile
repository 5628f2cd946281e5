# The pipeline's user interface. Every target sets up what it needs first.
SHELL := /bin/bash
PY := .venv/bin/python
LS_VENV := .venv-labelstudio
LS_PORT ?= 8080
WORKSPACE ?=
SEEDS ?=
WS_FLAG := $(if $(WORKSPACE),--workspace $(WORKSPACE),)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_PACKAGES := chromium chromium-driver sqlite3-doc

.PHONY: setup crawl status dedupe annotate preannotate evaluate learn push pull report export verify \
        train model-evaluate bench-model \
        test test-fast lint bench labelstudio labelstudio-stop labelstudio-install clean-venv

setup: .venv/.installed

# System packages: Debian's Chromium and its driver (no browser download at run time) and
# the sqlite3 documentation site that the default crawl uses.
.venv/.system:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
	    || [ ! -f /usr/share/doc/sqlite3/index.html ]; then \
	  echo "installing $(SYSTEM_PACKAGES) from apt"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(SYSTEM_PACKAGES); \
	fi
	@mkdir -p .venv && touch $@

.venv/.installed: pyproject.toml .venv/.system
	@[ -x $(PY) ] || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,model]'
	@touch $@

crawl: setup
	$(PY) -m scraper crawl $(WS_FLAG) $(if $(SEEDS),--seeds $(SEEDS),)

status: setup
	$(PY) -m scraper status $(WS_FLAG)

dedupe: setup
	$(PY) -m dedupe run $(WS_FLAG)

preannotate: setup
	$(PY) -m annotate preannotate $(WS_FLAG)

push: setup labelstudio
	$(PY) -m annotate push $(WS_FLAG)

annotate: preannotate push

# New corrections teach the workspace its convention (granularity, menus, label names);
# `make annotate` then proposes the uncorrected pages in it.
pull: setup labelstudio
	$(PY) -m annotate pull $(WS_FLAG)
	$(PY) -m annotate learn --if-new $(WS_FLAG)

learn: setup
	$(PY) -m annotate learn $(WS_FLAG)

evaluate: setup
	$(PY) -m annotate evaluate $(WS_FLAG) $(if $(KREUZER),--kreuzer $(KREUZER),)

report: setup
	$(PY) -m annotate report $(WS_FLAG)

export: setup
	$(PY) -m export $(WS_FLAG)

# RELEASE=datasets/<name>/releases/vNNNN; default: the workspace's latest release.
verify: setup
	$(PY) -m export verify $(WS_FLAG) $(RELEASE)

# The model: RELEASE (default: the latest), TIME_BUDGET in minutes, MODEL=models/mNNNN.
TIME_BUDGET ?= 30
train: setup
	$(PY) -m model train $(WS_FLAG) $(RELEASE) --time-budget $(TIME_BUDGET)

model-evaluate: setup
	$(PY) -m model evaluate $(WS_FLAG) $(MODEL) $(RELEASE)

labelstudio-install: $(LS_VENV)/.installed

$(LS_VENV)/.installed:
	@[ -x $(LS_VENV)/bin/python ] || python3 -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install -q --upgrade pip
	$(LS_VENV)/bin/pip install -q 'label-studio>=1.23,<1.24'
	@touch $@

labelstudio: setup labelstudio-install
	$(PY) -m annotate.studio.server start --port $(LS_PORT)

labelstudio-stop: setup
	$(PY) -m annotate.studio.server stop

test: setup labelstudio-install
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow and not labelstudio"

lint: setup
	$(PY) -m ruff check .

bench: setup labelstudio-install
	$(PY) bench/crawl.py
	$(PY) bench/dedupe.py
	$(PY) bench/preannotate.py
	$(PY) bench/adapt.py
	$(PY) bench/push.py
	$(PY) bench/export.py
	$(PY) bench/faults.py

# Trains a model for up to 30 minutes: run on its own, not with `make bench`.
bench-model: setup
	$(PY) bench/model.py $(if $(RELEASE),--release $(RELEASE),)

clean-venv:
	rm -rf .venv $(LS_VENV)
