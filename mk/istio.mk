# The Istio example read the way Kubernetes reads it (YAML 1.1) and validated against Istio's CRD schemas
# (npm @kubernetes-models/istio, pinned by tests/istio/package-lock.json; see tests/istio/README.md).
#   make istio-deps   npm ci in tests/istio when node_modules is missing or older than the lockfile
#   make istio-test   node --test tests/istio/examples.test.mjs

ISTIO_TEST_DIR := tests/istio
# npm ci writes this file last; its age stands for the age of node_modules.
ISTIO_TEST_INSTALLED := $(ISTIO_TEST_DIR)/node_modules/.package-lock.json
NODE ?= node
NPM ?= npm

.PHONY: istio-deps istio-test

EXTRA_TESTS += istio-test

istio-deps: $(ISTIO_TEST_INSTALLED)

$(ISTIO_TEST_INSTALLED): $(ISTIO_TEST_DIR)/package-lock.json $(ISTIO_TEST_DIR)/package.json
	@command -v $(NODE) >/dev/null && command -v $(NPM) >/dev/null || { \
	  echo "error: node >= 20.18 and npm are needed (Debian: apt-get install nodejs npm)"; exit 1; }
	@$(NODE) -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 18) ? 0 : 1)' || { \
	  echo "error: node >= 20.18 is needed, found $$($(NODE) --version)"; exit 1; }
	cd $(ISTIO_TEST_DIR) && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

istio-test: istio-deps
	cd $(ISTIO_TEST_DIR) && $(NODE) --test examples.test.mjs
