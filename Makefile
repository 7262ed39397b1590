# subpt-bench: `make test` and `make demo` provision everything they need (Debian, as root or
# with sudo), idempotently: system packages, a project-local Python venv with the pinned torch
# that tch links against, and the cargo build.
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
STAMP_SYS := $(CURDIR)/target/.system-ready
STAMP_VENV := $(VENV)/.ready
STAMP_TORCH := $(VENV)/.torch-ready
# Evaluated per recipe (not with $(wildcard), whose directory cache misses a venv created by this run).
export LIBTORCH = $(shell ls -d $(VENV)/lib/python3*/site-packages/torch 2>/dev/null | head -1)
export SUBPT_PYTHON := $(PY)
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
BIN_DEBUG := $(CARGO_TARGET_DIR)/debug/subpt-bench
BIN := $(CARGO_TARGET_DIR)/release/subpt-bench

.PHONY: all build test demo demo-protocols lint system venv rust-test oracle-test

all: build

system: $(STAMP_SYS)
$(STAMP_SYS): scripts/setup-system.sh
	bash scripts/setup-system.sh
	@mkdir -p $(dir $@) && touch $@

# The venv: torch alone for building and the demo, the test peers on top for the tests.
venv: $(STAMP_VENV)
$(STAMP_TORCH): scripts/requirements-torch.txt scripts/setup-venv.sh | $(STAMP_SYS)
	PYTHON=$(PYTHON) bash scripts/setup-venv.sh $(VENV) scripts/requirements-torch.txt
	@touch $@
$(STAMP_VENV): scripts/requirements-oracle.txt $(STAMP_TORCH)
	PYTHON=$(PYTHON) bash scripts/setup-venv.sh $(VENV) scripts/requirements-oracle.txt
	@touch $@

build: $(STAMP_TORCH)
	cargo build --release -p subpt-bench

test: $(STAMP_VENV)
	cargo build -p subpt-bench
	$(MAKE) rust-test oracle-test

rust-test: $(STAMP_VENV)
	cargo test --workspace

oracle-test: $(STAMP_VENV)
	SUBPT_BENCH_BIN=$(BIN_DEBUG) $(PY) -m pytest -q tests/oracle

lint: $(STAMP_VENV)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# The paper's claims on the shipped CLIP (configs/claims.yaml), within 15 minutes of a clean
# clone on a 2-core machine.
demo: build
	bash scripts/demo.sh $(BIN) $(CURDIR)/results/demo claims

# The paper's few-shot and domain-generalisation protocols on the same CLIP (configs/demo.yaml;
# another 4-7 minutes on 2 cores).
demo-protocols: build
	bash scripts/demo.sh $(BIN) $(CURDIR)/results/demo demo
