# addp_mm developer entry points.
#   make install   set up ./.venv (scripts/install.sh; idempotent, seconds when up to date)
#   make test      install, then run the test suite on the CPU
#   make demo      install, then train the tiny ADDP stack on scikit-image photos and draw PNGs
#   make mini-paper  install, then the paper's table in miniature on real digits (3 seeds in turn)
#   make mini-paper-curve  after mini-paper: seed 0's teacher curve (ADDP vs its predictor's budget)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON := .venv/bin/python
now = date -u '+%Y-%m-%dT%H:%M:%SZ'

.PHONY: install test demo mini-paper mini-paper-curve

MINI_PAPER_SEEDS ?= 0 1 2
MINI_PAPER_DIR ?= work_dirs/mini_paper
MINI_PAPER_CURVE ?= 1000 3000
# One seed at a time with both cores: faster than seeds side by side (benchmarks/mini_paper/README.md)
MINI_PAPER_THREADS ?= 2

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

mini-paper: install
	@start=$$(date +%s); mkdir -p $(MINI_PAPER_DIR); \
	echo "[make] $$($(now)) mini-paper: seeds $(MINI_PAPER_SEEDS) one after another, $(MINI_PAPER_THREADS) threads each; logs in $(MINI_PAPER_DIR)/seed*.log"; \
	for seed in $(MINI_PAPER_SEEDS); do \
	  $(PYTHON) benchmarks/mini_paper.py --seed $$seed --threads $(MINI_PAPER_THREADS) \
	    --out $(MINI_PAPER_DIR)/seed$$seed > $(MINI_PAPER_DIR)/seed$$seed.log 2>&1 \
	    || { echo "[make] seed $$seed failed: see the end of $(MINI_PAPER_DIR)/seed$$seed.log"; exit 1; }; \
	  echo "[make] $$($(now)) mini-paper: seed $$seed done ($(MINI_PAPER_DIR)/seed$$seed/results.json)"; \
	done; \
	$(PYTHON) benchmarks/mini_paper.py --summarize $(foreach s,$(MINI_PAPER_SEEDS),$(MINI_PAPER_DIR)/seed$(s)) \
	  | tee $(MINI_PAPER_DIR)/table.md; \
	echo "[make] $$($(now)) mini-paper: done in $$(( $$(date +%s) - start )) s; figures in $(MINI_PAPER_DIR)/seed*/figures"

mini-paper-curve: install
	@start=$$(date +%s); \
	echo "[make] $$($(now)) mini-paper-curve: seed 0, predictor budgets $(MINI_PAPER_CURVE) and the run's own"; \
	$(PYTHON) benchmarks/mini_paper.py --seed 0 --threads $(MINI_PAPER_THREADS) --out $(MINI_PAPER_DIR)/seed0 \
	  --curve $(MINI_PAPER_CURVE) > $(MINI_PAPER_DIR)/curve.log 2>&1 \
	  || { echo "[make] the curve failed: see the end of $(MINI_PAPER_DIR)/curve.log"; exit 1; }; \
	echo "[make] $$($(now)) mini-paper-curve: done in $$(( $$(date +%s) - start )) s; $(MINI_PAPER_DIR)/seed0/figures/teacher_curve.png"
