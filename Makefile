# addp_mm developer entry points.
#   make install   set up ./.venv (scripts/install.sh; idempotent, seconds when up to date)
#   make test      install, then run the test suite on the CPU
#   make demo      (not implemented yet)
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

demo:
	@echo "the demo is not implemented yet" >&2; exit 1
