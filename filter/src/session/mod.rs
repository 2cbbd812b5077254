//! Sessions in shared data: the record codec, session ids and slots, the
//! per-subject revocation buckets, and bounded cas updates.
//!
//! Layout and formats are specified in `docs/design.md` ("Shared data
//! layout"); this module is their only reader and writer.

pub mod keyspace;
pub mod lease;
pub mod record;
pub mod revocation;
pub mod slots;
pub mod update;

pub use lease::{claim_lease, LeaseClaim};
pub use record::{Failure, Lease, Session, SessionState, MAX_ID_TOKEN_LEN, RECORD_VERSION};
pub use revocation::{
    is_revoked, mint_time_ns, revocation_cutoff, revoke_subject, RevocationBucket,
};
pub use slots::{
    allocate_slot, create_login_session, create_session, format_sid, idp_sid_slots, new_nonce, parse_sid, session_key,
    CreatedSession, LoginIds, NewSession, SessionId, SlotChoice, MAX_IDP_SID_LEN,
};
pub use update::{read_session, update_session, Change, SessionError, CAS_RETRIES};

/// Longest `sub` accepted (OIDC Core §5.1: at most 255 ASCII characters);
/// it bounds the size of revocation buckets.
pub const MAX_SUBJECT_LEN: usize = 255;
