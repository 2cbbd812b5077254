# make demo: installs what it needs, builds dist/vigil.wasm and host-sim, then runs tests/e2e/demo.sh: the test IdP
# (with a user picker), an upstream app and `host-sim serve` on 127.0.0.1, until Ctrl-C.
# DEMO_PORT (8080), DEMO_IDP_PORT (8081), DEMO_APP_PORT (8082), DEMO_INTERVAL (10s) change the defaults.

.PHONY: demo

demo: idp-deps wasm host-sim-bin
	@HOST_SIM_BIN=$(HOST_SIM_BIN) NODE=$(NODE) bash tests/e2e/demo.sh
