//! Token families: one per redeemed authorization code, holding what its
//! access and refresh tokens are for and which refresh token is current.
//!
//! Shared data: `refresh_families` slots `P mf:<slot>` (the key-space
//! bound), each `{"v":1,"n":nonce,"c":SHA-256(client_id),"u":sub,"i":sid,
//! "a":resource,"s":scope,"f":refresh_allowed,"g":generation,"t":created_ns,
//! "l":last_used_ns,"x":expires_ns,"k":"live"|"revoked"}` (about 300 bytes
//! plus the subject). A family id is `<slot>.<nonce>` like a session id;
//! access tokens carry it as `fam`, so revoking the family (refresh token
//! reuse, RFC 7009 revocation, a replayed code) also ends its access tokens.
//!
//! Allocation (a code exchange) probes `SLOT_PROBES` random slots and takes
//! the first that is free, revoked, expired or unreadable; when all hold
//! live families it evicts the least recently used one (that client has to
//! authorize again).
//!
//! Refresh tokens are `vr1.<slot>.<nonce>.<generation>.<base64url(HMAC(refresh
//! key, "vr1.<slot>.<nonce>.<generation>"))>`: unforgeable, and current only
//! while `generation` is the family's `g`. Every refresh rotates (`g + 1`);
//! presenting an older generation is reuse and revokes the family (OAuth 2.1
//! §4.3.1). The rotation is one cas-guarded write, so two concurrent uses of
//! one token cannot both succeed: the loser is a reuse.

use serde::{Deserialize, Serialize};

use super::keys::{random_nonce, tag, verify_tag, McpKeys};
use crate::session::update::{cas_update, CAS_RETRIES};
use crate::session::{Change, SessionError};
use crate::store::{SharedStore, StoreError, CREATE_IF_ABSENT_CAS};

pub const REFRESH_PREFIX: &str = "vr1.";
/// Random slots looked at per allocation.
pub const SLOT_PROBES: usize = 8;
/// Longest refresh token looked at.
pub const MAX_REFRESH_TOKEN_LEN: usize = 128;
const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FamilyState {
    Live,
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Family {
    pub v: u32,
    pub n: String,
    pub c: String,
    pub u: String,
    pub i: String,
    pub a: String,
    pub s: String,
    pub f: bool,
    pub g: u64,
    pub t: u64,
    pub l: u64,
    pub x: u64,
    pub k: FamilyState,
}

impl Family {
    fn decode(bytes: &[u8]) -> Option<Family> {
        let family: Family = serde_json::from_slice(bytes).ok()?;
        (family.v == RECORD_VERSION).then_some(family)
    }

    fn encode(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok()
    }

    pub fn is_live(&self, now_ns: u64) -> bool {
        self.k == FamilyState::Live && now_ns < self.x
    }
}

/// What a new family records (the nonce, generation and state are added).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewFamily {
    pub client_digest: String,
    pub sub: String,
    pub sid: String,
    pub resource: String,
    pub scope: String,
    pub refresh: bool,
    pub created_ns: u64,
    pub expires_ns: u64,
}

/// `<slot>.<nonce>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyId {
    pub slot: u32,
    pub nonce: String,
}

impl FamilyId {
    pub fn parse(text: &str, slots: u32) -> Option<FamilyId> {
        let (slot, nonce) = text.split_once('.')?;
        let slot_ok = !slot.is_empty() && slot.len() <= 7 && slot.bytes().all(|b| b.is_ascii_digit()) && (slot == "0" || !slot.starts_with('0'));
        let nonce_ok = nonce.len() == 22 && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let slot: u32 = slot.parse().ok().filter(|s| slot_ok && *s < slots)?;
        nonce_ok.then(|| FamilyId { slot, nonce: nonce.to_string() })
    }
}

impl std::fmt::Display for FamilyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.slot, self.nonce)
    }
}

/// Shared-data key of family slot `slot`.
pub fn family_key(prefix: &str, slot: u32) -> String {
    format!("{prefix}mf:{slot}")
}

