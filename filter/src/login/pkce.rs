//! PKCE (RFC 7636) with the S256 method, and the random strings of a login.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// `n` random 64-bit words as unpadded base64url.
pub fn random_b64(words: usize, random: &mut dyn FnMut() -> u64) -> String {
    let bytes: Vec<u8> = (0..words).flat_map(|_| random().to_le_bytes()).collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A code verifier: 256 random bits, 43 base64url characters (RFC 7636 §4.1).
pub fn new_verifier(random: &mut dyn FnMut() -> u64) -> String {
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
            n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        };
        let a = new_verifier(&mut random);
        let b = new_verifier(&mut random);
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
