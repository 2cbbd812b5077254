//! Authorization codes: self-contained and single-use.
//!
//! A code is sealed with the `authorization_code` key (`keys.rs`):
//! `vc1.<base64url(JSON)>.<base64url(HMAC)>`, the JSON binding everything
//! the token request is checked against:
//! `{"c":SHA-256(client_id),"r":SHA-256(redirect_uri),"p":code_challenge,
//! "a":resource,"s":scope,"i":sid,"u":sub,"f":refresh_allowed,"t":issued_ns,
//! "e":expires_ns,"n":nonce}` (digests base64url; the nonce is 128 random bits). Any worker
//! can check a code; the client can read it (nothing in it is secret: the
//! PKCE verifier is what makes it useless to anyone else) but not alter it.
//!
//! Single use: redeeming records the code in shared data before anything is
//! issued. `CODE_BUCKETS` keys `P mu:<b>`, each at most `CODES_PER_BUCKET`
//! entries `[h, expires_ns, family]`, `h = HMAC(marker key, nonce)` (64
//! bits; its value modulo `CODE_BUCKETS` picks the bucket, so a client
//! cannot aim its codes at one bucket). Entries leave once the code has
//! expired (it can no longer be redeemed anyway). A bucket full of live
//! entries refuses the redemption (`temporarily_unavailable`): replay
//! protection is never traded for capacity. Capacity: 8,192 redemptions per
//! `code_lifetime` (60 s by default). The family an entry names is revoked
//! when its code is presented again (RFC 6749 §4.1.2: a replayed code
//! revokes what it issued).

use serde::{Deserialize, Serialize};

use super::keys::{keyed_u64, open, seal, McpKeys};
use crate::session::update::cas_update;
use crate::session::{Change, SessionError};
use crate::store::SharedStore;

pub const CODE_PREFIX: &str = "vc1.";
/// Longest code accepted.
pub const MAX_CODE_LEN: usize = 4096;
pub const CODE_BUCKETS: u64 = 128;
pub const CODES_PER_BUCKET: usize = 64;
const BUCKET_VERSION: u32 = 1;

/// What a code binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CodeClaims {
    pub c: String,
    pub r: String,
    pub p: String,
    pub a: String,
    pub s: String,
    pub i: String,
    pub u: String,
    pub f: bool,
    /// Issue time: a revocation of `u` after it voids the code.
    pub t: u64,
    pub e: u64,
    pub n: String,
}

pub(crate) fn seal_code(keys: &McpKeys, claims: &CodeClaims) -> Option<String> {
    let json = serde_json::to_vec(claims).ok()?;
    Some(seal(&keys.code, CODE_PREFIX, &json))
}

/// The claims of a genuine, unexpired code.
pub(crate) fn open_code(keys: &McpKeys, code: &str, now_ns: u64) -> Result<CodeClaims, &'static str> {
    let json = open(&keys.code, CODE_PREFIX, code, MAX_CODE_LEN).ok_or("the code was not issued by this server")?;
    let claims: CodeClaims = serde_json::from_slice(&json).map_err(|_| "the code was not issued by this server")?;
    if now_ns >= claims.e {
        return Err("the code has expired");
    }
    Ok(claims)
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Bucket {
    v: u32,
    e: Vec<(u64, u64, String)>,
}

/// Shared-data key of used-code bucket `index`.
pub fn marker_key(prefix: &str, index: u64) -> String {
    format!("{prefix}mu:{index}")
}

/// The outcome of marking a code used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Redeemed {
    /// First use: the caller may issue.
    First,
    /// Used before; `family` is what the first use issued.
    Replayed { family: String },
    /// The bucket holds `CODES_PER_BUCKET` live codes: refuse for now.
    Full,
}