/// Writes a new live family into a free (or the least recently used) slot.
pub(crate) fn create(
    store: &dyn SharedStore,
    prefix: &str,
    slots: u32,
    new: &NewFamily,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> Result<FamilyId, SessionError> {
    // A failed random source is reported like contention: retry later.
    let nonce = random_nonce(random).ok_or(SessionError::Contention)?;
    let record = Family {
        v: RECORD_VERSION,
        n: nonce.clone(),
        c: new.client_digest.clone(),
        u: new.sub.clone(),
        i: new.sid.clone(),
        a: new.resource.clone(),
        s: new.scope.clone(),
        f: new.refresh,
        g: 0,
        t: new.created_ns,
        l: now_ns,
        x: new.expires_ns,
        k: FamilyState::Live,
    };
    let bytes = record.encode().ok_or(SessionError::Encode)?;
    for _ in 0..CAS_RETRIES {
        let (slot, cas) = pick_slot(store, prefix, slots, random, now_ns)?;
        let key = family_key(prefix, slot);
        match store.set(&key, &bytes, cas) {
            Ok(()) => {}
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(SessionError::Store(e)),
        }
        // Only a record we can read back is ours (see session::slots).
        if read(store, prefix, &FamilyId { slot, nonce: nonce.clone() }).is_some() {
            return Ok(FamilyId { slot, nonce });
        }
    }
    Err(SessionError::Contention)
}

fn pick_slot(
    store: &dyn SharedStore,
    prefix: &str,
    slots: u32,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> Result<(u32, u32), SessionError> {
    let mut victim: Option<(u64, u32, u32)> = None;
    for _ in 0..SLOT_PROBES {
        let word = random().ok_or(SessionError::Contention)?;
        let slot = u32::try_from(word % u64::from(slots.max(1))).unwrap_or(0);
        let Some((bytes, cas)) = store.get(&family_key(prefix, slot)) else {
            return Ok((slot, CREATE_IF_ABSENT_CAS));
        };
        let Some(family) = Family::decode(&bytes).filter(|f| f.is_live(now_ns)) else {
            return Ok((slot, cas));
        };
        if victim.is_none_or(|(used, _, _)| family.l < used) {
            victim = Some((family.l, slot, cas));
        }
    }
    victim.map(|(_, slot, cas)| (slot, cas)).ok_or(SessionError::NoSlots)
}

/// The family `id` names (its nonce must match), live or not.
pub(crate) fn read(store: &dyn SharedStore, prefix: &str, id: &FamilyId) -> Option<Family> {
    let (bytes, _) = store.get(&family_key(prefix, id.slot))?;
    Family::decode(&bytes).filter(|f| f.n == id.nonce)
}

/// Revokes family `id`; `Ok(false)` when it is not on file (any more).
pub(crate) fn revoke(store: &dyn SharedStore, prefix: &str, id: &FamilyId) -> Result<bool, SessionError> {
    cas_update(store, &family_key(prefix, id.slot), Family::decode, Family::encode, |current| {
        match current.filter(|f| f.n == id.nonce) {
            Some(mut f) if f.k == FamilyState::Live => {
                f.k = FamilyState::Revoked;
                Change::Write(f, true)
            }
            Some(_) => Change::Keep(true),
            None => Change::Keep(false),
        }
    })
}

fn token_body(id: &FamilyId, generation: u64) -> String {
    format!("{REFRESH_PREFIX}{}.{}.{generation}", id.slot, id.nonce)
}

/// The refresh token of generation `generation` of family `id`.
pub(crate) fn refresh_token(keys: &McpKeys, id: &FamilyId, generation: u64) -> String {
    let body = token_body(id, generation);
    let mac = tag(&keys.refresh, body.as_bytes());
    format!("{body}.{mac}")
}

/// `(family, generation)` of a genuine refresh token.
pub(crate) fn parse_refresh_token(keys: &McpKeys, token: &str, slots: u32) -> Option<(FamilyId, u64)> {
    if token.len() > MAX_REFRESH_TOKEN_LEN {
        return None;
    }
    let rest = token.strip_prefix(REFRESH_PREFIX)?;
    let mut parts = rest.split('.');
    let (Some(slot), Some(nonce), Some(generation), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let id = FamilyId::parse(&format!("{slot}.{nonce}"), slots)?;
    if generation.is_empty() || generation.len() > 19 || !generation.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let generation: u64 = generation.parse().ok()?;
    // Only the canonical spelling (no leading zeros) is a token.
    let body = token_body(&id, generation);
    if token.len() != body.len() + 1 + mac.len() || !token.starts_with(&body) {
        return None;
    }
    verify_tag(&keys.refresh, body.as_bytes(), mac).then_some((id, generation))
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rotation {
    /// The family after the rotation (`g` is the new token's generation).
    Rotated(Family),
    /// An older generation: the family is now revoked.
    Reused,
    /// Not usable (unknown, revoked, expired, another client's, or
    /// `check` refused it: the family is then revoked too).
    Refused(&'static str),
}

/// Rotates family `id` if `generation` is its current refresh token, the
/// client is the family's and `check` (the vigil session is alive) passes.
pub(crate) fn rotate(
    store: &dyn SharedStore,
    prefix: &str,
    id: &FamilyId,
    generation: u64,
    client_digest: &str,
    now_ns: u64,
    check: &dyn Fn(&Family) -> Result<(), &'static str>,
) -> Result<Rotation, SessionError> {
    cas_update(store, &family_key(prefix, id.slot), Family::decode, Family::encode, |current| {
        let Some(mut family) = current.filter(|f| f.n == id.nonce) else {
            return Change::Keep(Rotation::Refused("unknown refresh token"));
        };
        if family.k == FamilyState::Revoked {
            return Change::Keep(Rotation::Refused("the refresh token was revoked"));
        }
        if now_ns >= family.x || !family.f {
            return Change::Keep(Rotation::Refused("the refresh token has expired"));
        }
        let outcome = if family.c != client_digest {
            Rotation::Refused("the refresh token was issued to another client")
        } else if generation < family.g {
            Rotation::Reused
        } else if generation > family.g {
            return Change::Keep(Rotation::Refused("unknown refresh token"));
        } else if let Err(reason) = check(&family) {
            Rotation::Refused(reason)
        } else {
            family.g += 1;
            family.l = now_ns;
            return Change::Write(family.clone(), Rotation::Rotated(family));
        };
        family.k = FamilyState::Revoked;
        Change::Write(family, outcome)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::mcp::testing::test_keys;
    use crate::revalidation::testing::seq_random;
    use crate::store::MemoryStore;

    fn new_family(x: u64) -> NewFamily {
        NewFamily {
            client_digest: "client".into(),
            sub: "alice".into(),
            sid: "1.AAAAAAAAAAAAAAAAAAAAAA".into(),
            resource: "https://mcp.example.com/mcp".into(),
            scope: "mcp".into(),
            refresh: true,
            created_ns: 5,
            expires_ns: x,
        }
    }

    fn entropy(seed: u64) -> impl FnMut() -> Option<u64> {
        let mut r = seq_random(seed);
        move || Some(r())
    }

    #[test]
    fn refresh_tokens_are_unforgeable_and_parsed_strictly() {
        let keys = test_keys();
        let id = FamilyId { slot: 7, nonce: "AAAAAAAAAAAAAAAAAAAAAA".into() };
        let token = refresh_token(&keys, &id, 3);
        assert_eq!(parse_refresh_token(&keys, &token, 8), Some((id.clone(), 3)));
        assert_eq!(parse_refresh_token(&keys, &token, 7), None, "slot out of range");
        let bumped = token.replacen(".3.", ".4.", 1);
        assert_eq!(parse_refresh_token(&keys, &bumped, 8), None);
        let other = McpKeys::expand(&crate::mcp::keys::extract(b"other"));
        assert_eq!(parse_refresh_token(&other, &token, 8), None);
        for junk in ["", "vr1.", "vr1.7.x.3.m", "vr1.07.AAAAAAAAAAAAAAAAAAAAAA.3.m", "vr1.7.AAAAAAAAAAAAAAAAAAAAAA.+3.m"] {
            assert_eq!(parse_refresh_token(&keys, junk, 8), None, "{junk}");
        }
        assert_eq!(FamilyId::parse(&id.to_string(), 8), Some(id));
    }

    #[test]
    fn rotation_moves_the_generation_and_reuse_revokes() {
        let store = MemoryStore::new();
        let mut random = entropy(1);
        let id = create(&store, "p:", 16, &new_family(1_000), &mut random, 10).unwrap();
        let ok = |_: &Family| Ok(());
        let Ok(Rotation::Rotated(f)) = rotate(&store, "p:", &id, 0, "client", 20, &ok) else { panic!("rotate") };
        assert_eq!((f.g, f.l), (1, 20));
        // Generation 0 again: reuse, the family dies, and so does generation 1.
        assert_eq!(rotate(&store, "p:", &id, 0, "client", 30, &ok), Ok(Rotation::Reused));
        assert!(!read(&store, "p:", &id).unwrap().is_live(30));
        assert!(matches!(rotate(&store, "p:", &id, 1, "client", 31, &ok), Ok(Rotation::Refused(_))));
    }

    #[test]
    fn refusals_that_revoke_and_those_that_do_not() {
        let store = MemoryStore::new();
        let mut random = entropy(2);
        let ok = |_: &Family| Ok(());
        let id = create(&store, "p:", 16, &new_family(1_000), &mut random, 10).unwrap();
        // Another client presenting the token: refused and revoked.
        assert!(matches!(rotate(&store, "p:", &id, 0, "thief", 20, &ok), Ok(Rotation::Refused(_))));
        assert!(!read(&store, "p:", &id).unwrap().is_live(20));
        // The session check failing: refused and revoked.
        let id = create(&store, "p:", 16, &new_family(1_000), &mut random, 10).unwrap();
        let dead = |_: &Family| Err("the session has ended");
        assert_eq!(rotate(&store, "p:", &id, 0, "client", 20, &dead), Ok(Rotation::Refused("the session has ended")));
        assert!(!read(&store, "p:", &id).unwrap().is_live(20));
        // Expired or unknown: refused, nothing written.
        let id = create(&store, "p:", 16, &new_family(100), &mut random, 10).unwrap();
        assert!(matches!(rotate(&store, "p:", &id, 0, "client", 100, &ok), Ok(Rotation::Refused(_))));
        let ghost = FamilyId { slot: id.slot, nonce: "BBBBBBBBBBBBBBBBBBBBBB".into() };
        assert_eq!(rotate(&store, "p:", &ghost, 0, "client", 20, &ok), Ok(Rotation::Refused("unknown refresh token")));
        // A family without refresh tokens never rotates.
        let mut no_refresh = new_family(1_000);
        no_refresh.refresh = false;
        let id = create(&store, "p:", 16, &no_refresh, &mut random, 10).unwrap();
        assert!(matches!(rotate(&store, "p:", &id, 0, "client", 20, &ok), Ok(Rotation::Refused(_))));
        assert!(read(&store, "p:", &id).unwrap().is_live(20));
    }

    #[test]
    fn concurrent_use_of_one_token_lets_only_one_win() {
        let store = MemoryStore::new();
        let mut random = entropy(3);
        let id = create(&store, "p:", 16, &new_family(1_000), &mut random, 10).unwrap();
        // The second use interleaves inside the first's read-modify-write.
        let raced = std::cell::Cell::new(false);
        let inner = |_: &Family| {
            if !raced.replace(true) {
                let second = rotate(&store, "p:", &id, 0, "client", 21, &|_| Ok(()));
                assert!(matches!(second, Ok(Rotation::Rotated(_))));
            }
            Ok(())
        };
        assert_eq!(rotate(&store, "p:", &id, 0, "client", 20, &inner), Ok(Rotation::Reused));
        assert!(!read(&store, "p:", &id).unwrap().is_live(22));
    }

    #[test]
    fn the_key_space_is_bounded_and_live_families_are_evicted_least_recently_used_first() {
        let store = MemoryStore::new();
        let mut random = entropy(4);
        let mut ids = Vec::new();
        for i in 0..200u64 {
            ids.push(create(&store, "p:", 4, &new_family(u64::MAX), &mut random, 100 + i).unwrap());
        }
        assert_eq!(store.keys_with_prefix("p:mf:").len(), 4);
        // The newest is on file; the oldest were evicted.
        assert!(read(&store, "p:", ids.last().unwrap()).is_some());
        assert!(read(&store, "p:", &ids[0]).is_none());
        assert!(revoke(&store, "p:", ids.last().unwrap()).unwrap());
        assert!(!revoke(&store, "p:", &ids[0]).unwrap());
        assert_eq!(create(&store, "p:", 4, &new_family(1), &mut || None, 0), Err(SessionError::Contention));
    }
}
