//! cargo-fuzz target `records`: the body and its invariants are
//! `fuzz/checks/records.rs` (also replayed by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vigil_fuzz_checks::records::check(data);
});
