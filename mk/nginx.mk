# Real nginx with Kong's ngx_wasm_module (issue 11), built once from source into .tools/nginx-wasm by
# tools/build-nginx.sh (about a minute on 2 cores): nginx 1.27.4 + ngx_wasm_module prerelease-0.6.0 from
# ../shared/vendor/ (or NGINX_SRC=... NGX_WASM_SRC=..., tarballs or folders, e.g. upstream tags), against wasmtime's
# C API from PyPI's wasmtime wheel.
#   make nginx              builds it (skipped when up to date); prints the binary's path
#   NGINX_BIN=/path/nginx   uses your own nginx + ngx_wasm_module build instead (nothing is built)

TOOLS ?= .tools
NGINX_DEFAULT_BIN := $(abspath $(TOOLS))/nginx-wasm/sbin/nginx
NGINX_BIN ?= $(NGINX_DEFAULT_BIN)

.PHONY: nginx

nginx:
	@if [ "$(NGINX_BIN)" != "$(NGINX_DEFAULT_BIN)" ]; then \
	  [ -x "$(NGINX_BIN)" ] || { echo "error: NGINX_BIN=$(NGINX_BIN) is not an executable"; exit 1; }; \
	else PYTHON=$(PYTHON) CARGO=$(CARGO) OUT=$(TOOLS)/nginx-wasm bash tools/build-nginx.sh; fi
