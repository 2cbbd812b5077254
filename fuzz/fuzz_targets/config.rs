//! cargo-fuzz target `config`: the body and its invariants are
//! `fuzz/checks/config.rs` (also replayed by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vigil_fuzz_checks::config::check(data);
});
