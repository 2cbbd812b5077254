# vigil: build, test and run everything from a fresh clone.
#   make test    everything CI runs: make check, then the suites of mk/*.mk (IdP self-test, Istio schemas,
#                end-to-end in host-sim, real Envoy and real nginx)
#   make check   the Rust tiers only (build, clippy, unit, host-sim, black-box): no Node, Chromium or sudo
#   make wasm    dist/vigil.wasm (+ .sha256)
#   make demo    a local IdP + upstream + host-sim serve, to try it in a browser

SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
DIST := dist
PROBES := $(notdir $(wildcard host-sim/probes/*))

.PHONY: all setup wasm probes check test unit lint bench clean

all: wasm

# Install what the build needs (idempotent; CI runs on a fresh machine image).
setup:
	@if command -v rustup >/dev/null; then \
	  rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET); \
	fi
	@if ! command -v rustup >/dev/null && ! rustc --print target-list | grep -qx $(WASM_TARGET); then \
	  echo "error: the $(WASM_TARGET) target is needed (install rustup)"; exit 1; fi

wasm: setup
	$(CARGO) build --release --target $(WASM_TARGET) -p vigil-filter
	@mkdir -p $(DIST)
	@cp $${CARGO_TARGET_DIR:-target}/$(WASM_TARGET)/release/vigil.wasm $(DIST)/vigil.wasm
	@cd $(DIST) && sha256sum vigil.wasm > vigil.wasm.sha256
	@echo "dist/vigil.wasm: $$(stat -c %s $(DIST)/vigil.wasm) bytes, sha256 $$(cut -c1-16 $(DIST)/vigil.wasm.sha256)..."

# Small filters that exercise host-sim itself, built from source (never checked in).
probes: setup
	@if [ -n "$(PROBES)" ]; then $(CARGO) build --release --target $(WASM_TARGET) $(addprefix -p ,$(PROBES)); fi

lint:
	$(CARGO) clippy -p vigil-filter --all-targets -- -D warnings
	$(CARGO) clippy -p vigil-filter --target $(WASM_TARGET) --release -- -D warnings
	$(CARGO) clippy -p host-sim -p vigil-tests --all-targets -- -D warnings

unit:
	$(CARGO) test -p vigil-filter

# mk/*.mk files append their suites (the IdP self-test, end-to-end) to EXTRA_TESTS.
EXTRA_TESTS :=

check: wasm probes lint
	$(CARGO) test

test: check
	@for t in $(EXTRA_TESTS); do $(MAKE) --no-print-directory $$t || exit 1; done

# Per-request cost of dist/vigil.wasm in host-sim (wall clock; BENCH_REQUESTS=n to change the sample).
bench: wasm probes
	$(CARGO) run -q -p vigil-tests --bin vigil-bench

clean:
	$(CARGO) clean
	rm -rf $(DIST)

# Further targets (packaging, test IdP, e2e, demo) live in mk/*.mk.
-include mk/*.mk
