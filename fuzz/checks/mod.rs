//! The fuzz targets' bodies, shared by the cargo-fuzz binaries
//! (`fuzz/fuzz_targets/*.rs`, through the `vigil_fuzz_checks` library) and
//! by the corpus replay test `filter/tests/fuzz_corpus.rs` (through
//! `#[path]`), so `cargo test` on stable runs every corpus and regression
//! input through exactly the code the fuzzers ran.
//!
//! Each target is `<module>::check(&[u8])`: it never returns an error, it
//! panics when an invariant breaks. `<module>::seeds()` are the hand-made
//! inputs the corpora started from.

// Test code: a broken invariant is reported by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

pub mod config;
pub mod cookies_headers;
pub mod downstream_token;
pub mod fixtures;
pub mod idp_answers;
pub mod input;
pub mod records;

/// A target's body: panics when an invariant breaks.
pub type Check = fn(&[u8]);

/// Every target: name (the corpus folder) and body.
pub const TARGETS: [(&str, Check); 5] = [
    ("downstream_token", downstream_token::check),
    ("cookies_headers", cookies_headers::check),
    ("config", config::check),
    ("idp_answers", idp_answers::check),
    ("records", records::check),
];

/// The seeds of `target`: `(file name, input)`.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "downstream_token" => downstream_token::seeds(),
        "cookies_headers" => cookies_headers::seeds(),
        "config" => config::seeds(),
        "idp_answers" => idp_answers::seeds(),
        "records" => records::seeds(),
        _ => Vec::new(),
    }
}
