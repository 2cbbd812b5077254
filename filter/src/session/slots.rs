//! Session ids (`"<slot>.<nonce>"`), slot keys, and slot allocation at login.
//!
//! Slots are the memory bound: there are `max_sessions` of them and a login
//! reuses a free, dead or expired one. Allocation probes `SLOT_PROBES` random
//! slots and takes the first reusable one; when every probed slot holds a
//! usable session it evicts the least recently validated of them (preferring
//! one without a live lease), whose user must log in again. With the table
//! less than full, a probe finds a free slot with probability
//! `1 - (used/max)^SLOT_PROBES`, so eviction is rare until the table is ~80%
//! full.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::record::{Session, SessionState, SlotSummary, RECORD_VERSION};
use super::update::{read_session, SessionError, CAS_RETRIES};
use super::MAX_SUBJECT_LEN;
use crate::config::Config;
use crate::store::{SharedStore, StoreError, CREATE_IF_ABSENT_CAS};

/// Random slots looked at per allocation.
pub const SLOT_PROBES: usize = 8;
/// Length of a nonce: 128 random bits in unpadded base64url.
pub const NONCE_LEN: usize = 22;

/// A parsed `sid` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionId {
    pub slot: u32,
    pub nonce: String,
}

/// `"<slot>.<nonce>"`: decimal slot below `max_sessions` without sign or
/// leading zeros, then exactly `NONCE_LEN` base64url characters.
pub fn parse_sid(sid: &str, max_sessions: u32) -> Option<SessionId> {
    let (slot_text, nonce) = sid.split_once('.')?;
    if slot_text.is_empty()
        || slot_text.len() > 10
        || !slot_text.bytes().all(|b| b.is_ascii_digit())
        || (slot_text.len() > 1 && slot_text.starts_with('0'))
    {
        return None;
    }
    let slot: u32 = slot_text.parse().ok()?;
    if slot >= max_sessions {
        return None;
    }
    let nonce_ok = nonce.len() == NONCE_LEN
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    nonce_ok.then(|| SessionId {
        slot,
        nonce: nonce.to_owned(),
    })
}

pub fn format_sid(slot: u32, nonce: &str) -> String {
    format!("{slot}.{nonce}")
}

/// 128 random bits as `NONCE_LEN` base64url characters; `None` when the
/// random source failed.
pub fn new_nonce(random: &mut dyn FnMut() -> Option<u64>) -> Option<String> {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random()?.to_le_bytes());
    bytes[8..].copy_from_slice(&random()?.to_le_bytes());
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// Longest IdP session id kept in a session record; a longer one is not
/// kept (that session is then reached through its `sub` only).
pub const MAX_IDP_SID_LEN: usize = 255;

/// The slots a session of IdP session `idp_sid` may occupy: `SLOT_PROBES`
/// positions derived from the sid (FNV-1a seeding splitmix64), so a
/// back-channel logout naming the sid finds its sessions by reading these
/// few records, with no index to keep. A login with an IdP sid probes
/// exactly these slots (taking a free one, or evicting as usual).
pub fn idp_sid_slots(idp_sid: &str, max_sessions: u32) -> Vec<u32> {
    let mut state = super::revocation::fnv1a64(idp_sid.as_bytes());
    (0..SLOT_PROBES)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) % u64::from(max_sessions.max(1))) as u32
        })
        .collect()
}

/// Shared-data key of a slot's record.
pub fn session_key(prefix: &str, slot: u32) -> String {
    format!("{prefix}s:{slot}")
}

/// A slot chosen for a new session and the cas to write it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotChoice {
    pub slot: u32,
    /// The cas read (or `CREATE_IF_ABSENT_CAS` for a never-written key).
    pub cas: u32,
    /// A usable session is being evicted.
    pub evicts: bool,
}

