# Packaging (issue 6):
#   make oci      dist/oci/: OCI image layout with plugin.wasm, no Docker needed (push: packaging/README.md),
#                 and dist/vigil.schema.json beside it
#   make schema   dist/vigil.schema.json: JSON Schema of the plugin configuration, generated from its types

PYTHON ?= python3
# The workspace version tags the image.
VIGIL_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

.PHONY: oci schema

# `make` (all) ships the schema in dist/ next to the module.
all: schema

oci: wasm schema
	@$(PYTHON) packaging/oci_image.py --wasm $(DIST)/vigil.wasm --out $(DIST)/oci --tag $(VIGIL_VERSION)

schema:
	@mkdir -p $(DIST)
	$(CARGO) run -q -p vigil-filter --features schema --bin vigil-schema > $(DIST)/vigil.schema.json.tmp \
	  || { rm -f $(DIST)/vigil.schema.json.tmp; exit 1; }
	@mv $(DIST)/vigil.schema.json.tmp $(DIST)/vigil.schema.json
	@echo "$(DIST)/vigil.schema.json: $$(stat -c %s $(DIST)/vigil.schema.json) bytes"
