# make demo: installs what it needs, builds dist/vigil.wasm and host-sim, then runs tests/e2e/demo.sh: the test IdP
# (with a user picker), an upstream app and `host-sim serve` (or, with DEMO_PROXY=envoy, real Envoy) on 127.0.0.1,
# until Ctrl-C.
# DEMO_PORT (8080), DEMO_IDP_PORT (8081), DEMO_APP_PORT (8082), DEMO_INTERVAL (10s) change the defaults.

.PHONY: demo

# DEMO_PROXY=envoy runs it in the real Envoy binary (make envoy) instead of host-sim serve.
DEMO_PROXY ?= host-sim
DEMO_PROXY_DEPS := $(if $(filter envoy,$(DEMO_PROXY)),envoy $(E2E_INSTALLED),host-sim-bin)

demo: idp-deps wasm $(DEMO_PROXY_DEPS)
	@DEMO_PROXY=$(DEMO_PROXY) HOST_SIM_BIN=$(HOST_SIM_BIN) ENVOY_BIN=$(ENVOY_BIN) NODE=$(NODE) bash tests/e2e/demo.sh