/// Picks a slot for a login (see the module doc for the policy).
pub fn allocate_slot(
    store: &dyn SharedStore,
    prefix: &str,
    max_sessions: u32,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> Result<SlotChoice, SessionError> {
    if max_sessions == 0 {
        return Err(SessionError::NoSlots);
    }
    // Eviction preference: no live lease first, then oldest validation.
    let mut victim: Option<((bool, u64), SlotChoice)> = None;
    for _ in 0..SLOT_PROBES {
        let slot = (random().ok_or(SessionError::NoEntropy)? % u64::from(max_sessions)) as u32;
        let key = session_key(prefix, slot);
        let Some((bytes, cas)) = store.get(&key) else {
            return Ok(SlotChoice {
                slot,
                cas: CREATE_IF_ABSENT_CAS,
                evicts: false,
            });
        };
        let Some(session) = SlotSummary::decode(&bytes).filter(|s| s.is_usable(now_ns)) else {
            return Ok(SlotChoice {
                slot,
                cas,
                evicts: false,
            });
        };
        let rank = (
            session.has_live_lease(now_ns),
            session.validated_ns.max(session.created_ns),
        );
        if victim.as_ref().is_none_or(|(best, _)| rank < *best) {
            victim = Some((
                rank,
                SlotChoice {
                    slot,
                    cas,
                    evicts: true,
                },
            ));
        }
    }
    victim
        .map(|(_, choice)| choice)
        .ok_or(SessionError::NoSlots)
}

/// What a login knows about the new session. Debug omits the tokens.
#[derive(Clone, PartialEq)]
pub struct NewSession {
    pub sub: String,
    pub access_token: String,
    pub access_expires_ns: u64,
    pub refresh_token: Option<String>,
    /// End of the login session.
    pub expires_ns: u64,
    /// Userinfo claims from the login (already checked against the rules).
    pub claims: Option<serde_json::Value>,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("sub", &self.sub)
            .field("access_expires_ns", &self.access_expires_ns)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("expires_ns", &self.expires_ns)
            .finish_non_exhaustive()
    }
}

/// Where the new session lives; `sid` goes into the downstream token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSession {
    pub slot: u32,
    pub nonce: String,
    pub sid: String,
    /// Another user's session was evicted to make room.
    pub evicted: bool,
}

/// Writes a new live session into a freshly allocated slot. A login counts
/// as a validation (`validated_ns = now`). Lost races (another login took the
/// slot) are retried with a new allocation, at most `CAS_RETRIES` times.
/// (Seeds sessions for tests and simulations, with an infallible source.)
pub fn create_session(
    store: &dyn SharedStore,
    cfg: &Config,
    new: NewSession,
    random: &mut dyn FnMut() -> u64,
    now_ns: u64,
) -> Result<CreatedSession, SessionError> {
    create_login_session(store, cfg, new, LoginIds::default(), &mut || Some(random()), now_ns)
}

/// What a login knows from the ID token besides the subject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginIds {
    /// The raw ID token, kept for `id_token_hint` (dropped when longer than
    /// `MAX_ID_TOKEN_LEN`). Debug shows it: never log this type.
    pub id_token: Option<String>,
    /// The IdP's session id (`sid`), kept when at most `MAX_IDP_SID_LEN`.
    pub idp_sid: Option<String>,
}

