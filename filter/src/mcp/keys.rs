//! The keys of the stateless artefacts (client ids, client secrets, codes,
//! refresh tokens, consent tickets) and the sealing format they share.
//!
//! Derivation is HKDF-SHA256 (RFC 5869, `hmac_sha256::HKDF`): the
//! configuration computes `prk = HKDF-Extract(salt = "vigil mcp v1", ikm)`
//! once, where `ikm` is `mcp.secret(_env)` or, by default, the login signing
//! key's material (the HS256 secret, or the private key's PEM text); each
//! purpose then gets its own 32-byte key `HKDF-Expand(prk, info = <label>)`.
//! A key is never used for two purposes, and every sealed artefact carries a
//! distinct prefix that is part of the MAC input, so one kind can never be
//! presented as another.
//!
//! Sealed format: `<prefix><base64url(payload)>.<base64url(HMAC-SHA256(key,
//! <prefix><base64url(payload)>))>`. Payloads are readable by whoever holds
//! the artefact (nothing secret goes into them) but cannot be forged or
//! altered without the key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac_sha256::{Hash, HKDF, HMAC};

/// HKDF salt of every MCP key.
pub const SALT: &[u8] = b"vigil mcp v1";

/// `HKDF-Extract(SALT, ikm)`: the pseudorandom key the configuration keeps.
pub fn extract(ikm: &[u8]) -> [u8; 32] {
    HKDF::extract(SALT, ikm)
}

fn expand(prk: &[u8; 32], info: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    HKDF::expand(&mut out, prk, info.as_bytes());
    out
}

/// One key per purpose.
#[derive(Clone)]
pub struct McpKeys {
    /// MAC of dynamically registered client ids (`vd1.`).
    pub(crate) client_id: [u8; 32],
    /// Derives the secrets of dynamically registered confidential clients.
    pub(crate) client_secret: [u8; 32],
    /// MAC of authorization codes (`vc1.`).
    pub(crate) code: [u8; 32],
    /// MAC of refresh tokens (`vr1.`).
    pub(crate) refresh: [u8; 32],
    /// MAC of consent tickets (`vk1.`).
    pub(crate) consent: [u8; 32],
    /// Keyed hash placing used codes in their shared-data bucket.
    pub(crate) marker: [u8; 32],
}

impl std::fmt::Debug for McpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("McpKeys(<redacted>)")
    }
}

impl McpKeys {
    pub fn expand(prk: &[u8; 32]) -> McpKeys {
        McpKeys {
            client_id: expand(prk, "client_id"),
            client_secret: expand(prk, "client_secret"),
            code: expand(prk, "authorization_code"),
            refresh: expand(prk, "refresh_token"),
            consent: expand(prk, "consent_ticket"),
            marker: expand(prk, "used_code_marker"),
        }
    }
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url of HMAC-SHA256(key, data).
pub(crate) fn tag(key: &[u8; 32], data: &[u8]) -> String {
    b64(&HMAC::mac(data, key))
}

/// Whether `tag_b64` is the MAC of `data` (constant-time comparison).
pub(crate) fn verify_tag(key: &[u8; 32], data: &[u8], tag_b64: &str) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(tag_b64) else {
        return false;
    };
    let Ok(expected) = <[u8; 32]>::try_from(bytes.as_slice()) else {
        return false;
    };
    HMAC::verify(data, key, &expected)
}

/// `<prefix><b64(payload)>.<tag>`.
pub(crate) fn seal(key: &[u8; 32], prefix: &str, payload: &[u8]) -> String {
    let body = format!("{prefix}{}", b64(payload));
    let mac = tag(key, body.as_bytes());
    format!("{body}.{mac}")
}

/// The payload of a sealed value with this prefix and key; `None` when it
/// is longer than `max_len`, malformed, or its MAC does not verify.
pub(crate) fn open(key: &[u8; 32], prefix: &str, text: &str, max_len: usize) -> Option<Vec<u8>> {
    if text.len() > max_len || !text.starts_with(prefix) {
        return None;
    }
    let (body, mac) = text.rsplit_once('.')?;
    if !verify_tag(key, body.as_bytes(), mac) {
        return None;
    }
    URL_SAFE_NO_PAD.decode(body.get(prefix.len()..)?).ok()
}

