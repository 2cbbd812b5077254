//! Bounded read-modify-write of shared-data records.
//!
//! Every write passes the cas it read (`cas = 0` would overwrite blindly);
//! a key that did not exist is written with `CREATE_IF_ABSENT_CAS` so two
//! creators cannot both win. After `CAS_RETRIES` mismatches the caller gets
//! `SessionError::Contention` and applies its non-fatal policy.

use super::record::Session;
use crate::store::{SharedStore, StoreError, CREATE_IF_ABSENT_CAS};

/// Attempts of one read-modify-write before giving up.
pub const CAS_RETRIES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Every attempt lost a cas race.
    Contention,
    /// The host refused the write for another reason.
    Store(StoreError),
    /// `max_sessions` is 0 (rejected by the config parser; kept total here).
    NoSlots,
    /// `sub` longer than `MAX_SUBJECT_LEN`.
    SubjectTooLong,
    /// A record could not be serialized.
    Encode,
    /// The random source failed (no session nonce can be made).
    NoEntropy,
}

impl SessionError {
    pub fn as_str(&self) -> &'static str {
        match self {
            SessionError::Contention => "store_contention",
            SessionError::Store(_) => "store_error",
            SessionError::NoSlots => "no_slots",
            SessionError::SubjectTooLong => "subject_too_long",
            SessionError::Encode => "encode_error",
            SessionError::NoEntropy => "no_entropy",
        }
    }
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Store(e) => write!(f, "{e}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// What a read-modify-write step decided.
pub enum Change<R, T> {
    /// Write this value (cas-guarded), then return `T`.
    Write(R, T),
    /// Leave the record as it is and return `T`.
    Keep(T),
}

/// Reads `key`, lets `change` decide, writes with the read cas; retries on
/// mismatch up to `CAS_RETRIES` times. `change` may run several times.
pub(crate) fn cas_update<R, T>(
    store: &dyn SharedStore,
    key: &str,
    decode: impl Fn(&[u8]) -> Option<R>,
    encode: impl Fn(&R) -> Option<Vec<u8>>,
    mut change: impl FnMut(Option<R>) -> Change<R, T>,
) -> Result<T, SessionError> {
    for _ in 0..CAS_RETRIES {
        let (current, cas) = match store.get(key) {
            Some((bytes, cas)) => (decode(&bytes), cas),
            None => (None, CREATE_IF_ABSENT_CAS),
        };
        match change(current) {
            Change::Keep(out) => return Ok(out),
            Change::Write(value, out) => {
                let bytes = encode(&value).ok_or(SessionError::Encode)?;
                match store.set(key, &bytes, cas) {
                    Ok(()) => return Ok(out),
                    Err(StoreError::CasMismatch) => continue,
                    Err(e) => return Err(SessionError::Store(e)),
                }
            }
        }
    }
    Err(SessionError::Contention)
}

/// The session at `key` and its cas, `None` when absent or undecodable.
pub fn read_session(store: &dyn SharedStore, key: &str) -> Option<(Session, u32)> {
    let (bytes, cas) = store.get(key)?;
    Session::decode(&bytes).map(|s| (s, cas))
}

/// `cas_update` for session records.
pub fn update_session<T>(
    store: &dyn SharedStore,
    key: &str,
    change: impl FnMut(Option<Session>) -> Change<Session, T>,
) -> Result<T, SessionError> {
    cas_update(store, key, Session::decode, Session::encode, change)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::session::record::sample_session;
    use crate::store::MemoryStore;
    use std::cell::Cell;

    /// A store whose first `n` writes report a cas mismatch (a racing VM).
    struct Contended<'a> {
        inner: &'a MemoryStore,
        fail_next: Cell<usize>,
    }

    impl SharedStore for Contended<'_> {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            if self.fail_next.get() > 0 {
                self.fail_next.set(self.fail_next.get() - 1);
                return Err(StoreError::CasMismatch);
            }
            self.inner.set(key, value, cas)
        }
    }

    fn bump(store: &dyn SharedStore) -> Result<u64, SessionError> {
        update_session(store, "s/0", |current| {
            let mut s = current.unwrap_or_else(|| sample_session("n", "a", 0));
            s.seq += 1;
            let seq = s.seq;
            Change::Write(s, seq)
        })
    }

    #[test]
    fn retries_mismatches_up_to_the_bound() {
        let inner = MemoryStore::new();
        let store = Contended {
            inner: &inner,
            fail_next: Cell::new(CAS_RETRIES - 1),
        };
        assert_eq!(bump(&store), Ok(1));
        store.fail_next.set(CAS_RETRIES);
        assert_eq!(bump(&store), Err(SessionError::Contention));
        assert_eq!(read_session(&inner, "s/0").unwrap().0.seq, 1);
    }

    #[test]
    fn a_write_between_read_and_set_is_not_lost() {
        let store = MemoryStore::new();
        bump(&store).unwrap();
        let mut raced = false;
        let out = update_session(&store, "s/0", |current| {
            if !raced {
                raced = true;
                bump(&store).unwrap();
            }
            let mut s = current.unwrap();
            s.seq += 10;
            let seq = s.seq;
            Change::Write(s, seq)
        });
        assert_eq!(out, Ok(12));
    }

    #[test]
    fn host_errors_are_not_retried() {
        struct Broken;
        impl SharedStore for Broken {
            fn get(&self, _: &str) -> Option<(Vec<u8>, u32)> {
                None
            }
            fn set(&self, _: &str, _: &[u8], _: u32) -> Result<(), StoreError> {
                Err(StoreError::Host(2))
            }
        }
        assert_eq!(bump(&Broken), Err(SessionError::Store(StoreError::Host(2))));
    }
}
