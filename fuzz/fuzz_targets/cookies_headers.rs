//! cargo-fuzz target `cookies_headers`: the body and its invariants are
//! `fuzz/checks/cookies_headers.rs` (also replayed by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vigil_fuzz_checks::cookies_headers::check(data);
});
