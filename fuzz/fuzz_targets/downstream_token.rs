//! cargo-fuzz target `downstream_token`: the body and its invariants are
//! `fuzz/checks/downstream_token.rs` (also replayed by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vigil_fuzz_checks::downstream_token::check(data);
});