/// `create_session`, keeping the login's ID token for `id_token_hint` at
/// logout (dropped when longer than `MAX_ID_TOKEN_LEN`) and its IdP session
/// id; with one, the slot is chosen among `idp_sid_slots`.
pub fn create_login_session(
    store: &dyn SharedStore,
    cfg: &Config,
    new: NewSession,
    ids: LoginIds,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> Result<CreatedSession, SessionError> {
    if new.sub.len() > MAX_SUBJECT_LEN {
        return Err(SessionError::SubjectTooLong);
    }
    let prefix = cfg.shared_data_prefix.as_str();
    let nonce = new_nonce(random).ok_or(SessionError::NoEntropy)?;
    let idp_sid = ids.idp_sid.filter(|s| !s.is_empty() && s.len() <= MAX_IDP_SID_LEN);
    let id_token = ids.id_token;
    let record = Session {
        v: RECORD_VERSION,
        nonce: nonce.clone(),
        sub: new.sub,
        state: SessionState::Live,
        created_ns: now_ns,
        expires_ns: new.expires_ns,
        access_token: new.access_token,
        access_expires_ns: new.access_expires_ns,
        refresh_token: new.refresh_token,
        validated_ns: now_ns,
        attempt_ns: now_ns,
        failure: None,
        claims: new.claims,
        lease: None,
        id_token: id_token.filter(|t| t.len() <= super::record::MAX_ID_TOKEN_LEN),
        idp_sid: idp_sid.clone(),
        seq: 0,
    };
    let bytes = record.encode().ok_or(SessionError::Encode)?;
    for _ in 0..CAS_RETRIES {
        let choice = match &idp_sid {
            Some(sid) => {
                let mut probes = idp_sid_slots(sid, cfg.max_sessions).into_iter();
                let mut next = || probes.next().map(u64::from);
                allocate_slot(store, prefix, cfg.max_sessions, &mut next, now_ns)?
            }
            None => allocate_slot(store, prefix, cfg.max_sessions, random, now_ns)?,
        };
        let key = session_key(prefix, choice.slot);
        match store.set(&key, &bytes, choice.cas) {
            Ok(()) => {}
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(SessionError::Store(e)),
        }
        // Closes the 2^-32 chance that CREATE_IF_ABSENT_CAS equalled a
        // concurrent creator's cas: only a record we can read back is ours.
        if read_session(store, &key).is_some_and(|(s, _)| s.nonce == nonce) {
            return Ok(CreatedSession {
                slot: choice.slot,
                sid: format_sid(choice.slot, &nonce),
                nonce,
                evicted: choice.evicts,
            });
        }
    }
    Err(SessionError::Contention)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::revalidation::testing::{seq_entropy, seq_random, test_config};
    use crate::session::record::sample_session;
    use crate::store::MemoryStore;

    const NONCE: &str = "AAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn login_sessions_keep_the_id_token_only_when_small() {
        let cfg = test_config();
        let store = MemoryStore::new();
        let mut random = seq_entropy(3);
        let new = NewSession {
            sub: "alice".into(),
            access_token: "at".into(),
            access_expires_ns: 500,
            refresh_token: None,
            expires_ns: 1000,
            claims: None,
        };
        let read = |slot| read_session(&store, &session_key("vigil:", slot)).unwrap().0.id_token;
        let ids = |t: &str| LoginIds { id_token: Some(t.to_string()), idp_sid: None };
        let small = create_login_session(&store, &cfg, new.clone(), ids("a.b.c"), &mut random, 100).unwrap();
        assert_eq!(read(small.slot).as_deref(), Some("a.b.c"));
        let big = "x".repeat(crate::session::MAX_ID_TOKEN_LEN + 1);
        let big = create_login_session(&store, &cfg, new, ids(&big), &mut random, 100).unwrap();
        assert_eq!(read(big.slot), None);
    }

    #[test]
    fn a_failing_random_source_creates_no_session() {
        let cfg = test_config();
        let store = MemoryStore::new();
        let new = NewSession {
            sub: "alice".into(),
            access_token: "at".into(),
            access_expires_ns: 500,
            refresh_token: None,
            expires_ns: 1000,
            claims: None,
        };
        let mut words = 0;
        for fails_after in [0, 1, 2] {
            let mut flaky = || {
                words += 1;
                (words <= fails_after).then_some(words as u64)
            };
            let created = create_login_session(&store, &cfg, new.clone(), LoginIds::default(), &mut flaky, 100);
            assert_eq!(created, Err(SessionError::NoEntropy), "after {fails_after} words");
            words = 0;
        }
        assert_eq!(store.key_count(), 0, "nothing written");
    }

    #[test]
    fn a_login_with_an_idp_sid_lands_in_one_of_its_slots() {
        let cfg = test_config();
        let store = MemoryStore::new();
        let mut random = seq_entropy(9);
        let new = NewSession {
            sub: "alice".into(),
            access_token: "at".into(),
            access_expires_ns: 500,
            refresh_token: None,
            expires_ns: 1000,
            claims: None,
        };
        let slots = idp_sid_slots("idp-session-1", cfg.max_sessions);
        assert_eq!(slots.len(), SLOT_PROBES);
        assert_eq!(slots, idp_sid_slots("idp-session-1", cfg.max_sessions), "stable");
        assert_ne!(slots, idp_sid_slots("idp-session-2", cfg.max_sessions));
        for _ in 0..3 {
            let ids = LoginIds { id_token: None, idp_sid: Some("idp-session-1".into()) };
            let created = create_login_session(&store, &cfg, new.clone(), ids, &mut random, 100).unwrap();
            assert!(slots.contains(&created.slot), "{} not in {slots:?}", created.slot);
            let (record, _) = read_session(&store, &session_key("vigil:", created.slot)).unwrap();
            assert_eq!(record.idp_sid.as_deref(), Some("idp-session-1"));
        }
        // Too long to keep: a random slot, no sid on file.
        let ids = LoginIds { id_token: None, idp_sid: Some("s".repeat(MAX_IDP_SID_LEN + 1)) };
        let created = create_login_session(&store, &cfg, new, ids, &mut random, 100).unwrap();
        let (record, _) = read_session(&store, &session_key("vigil:", created.slot)).unwrap();
        assert_eq!(record.idp_sid, None);
    }

    #[test]
    fn sid_parsing_checks_bounds_and_shape() {
        assert_eq!(
            parse_sid(&format!("7.{NONCE}"), 8),
            Some(SessionId {
                slot: 7,
                nonce: NONCE.into()
            })
        );
        assert_eq!(parse_sid(&format!("0.{NONCE}"), 1).unwrap().slot, 0);
        for bad in [
            format!("8.{NONCE}"),
            format!("07.{NONCE}"),
            format!("+7.{NONCE}"),
            format!(".{NONCE}"),
            format!("99999999999.{NONCE}"),
            format!("4294967295.{NONCE}"),
            format!("7.{}", &NONCE[1..]),
            format!("7.{NONCE}A"),
            "7.AAAAAAAAAAAAAAAAAAAA+/".to_string(),
            NONCE.to_string(),
            format!("7.{NONCE}.x"),
        ] {
            assert_eq!(parse_sid(&bad, 8), None, "{bad}");
        }
    }

    #[test]
    fn nonces_are_22_url_safe_chars_and_round_trip_through_sid() {
        let mut random = seq_entropy(1);
        let nonce = new_nonce(&mut random).unwrap();
        assert_eq!(nonce.len(), NONCE_LEN);
        assert_ne!(Some(nonce.clone()), new_nonce(&mut random));
        let sid = format_sid(3, &nonce);
        assert_eq!(parse_sid(&sid, 4).unwrap().nonce, nonce);
    }

    #[test]
    fn allocation_reuses_dead_expired_and_corrupt_slots() {
        let store = MemoryStore::new();
        let mut dead = sample_session(NONCE, "a", 0);
        dead.kill("x", 1);
        store.set("vigil:s:0", &dead.encode().unwrap(), 0).unwrap();
        let mut random = || Some(0u64);
        let choice = allocate_slot(&store, "vigil:", 1, &mut random, 2).unwrap();
        assert_eq!((choice.slot, choice.evicts), (0, false));
        assert_eq!(choice.cas, store.get("vigil:s:0").unwrap().1);

        let live = sample_session(NONCE, "a", 0);
        store.set("vigil:s:0", &live.encode().unwrap(), 0).unwrap();
        let expired = allocate_slot(&store, "vigil:", 1, &mut random, live.expires_ns).unwrap();
        assert!(!expired.evicts);
        store.set("vigil:s:0", b"{corrupt", 0).unwrap();
        assert!(
            !allocate_slot(&store, "vigil:", 1, &mut random, 2)
                .unwrap()
                .evicts
        );
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_validated_unleased_probe() {
        let store = MemoryStore::new();
        for (slot, validated) in [(0u32, 50u64), (1, 10), (2, 30)] {
            let mut s = sample_session(NONCE, "a", 0);
            s.validated_ns = validated;
            if slot == 1 {
                s.lease = Some(crate::session::Lease {
                    owner: "vm".into(),
                    job: 1,
                    deadline_ns: u64::MAX,
                    waiters: vec![],
                    hold_ns: 0,
                });
            }
            store
                .set(&session_key("p:", slot), &s.encode().unwrap(), 0)
                .unwrap();
        }
        let mut n = 0u64;
        let mut cycle = || {
            n += 1;
            Some(n)
        };
        let choice = allocate_slot(&store, "p:", 3, &mut cycle, 100).unwrap();
        assert_eq!((choice.slot, choice.evicts), (2, true));
    }

    #[test]
    fn create_writes_a_live_validated_record_and_rejects_long_subjects() {
        let store = MemoryStore::new();
        let cfg = test_config();
        let mut random = seq_random(3);
        let new = NewSession {
            sub: "alice".into(),
            access_token: "at".into(),
            access_expires_ns: 500,
            refresh_token: Some("rt".into()),
            expires_ns: 1000,
            claims: Some(serde_json::json!({"sub": "alice"})),
        };
        let created = create_session(&store, &cfg, new.clone(), &mut random, 100).unwrap();
        let (record, _) = read_session(&store, &session_key("vigil:", created.slot)).unwrap();
        assert_eq!(record.nonce, created.nonce);
        assert_eq!(
            parse_sid(&created.sid, cfg.max_sessions).unwrap().slot,
            created.slot
        );
        assert_eq!(
            (record.validated_ns, record.seq, record.state),
            (100, 0, SessionState::Live)
        );
        assert_eq!(record.refresh_token.as_deref(), Some("rt"));

        let long = NewSession {
            sub: "x".repeat(MAX_SUBJECT_LEN + 1),
            ..new
        };
        assert_eq!(
            create_session(&store, &cfg, long, &mut random, 100),
            Err(SessionError::SubjectTooLong)
        );
    }

    #[test]
    fn two_logins_racing_for_one_never_written_slot_do_not_both_win() {
        let store = MemoryStore::new();
        let mut random = || Some(0u64);
        let first = allocate_slot(&store, "p:", 1, &mut random, 0).unwrap();
        let second = allocate_slot(&store, "p:", 1, &mut random, 0).unwrap();
        store.set("p:s:0", b"{}", first.cas).unwrap();
        assert_eq!(
            store.set("p:s:0", b"{}", second.cas),
            Err(StoreError::CasMismatch)
        );
    }
}
