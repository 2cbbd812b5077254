# Fuzzing (issue 14): cargo-fuzz targets in fuzz/ (its own workspace: nightly + libFuzzer). The bodies
# live in fuzz/checks/; filter/tests/fuzz_corpus.rs replays fuzz/corpus/* and fuzz/regressions/* through
# them on stable, as part of plain `cargo test` (so `make test` covers the corpora; it never fuzzes).
#   make fuzz FUZZ_TARGET=records FUZZ_SECONDS=600   run one target (niced) from its corpus, then merge what
#                                                    it found into fuzz/corpus/<target>, minimised to one input
#                                                    per new coverage edge (-use_counters=0 keeps it small)
#   make fuzz-all FUZZ_SECONDS=600                   every target, one after the other
#   make fuzz-seeds                                  rewrite the hand-made seeds (fuzz/corpus/*/seed-*)
#   make fuzz-replay                                 only the stable replay test
# Targets: downstream_token cookies_headers config idp_answers records. Installs the nightly toolchain and
# cargo-fuzz (into rustup's and cargo's homes) when missing. A crash is written to fuzz/artifacts/<target>/;
# minimise it with `cargo +nightly fuzz tmin --fuzz-dir fuzz <target> <file>` and keep it in
# fuzz/regressions/<target>/ (name it open-<what> until the filter is fixed). While a bug is open,
# FUZZ_ARGS='-fork=1 -ignore_crashes=1' keeps fuzzing past it.

FUZZ_TARGETS := downstream_token cookies_headers config idp_answers records
FUZZ_TARGET ?= records
FUZZ_SECONDS ?= 600
FUZZ_TOOLCHAIN ?= nightly
# address (cargo-fuzz's default) also checks the unsafe code of the crypto dependencies; none is ~2x faster.
FUZZ_SANITIZER ?= address
FUZZ_NICE ?= nice -n 19
FUZZ_MAX_LEN ?= 16384
# Drop corpus inputs larger than this before minimising (config's inputs carry PEM keys: 1000 keeps its corpus
# near 200 KB and 95 % of its edges); empty keeps everything.
FUZZ_CORPUS_MAX_BYTES ?= $(if $(filter config,$(FUZZ_TARGET)),1000)
# More libFuzzer flags, e.g. FUZZ_ARGS='-jobs=2 -workers=2'.
FUZZ_ARGS ?=
FUZZ_CARGO := $(FUZZ_NICE) cargo +$(FUZZ_TOOLCHAIN) fuzz
# -a: overflow checks and debug assertions, as in `cargo test` (a wrapping overflow is a bug too).
FUZZ_BUILD_FLAGS = --fuzz-dir fuzz -a --sanitizer $(FUZZ_SANITIZER)

.PHONY: fuzz fuzz-all fuzz-tools fuzz-seeds fuzz-replay

fuzz-tools:
	@command -v rustup >/dev/null || { echo "error: fuzzing needs rustup (for the nightly toolchain)"; exit 1; }
	@rustup toolchain list | grep -q '^$(FUZZ_TOOLCHAIN)' || rustup toolchain install $(FUZZ_TOOLCHAIN) --profile minimal
	@cargo +$(FUZZ_TOOLCHAIN) fuzz --version >/dev/null 2>&1 || cargo +$(FUZZ_TOOLCHAIN) install cargo-fuzz --locked

fuzz: fuzz-tools
	@case " $(FUZZ_TARGETS) " in *" $(FUZZ_TARGET) "*) ;; *) \
	  echo "error: FUZZ_TARGET must be one of: $(FUZZ_TARGETS)"; exit 1;; esac
	@mkdir -p fuzz/corpus-work/$(FUZZ_TARGET) fuzz/corpus/$(FUZZ_TARGET)
	@status=0; \
	$(FUZZ_CARGO) run $(FUZZ_BUILD_FLAGS) $(FUZZ_TARGET) fuzz/corpus-work/$(FUZZ_TARGET) fuzz/corpus/$(FUZZ_TARGET) -- \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -timeout=10 -print_final_stats=1 \
	  $(if $(wildcard fuzz/dicts/$(FUZZ_TARGET).dict),-dict=fuzz/dicts/$(FUZZ_TARGET).dict) $(FUZZ_ARGS) || status=$$?; \
	cp -n fuzz/corpus-work/$(FUZZ_TARGET)/* fuzz/corpus/$(FUZZ_TARGET)/ 2>/dev/null; \
	$(if $(FUZZ_CORPUS_MAX_BYTES),find fuzz/corpus/$(FUZZ_TARGET) -type f -size +$(FUZZ_CORPUS_MAX_BYTES)c -delete;) \
	$(FUZZ_CARGO) cmin $(FUZZ_BUILD_FLAGS) $(FUZZ_TARGET) fuzz/corpus/$(FUZZ_TARGET) -- -max_len=$(FUZZ_MAX_LEN) -use_counters=0 \
	  || exit $$?; \
	echo "fuzz/corpus/$(FUZZ_TARGET): $$(ls fuzz/corpus/$(FUZZ_TARGET) | wc -l) files, $$(cat fuzz/corpus/$(FUZZ_TARGET)/* | wc -c) bytes"; \
	if [ $$status -ne 0 ]; then echo "crashing inputs: fuzz/artifacts/$(FUZZ_TARGET)/"; fi; \
	exit $$status

fuzz-all: fuzz-tools
	@for t in $(FUZZ_TARGETS); do $(MAKE) --no-print-directory fuzz FUZZ_TARGET=$$t || exit 1; done

fuzz-seeds:
	VIGIL_FUZZ_WRITE_SEEDS=1 $(CARGO) test -p vigil-filter --test fuzz_corpus write_seeds -- --ignored

fuzz-replay:
	$(CARGO) test -p vigil-filter --test fuzz_corpus