/// Marks the code with nonce `nonce` (valid until `expires_ns`) used,
/// remembering the token family its redemption issues.
pub(crate) fn redeem(
    store: &dyn SharedStore,
    prefix: &str,
    keys: &McpKeys,
    nonce: &str,
    expires_ns: u64,
    family: &str,
    now_ns: u64,
) -> Result<Redeemed, SessionError> {
    let hash = keyed_u64(&keys.marker, nonce.as_bytes());
    cas_update(
        store,
        &marker_key(prefix, hash % CODE_BUCKETS),
        |bytes| serde_json::from_slice::<Bucket>(bytes).ok().filter(|b| b.v == BUCKET_VERSION),
        |b| serde_json::to_vec(b).ok(),
        |current| {
            let mut bucket = current.unwrap_or(Bucket { v: BUCKET_VERSION, e: Vec::new() });
            if let Some((_, _, fam)) = bucket.e.iter().find(|(h, exp, _)| *h == hash && *exp > now_ns) {
                return Change::Keep(Redeemed::Replayed { family: fam.clone() });
            }
            bucket.e.retain(|(_, exp, _)| *exp > now_ns);
            if bucket.e.len() >= CODES_PER_BUCKET {
                return Change::Keep(Redeemed::Full);
            }
            bucket.e.push((hash, expires_ns, family.to_string()));
            Change::Write(bucket, Redeemed::First)
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::mcp::testing::test_keys;
    use crate::store::MemoryStore;

    fn claims(e: u64) -> CodeClaims {
        CodeClaims {
            c: "client".into(),
            r: "redirect".into(),
            p: "challenge".into(),
            a: "https://mcp.example.com/mcp".into(),
            s: "mcp".into(),
            i: "1.AAAAAAAAAAAAAAAAAAAAAA".into(),
            u: "alice".into(),
            f: true,
            t: 0,
            e,
            n: "nonce".into(),
        }
    }

    #[test]
    fn codes_open_until_expiry_and_never_when_forged() {
        let keys = test_keys();
        let code = seal_code(&keys, &claims(100)).unwrap();
        assert!(code.starts_with(CODE_PREFIX));
        assert_eq!(open_code(&keys, &code, 99), Ok(claims(100)));
        assert_eq!(open_code(&keys, &code, 100), Err("the code has expired"));
        let other = crate::mcp::keys::McpKeys::expand(&crate::mcp::keys::extract(b"other"));
        assert!(open_code(&other, &code, 0).is_err());
        let refresh_key_seal = crate::mcp::keys::seal(&keys.refresh, CODE_PREFIX, &serde_json::to_vec(&claims(100)).unwrap());
        assert!(open_code(&keys, &refresh_key_seal, 0).is_err());
        assert!(open_code(&keys, "vc1.e30.AAAA", 0).is_err());
    }

    #[test]
    fn a_code_redeems_once_and_a_replay_names_its_family() {
        let keys = test_keys();
        let store = MemoryStore::new();
        assert_eq!(redeem(&store, "p:", &keys, "n1", 100, "3.fam", 0), Ok(Redeemed::First));
        assert_eq!(
            redeem(&store, "p:", &keys, "n1", 100, "4.other", 50),
            Ok(Redeemed::Replayed { family: "3.fam".into() })
        );
        assert_eq!(redeem(&store, "p:", &keys, "n2", 100, "5.x", 50), Ok(Redeemed::First));
        // After expiry the entry may go (the code itself is refused by then).
        assert_eq!(redeem(&store, "p:", &keys, "n1", 200, "6.y", 100), Ok(Redeemed::First));
    }

    #[test]
    fn a_full_bucket_refuses_instead_of_forgetting() {
        let keys = test_keys();
        let store = MemoryStore::new();
        // Find nonces that land in one bucket.
        let target = keyed_u64(&keys.marker, b"seed") % CODE_BUCKETS;
        let same: Vec<String> = (0..)
            .map(|i| format!("n{i}"))
            .filter(|n| keyed_u64(&keys.marker, n.as_bytes()) % CODE_BUCKETS == target)
            .take(CODES_PER_BUCKET + 1)
            .collect();
        for n in &same[..CODES_PER_BUCKET] {
            assert_eq!(redeem(&store, "p:", &keys, n, 1_000, "f", 0), Ok(Redeemed::First));
        }
        assert_eq!(redeem(&store, "p:", &keys, &same[CODES_PER_BUCKET], 1_000, "f", 0), Ok(Redeemed::Full));
        // Every earlier code is still remembered.
        assert!(matches!(redeem(&store, "p:", &keys, &same[0], 1_000, "f", 10), Ok(Redeemed::Replayed { .. })));
        // Once they expire there is room again.
        assert_eq!(redeem(&store, "p:", &keys, &same[CODES_PER_BUCKET], 2_000, "f", 1_000), Ok(Redeemed::First));
        assert_eq!(store.keys_with_prefix("p:mu:").len(), 1);
    }
}
