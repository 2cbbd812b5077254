# End-to-end tests: dist/vigil.wasm in each proxy of E2E_PROXIES (host-sim serve, the real Envoy binary and real nginx
# + ngx_wasm_module, 4 workers, and nginx once more with 2
# each) against the test IdP, the echo upstream, and headless Chromium. Figures go to dist/e2e/figures.jsonl,
# screenshots and logs to dist/e2e/.
#   make e2e          installs what it needs, builds, runs tests/e2e/scenarios/*.test.mjs once per proxy kind
#   make e2e-deps     just the installs (npm ci in tests/idp and tests/e2e, Debian's chromium, Envoy)
# E2E_FILES=tests/e2e/scenarios/03-rotation-load.test.mjs make e2e   runs a subset; E2E_PROXIES=envoy one kind;
# a kind may name its worker count (nginx:2).

E2E_DIR := tests/e2e
E2E_INSTALLED := $(E2E_DIR)/node_modules/.package-lock.json
E2E_FILES ?= $(sort $(wildcard $(E2E_DIR)/scenarios/*.test.mjs))
E2E_PROXIES ?= host-sim envoy nginx nginx:2
# The dev-profile binary: `cargo test` builds it anyway, and the dev profile optimises host-sim, wasmtime and the
# tokio/hyper stack (Cargo.toml), so a release build with LTO (about 10 minutes on 2 cores) is not needed.
HOST_SIM_BIN ?= $${CARGO_TARGET_DIR:-target}/debug/host-sim

.PHONY: e2e e2e-deps chromium host-sim-bin host-sim-test-bin

EXTRA_TESTS += e2e

$(E2E_INSTALLED): $(E2E_DIR)/package-lock.json $(E2E_DIR)/package.json
	cd $(E2E_DIR) && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

# Debian's chromium (playwright-core drives it; it never downloads a browser of its own).
chromium:
	@if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then \
	  command -v apt-get >/dev/null || { echo "error: chromium is needed (Debian: apt-get install chromium)"; exit 1; }; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; \
	fi

# The e2e suite takes the host-sim binary `cargo test` builds (same features, so `make test` builds it once);
# `make demo` builds just host-sim.
host-sim-bin:
	$(CARGO) build -p host-sim

host-sim-test-bin:
	$(CARGO) test --no-run -q

e2e-deps: idp-deps $(E2E_INSTALLED) chromium envoy nginx

e2e: e2e-deps wasm probes host-sim-test-bin
	@mkdir -p $(DIST)/e2e && rm -f $(DIST)/e2e/figures.jsonl
	@for proxy in $(E2E_PROXIES); do \
	  echo "== e2e on $$proxy"; \
	  E2E_PROXY=$$proxy HOST_SIM_BIN=$(HOST_SIM_BIN) ENVOY_BIN=$(ENVOY_BIN) NGINX_BIN=$(NGINX_BIN) E2E_REQUIRE_BROWSER=1 \
	    $(NODE) --test --test-concurrency=1 --test-timeout=180000 --test-reporter=spec $(E2E_FILES) || exit 1; \
	done
	@echo "e2e figures (dist/e2e/figures.jsonl):"; cat $(DIST)/e2e/figures.jsonl 2>/dev/null || true
