//! PKCE (RFC 7636) with the S256 method, and the random strings of a login.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// `n` random 64-bit words as unpadded base64url; `None` when the random
/// source failed (the caller must not fall back to anything guessable).
pub fn random_b64(words: usize, random: &mut dyn FnMut() -> Option<u64>) -> Option<String> {
    let mut bytes = Vec::with_capacity(words * 8);
    for _ in 0..words {
        bytes.extend_from_slice(&random()?.to_le_bytes());
    }
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// A code verifier: 256 random bits, 43 base64url characters (RFC 7636 §4.1).
pub fn new_verifier(random: &mut dyn FnMut() -> Option<u64>) -> Option<String> {
    random_b64(4, random)
}

/// `BASE64URL(SHA256(verifier))` (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha256::Hash::hash(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_43_chars_and_fresh() {
        let mut n = 0u64;
        let mut random = || {
            n += 1;
            Some(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        };
        let a = new_verifier(&mut random).unwrap();
        let b = new_verifier(&mut random).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn a_failing_random_source_gives_nothing() {
        let mut calls = 0;
        let mut flaky = || {
            calls += 1;
            (calls < 3).then_some(7)
        };
        assert_eq!(new_verifier(&mut flaky), None);
        assert_eq!(random_b64(2, &mut || None), None);
    }
}
