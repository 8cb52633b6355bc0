# datxai — quick start:  `make demo` runs the whole study on the synthetic default,
#                         `make test` runs the test suite (what CI runs).
# Both create .venv and install what they need on a fresh Debian machine with python3.

PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
CORES   ?= all
PROFILE ?= profiles/local
CONFIG  ?= config/config.yaml
# Debian packages the tests use: Chromium (report screenshot test); DCMTK (an independent
# JPEG / JPEG-LS encoder for the reader's transfer-syntax tests); dcm2niix (an independent
# converter of reconstructed NM volumes); a single-node
# SLURM with accounting (tests/test_slurm.py, daemons started by tests/slurm/).
DEB_TEST_PKGS := chromium munge slurmctld slurmd slurm-client slurmdbd mariadb-server dcmtk dcm2niix

.PHONY: demo test unit install deb-test lock clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed; installing python3-venv (Debian)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && \
	  $(PYTHON) -m venv $(VENV); }

# torch first and exactly (constraints.txt; a CPU wheel is available locally, any other
# spec pulls GBs of CUDA packages; a site's CUDA build installed before is kept), then
# every other package at the exact version and hash of requirements.lock (no resolver:
# same install on every machine and day), then the project itself.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt requirements.lock
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q -r constraints.txt
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@$(BIN)/python -m pip check || echo "warning: pip check (above) found a mismatch; with your own torch build, torchvision must match it"
	touch $@

install: $(VENV)/.installed

# Debian packages for the tests (best effort without root: those tests then skip).
deb-test:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(DEB_TEST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	    policy=0; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; policy=1; }; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	    rc=$$?; [ $$policy = 0 ] || rm -f /usr/sbin/policy-rc.d; [ $$rc = 0 ] || exit $$rc; fi; \
	else echo "not root: skipping Debian packages ($(DEB_TEST_PKGS)); tests needing them will skip"; fi

demo: install
	$(BIN)/snakemake --profile $(PROFILE) --configfile $(CONFIG) --cores $(CORES)
	$(BIN)/snakemake --profile $(PROFILE) --configfile $(CONFIG) --report results/report.html

test: install deb-test
	PATH="$(CURDIR)/$(BIN):$$PATH" bash tests/run_tests.sh

# The fast lane while developing: the unit tests only (no Snakemake runs, no SLURM); `make test` is what CI runs.
unit: install
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not workflow and not slurm"

# Regenerate requirements.lock (pip-tools; newest versions that pyproject.toml allows, torch
# as constraints.txt pins it). pip must find the CPU wheel of that torch (e.g. PIP_FIND_LINKS
# to a folder holding it): the CUDA wheel's nvidia-* dependencies must not enter the lock.
lock:
	$(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install -q "pip-tools==7.6.2"
	.lockenv/bin/pip-compile --quiet --upgrade --generate-hashes --extra test --constraint constraints.txt \
	  --unsafe-package torch --strip-extras --no-emit-index-url --no-emit-find-links \
	  --output-file requirements.lock pyproject.toml
	@! grep -qE '^(nvidia-|cuda-|triton)' requirements.lock || { \
	  echo "requirements.lock took CUDA packages: pip found the CUDA wheel of torch, not the CPU one"; exit 1; }

clean:
	rm -rf results .snakemake
