//! cargo-fuzz target `idp_answers`: the body and its invariants are
//! `fuzz/checks/idp_answers.rs` (also replayed by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vigil_fuzz_checks::idp_answers::check(data);
});
