# The test IdP (npm oidc-provider) and the node services used by end-to-end tests and `make demo`.
#   make idp-deps   npm ci in tests/idp when node_modules is missing or older than the lockfile
#   make idp-test   the IdP's own self-test (node:test)
# Other makefiles start the services with: node $(IDP_PROVIDER) ... / node $(ECHO_UPSTREAM) (see tests/idp/README.md).

IDP_DIR := tests/idp
IDP_PROVIDER := $(IDP_DIR)/provider.mjs
ECHO_UPSTREAM := $(IDP_DIR)/echo-upstream.mjs
# npm ci writes this file last; its age stands for the age of node_modules.
IDP_INSTALLED := $(IDP_DIR)/node_modules/.package-lock.json
NODE ?= node
NPM ?= npm

.PHONY: idp-deps idp-test

EXTRA_TESTS += idp-test

idp-deps: $(IDP_INSTALLED)

$(IDP_INSTALLED): $(IDP_DIR)/package-lock.json $(IDP_DIR)/package.json
	@command -v $(NODE) >/dev/null && command -v $(NPM) >/dev/null || { \
	  echo "error: node >= 20.18 and npm are needed (Debian: apt-get install nodejs npm)"; exit 1; }
	@$(NODE) -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 18) ? 0 : 1)' || { \
	  echo "error: node >= 20.18 is needed, found $$($(NODE) --version)"; exit 1; }
	cd $(IDP_DIR) && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

idp-test: idp-deps
	cd $(IDP_DIR) && $(NODE) --test selftest.test.mjs