/// base64url(SHA-256(text)): how codes and families name a client or a
/// redirect URI without carrying it.
pub(crate) fn digest(text: &str) -> String {
    b64(&Hash::hash(text.as_bytes()))
}

/// The first 64 bits of HMAC-SHA256(key, data).
pub(crate) fn keyed_u64(key: &[u8; 32], data: &[u8]) -> u64 {
    let mac = HMAC::mac(data, key);
    let mut first = [0u8; 8];
    first.copy_from_slice(&mac[..8]);
    u64::from_le_bytes(first)
}

/// `n` random bytes from 64-bit words; `None` when the source failed
/// (nothing guessable replaces a secret).
pub(crate) fn random_bytes(n: usize, random: &mut dyn FnMut() -> Option<u64>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        out.extend_from_slice(&random()?.to_le_bytes());
    }
    out.truncate(n);
    Some(out)
}

/// 128 random bits as 22 base64url characters.
pub(crate) fn random_nonce(random: &mut dyn FnMut() -> Option<u64>) -> Option<String> {
    random_bytes(16, random).map(|b| b64(&b))
}

/// Compares without an early exit.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys() -> McpKeys {
        McpKeys::expand(&extract(b"an operator secret of 32 bytes!!"))
    }

    #[test]
    fn hkdf_matches_rfc5869_test_case_1() {
        // RFC 5869 A.1 (SHA-256, 22-byte IKM, 13-byte salt, 10-byte info).
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let prk = HKDF::extract(&salt, ikm);
        assert_eq!(
            b64(&prk),
            b64(&[
                0x07, 0x77, 0x09, 0x36, 0x2c, 0x2e, 0x32, 0xdf, 0x0d, 0xdc, 0x3f, 0x0d, 0xc4, 0x7b,
                0xba, 0x63, 0x90, 0xb6, 0xc7, 0x3b, 0xb5, 0x0f, 0x9c, 0x31, 0x22, 0xec, 0x84, 0x4a,
                0xd7, 0xc2, 0xb3, 0xe5
            ])
        );
        let mut okm = [0u8; 42];
        HKDF::expand(&mut okm, prk, &info);
        assert_eq!(okm[..4], [0x3c, 0xb2, 0x5f, 0x25]);
        assert_eq!(okm[38..], [0x87, 0x18, 0x58, 0x65]);
    }

    #[test]
    fn every_purpose_has_its_own_key() {
        let k = keys();
        let all = [k.client_id, k.client_secret, k.code, k.refresh, k.consent, k.marker];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(format!("{k:?}"), "McpKeys(<redacted>)");
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_prefix() {
        let k = keys();
        let sealed = seal(&k.code, "vc1.", b"{\"a\":1}");
        assert_eq!(open(&k.code, "vc1.", &sealed, 4096).unwrap(), b"{\"a\":1}");
        assert_eq!(open(&k.refresh, "vc1.", &sealed, 4096), None);
        let relabelled = sealed.replacen("vc1.", "vk1.", 1);
        assert_eq!(open(&k.code, "vk1.", &relabelled, 4096), None);
        assert_eq!(open(&k.code, "vc1.", &sealed, sealed.len() - 1), None);
        // Any altered byte breaks the MAC.
        let (body, mac) = sealed.rsplit_once('.').unwrap();
        let forged = format!("{}.{mac}", body.replace('e', "f"));
        assert_eq!(open(&k.code, "vc1.", &forged, 4096), None);
        for junk in ["", "vc1.", "vc1..", "vc1.x.y", "vc1.!!.!!"] {
            assert_eq!(open(&k.code, "vc1.", junk, 4096), None, "{junk}");
        }
    }

    #[test]
    fn randomness_failures_give_nothing() {
        assert_eq!(random_nonce(&mut || None), None);
        let mut n = 0;
        let mut flaky = || {
            n += 1;
            (n < 2).then_some(1)
        };
        assert_eq!(random_nonce(&mut flaky), None);
        assert_eq!(random_nonce(&mut || Some(7)).unwrap().len(), 22);
    }
}
