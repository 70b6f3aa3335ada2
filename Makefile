# addp_mm developer entry points.
#   make install   set up ./.venv (scripts/install.sh; idempotent, seconds when up to date)
#   make test      install, then run the test suite on the CPU
#   make demo      install, then train the tiny ADDP stack on scikit-image photos and draw PNGs
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON := .venv/bin/python
now = date -u '+%Y-%m-%dT%H:%M:%SZ'

.PHONY: install test demo

install:
	@start=$$(date +%s); echo "[make] $$($(now)) install: start"; \
	bash scripts/install.sh; \
	echo "[make] $$($(now)) install: done in $$(( $$(date +%s) - start )) s"

test: install
	@start=$$(date +%s); echo "[make] $$($(now)) tests: start"; \
	rc=0; $(PYTHON) -m pytest tests -q -p no:cacheprovider || rc=$$?; \
	echo "[make] $$($(now)) tests: finished in $$(( $$(date +%s) - start )) s (exit $$rc)"; \
	exit $$rc

demo: install
	@start=$$(date +%s); echo "[make] $$($(now)) demo: start"; \
	$(PYTHON) tools/demo.py --work-dir work_dirs/demo; \
	echo "[make] $$($(now)) demo: done in $$(( $$(date +%s) - start )) s"
