//! `records`: the shared-data records every worker reads: session records
//! (with their revalidation lease), revocation buckets, the IdP metadata
//! records (discovery, JWKS, fetch state) and the one-time-value buckets.
//!
//! Invariants beyond "no panic":
//! * `decode(encode(x)) == x` for every decodable `x`, both for records
//!   decoded from arbitrary bytes and for records built field by field;
//! * a record that `Session::decode` accepts is summarised identically by
//!   slot allocation (`SlotSummary`);
//! * a corrupt record is "absent": reads see nothing, and a write replaces
//!   it: revoking a subject over any bucket content revokes it (and never
//!   un-revokes another subject whose cut-off is still needed); a one-time
//!   value is accepted once and then refused over any bucket content; a
//!   corrupt fetch record never blocks the metadata fetch;
//! * a lease claim follows the protocol: a new lease only once the old one
//!   stopped protecting the session, the holder recognised, waiters added
//!   once and carried over.

use serde_json::{json, Map, Value};
use vigil::login::fetch::{fetch_key, reencode_fetch_state, Fetcher};
use vigil::login::provider::{discovery_key, jwks_key, DiscoveryRecord, JwksRecord, Provider};
use vigil::login::seen::{remember_once, JTI_TAG, SEEN_BUCKETS};
use vigil::session::record::SlotSummary;
use vigil::session::revocation::bucket_key;
use vigil::session::{
    claim_lease, is_revoked, mint_time_ns, read_session, revocation_cutoff, revoke_subject,
    session_key, Failure, Lease, LeaseClaim, RevocationBucket, Session, SessionState,
};
use vigil::store::{MemoryStore, SharedStore};

use super::fixtures::{login_config, NOW_NS, SEC};
use super::input::{Input, Output};

pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    match input.u8() % 6 {
        0 => decoded(input.rest()),
        1 => built_session(&mut input),
        2 => built_bucket(&mut input),
        3 => leases(&mut input),
        4 => corrupt_store(&mut input),
        _ => built_metadata(&mut input),
    }
}

/// Arbitrary bytes through every decoder.
fn decoded(bytes: &[u8]) {
    if let Some(session) = Session::decode(bytes) {
        assert_eq!(session.v, 1);
        session_round_trip(&session);
        let summary = SlotSummary::decode(bytes).expect("a decodable session summarises");
        assert_eq!(summary.state, session.state);
        assert_eq!(summary.created_ns, session.created_ns);
        assert_eq!(summary.expires_ns, session.expires_ns);
        assert_eq!(summary.validated_ns, session.validated_ns);
        assert_eq!(
            summary.lease.map(|l| l.deadline_ns),
            session.lease.as_ref().map(|l| l.deadline_ns)
        );
    }
    if let Some(summary) = SlotSummary::decode(bytes) {
        assert_eq!(summary.v, 1);
    }
    if let Some(bucket) = RevocationBucket::decode(bytes) {
        assert_eq!(bucket.v, 1);
        let encoded = bucket.encode().expect("encode");
        assert_eq!(RevocationBucket::decode(&encoded), Some(bucket));
    }
    if let Some(record) = DiscoveryRecord::decode(bytes) {
        let encoded = serde_json::to_vec(&record).expect("encode");
        assert_eq!(DiscoveryRecord::decode(&encoded), Some(record));
    }
    if let Some(record) = JwksRecord::decode(bytes) {
        let encoded = serde_json::to_vec(&record).expect("encode");
        assert_eq!(JwksRecord::decode(&encoded), Some(record));
    }
    if let Some(encoded) = reencode_fetch_state(bytes) {
        assert_eq!(
            reencode_fetch_state(&encoded),
            Some(encoded),
            "fetch state round trip"
        );
    }
}

fn session_round_trip(session: &Session) {
    let encoded = session.encode().expect("a session encodes");
    assert!(!encoded.is_empty());
    let decoded = Session::decode(&encoded);
    if decoded.as_ref() != Some(session) {
        let again = decoded
            .as_ref()
            .and_then(Session::encode)
            .unwrap_or_default();
        panic!(
            "session round trip: {} decodes to {}",
            lossy(&encoded),
            lossy(&again)
        );
    }
    // Debug never depends on the tokens, the nonce or the claims.
    let mut blanked = session.clone();
    blanked.nonce.clear();
    blanked.access_token.clear();
    blanked.refresh_token = blanked.refresh_token.map(|_| String::new());
    blanked.id_token = None;
    blanked.claims = None;
    assert_eq!(
        format!("{session:?}"),
        format!("{blanked:?}"),
        "Debug prints a secret"
    );
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A JSON value from the input (claims, JWKs), depth-bounded.
fn value(input: &mut Input, depth: u8) -> Value {
    match input.u8() % 7 {
        0 => Value::Null,
        1 => Value::from(input.bool()),
        2 => Value::from(input.u64()),
        3 => serde_json::Number::from_f64(f64::from_bits(input.u64()))
            .map_or(Value::Null, Value::Number),
        4 if depth < 3 => Value::Array(
            (0..input.u8() % 4)
                .map(|_| value(input, depth + 1))
                .collect(),
        ),
        5 if depth < 3 => {
            let mut map = Map::new();
            for _ in 0..input.u8() % 4 {
                map.insert(input.text(), value(input, depth + 1));
            }
            Value::Object(map)
        }
        _ => Value::from(input.text()),
    }
}

fn lease(input: &mut Input) -> Lease {
    Lease {
        owner: input.text(),
        job: input.u64(),
        deadline_ns: input.u64(),
        waiters: (0..input.u8() % 4).map(|_| input.u32()).collect(),
        hold_ns: input.u64(),
    }
}

fn session(input: &mut Input) -> Session {
    let flags = input.u8();
    let bit = |n: u8| flags & (1 << n) != 0;
    Session {
        v: 1,
        nonce: input.text(),
        sub: input.text(),
        state: if bit(0) {
            SessionState::Dead
        } else {
            SessionState::Live
        },
        created_ns: input.u64(),
        expires_ns: input.u64(),
        access_token: input.text(),
        access_expires_ns: input.u64(),
        refresh_token: bit(1).then(|| input.text()),
        validated_ns: input.u64(),
        attempt_ns: input.u64(),
        failure: bit(2).then(|| Failure {
            class: input.text(),
            at_ns: input.u64(),
        }),
        // `"claims": null` decodes as no claims: `Some(Null)` is no record's.
        claims: bit(3).then(|| value(input, 0)).filter(|v| !v.is_null()),
        lease: bit(4).then(|| lease(input)),
        id_token: bit(5).then(|| input.text()),
        idp_sid: bit(6).then(|| input.text()),
        seq: input.u64(),
    }
}

fn built_session(input: &mut Input) {
    let session = session(input);
    session_round_trip(&session);
    let encoded = session.encode().expect("encode");
    let summary = SlotSummary::decode(&encoded).expect("summary");
    assert_eq!(summary.expires_ns, session.expires_ns);
}

fn bucket(input: &mut Input) -> RevocationBucket {
    RevocationBucket {
        v: 1,
        floor_ns: input.u64(),
        subs: (0..input.u8() % 70)
            .map(|_| (input.text(), input.u64()))
            .collect(),
    }
}

fn built_bucket(input: &mut Input) {
    let bucket = bucket(input);
    let encoded = bucket.encode().expect("encode");
    assert_eq!(
        RevocationBucket::decode(&encoded).as_ref(),
        Some(&bucket),
        "bucket round trip"
    );
    // Revoking over it: the subject is revoked, nobody is un-revoked.
    let cfg = login_config();
    let store = MemoryStore::new();
    let sub = if input.bool() {
        input.text()
    } else {
        "alice".to_string()
    };
    let now = NOW_NS.saturating_add(u64::from(input.u32()) * SEC);
    store
        .set(
            &bucket_key(&cfg.shared_data_prefix, cfg.revocation_buckets, &sub),
            &encoded,
            0,
        )
        .expect("set");
    revoke_and_check(&store, &sub, now, Some(&bucket));
}

/// Revokes `sub` at `now` over whatever its bucket holds (`before`, when
/// it decoded) and checks the result.
fn revoke_and_check(store: &MemoryStore, sub: &str, now: u64, before: Option<&RevocationBucket>) {
    let cfg = login_config();
    let key = bucket_key(&cfg.shared_data_prefix, cfg.revocation_buckets, sub);
    let previous = revocation_cutoff(store, cfg, sub);
    match revoke_subject(store, cfg, sub, now) {
        Ok(cutoff) => {
            // Strictly later than before, except that a cut-off of u64::MAX
            // (only foreign data can hold one) stays there for good.
            let saturated = previous == u64::MAX;
            assert!(
                cutoff >= now && (previous == 0 || cutoff > previous || saturated),
                "cut-off {cutoff} after {previous}"
            );
            assert!(is_revoked(store, cfg, sub, now) && is_revoked(store, cfg, sub, cutoff));
            assert!(revocation_cutoff(store, cfg, sub) >= cutoff);
            assert!(
                mint_time_ns(store, cfg, sub, now) > cutoff || cutoff == u64::MAX,
                "a new token would be revoked"
            );
            let after = store
                .get(&key)
                .and_then(|(b, _)| RevocationBucket::decode(&b))
                .expect("bucket written");
            assert!(after.subs.len() <= vigil::session::revocation::MAX_BUCKET_ENTRIES);
            let retain = u64::try_from((cfg.max_token_lifetime + cfg.downstream.leeway).as_nanos())
                .unwrap_or(u64::MAX);
            let Some(before) = before else { return };
            // A cut-off still covering a live token is never lowered.
            for (other, _) in &before.subs {
                let old = before.cutoff(other);
                if old.saturating_add(retain) >= now {
                    assert!(
                        after.cutoff(other) >= old,
                        "{other:?} un-revoked: {old} -> {}",
                        after.cutoff(other)
                    );
                }
            }
            if before.floor_ns.saturating_add(retain) >= now {
                assert!(after.floor_ns >= before.floor_ns, "floor lowered");
            }
        }
        Err(_) => assert!(sub.len() > 255, "revoking {sub:?} failed"),
    }
}

fn leases(input: &mut Input) {
    let mut record = session(input);
    session_round_trip(&record);
    let mut now = input.u64() >> 1;
    for _ in 0..input.u8() % 8 {
        now = now.saturating_add(u64::from(input.u32()));
        let vm = *input.pick(&["vm-a", "vm-b", "vm-c"]);
        let token = input.bool().then(|| input.u32() % 4);
        let timeout = u64::from(input.u32());
        let grace = u64::from(input.u16());
        let before = record.lease.clone();
        let claim = claim_lease(&mut record, vm, token, now, timeout, grace);
        let lease = record.lease.clone().expect("a claim leaves a lease");
        let protected = before
            .as_ref()
            .is_some_and(|l| now < l.protected_until(grace));
        match claim {
            LeaseClaim::Took { job, deadline_ns } => {
                assert!(!protected, "took a lease that still protects the session");
                assert_eq!(
                    (lease.owner.as_str(), lease.job, lease.deadline_ns),
                    (vm, job, deadline_ns)
                );
                assert_eq!((job, deadline_ns), (now, now.saturating_add(timeout)));
                assert_eq!(lease.hold_ns, 0);
                let carried = before.map(|l| l.waiters).unwrap_or_default();
                let want: Vec<u32> = carried.into_iter().filter(|t| Some(*t) != token).collect();
                assert_eq!(lease.waiters, want, "waiters not carried over");
            }
            LeaseClaim::Mine { deadline_ns } => {
                assert!(protected && lease.owner == vm && Some(&lease) == before.as_ref());
                assert_eq!(deadline_ns, lease.deadline_ns);
            }
            LeaseClaim::Joined { deadline_ns } => {
                let before = before.expect("joined a lease");
                assert!(protected && before.owner != vm);
                assert_eq!(
                    (deadline_ns, &lease.owner, lease.job),
                    (before.deadline_ns, &before.owner, before.job)
                );
                if let Some(token) = token {
                    assert!(lease.waiters.contains(&token));
                    let added = usize::from(!before.waiters.contains(&token));
                    assert_eq!(
                        lease.waiters.len(),
                        before.waiters.len() + added,
                        "a waiter added twice"
                    );
                } else {
                    assert_eq!(lease.waiters, before.waiters);
                }
            }
        }
        session_round_trip(&record);
    }
}

/// The bucket key `remember_once` uses for `value` (first 8 bytes of its
/// SHA-256, little-endian, modulo the bucket count).
fn seen_key(prefix: &str, value: &str) -> String {
    let digest = hmac_sha256::Hash::hash(value.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    format!(
        "{prefix}{JTI_TAG}:{}",
        u64::from_le_bytes(first) % SEEN_BUCKETS
    )
}

/// Whatever bytes sit in a key, the code that reads it copes.
fn corrupt_store(input: &mut Input) {
    let cfg = login_config();
    let prefix = cfg.shared_data_prefix.as_str();
    let store = MemoryStore::new();
    let kind = input.u8() % 5;
    let bytes = input.bytes().to_vec();
    match kind {
        0 => {
            let key = session_key(prefix, 3);
            store.set(&key, &bytes, 0).expect("set");
            let read = read_session(&store, &key).map(|(s, _)| s);
            assert_eq!(
                read,
                Session::decode(&bytes),
                "a read differs from the decoder"
            );
        }
        1 => {
            let sub = if input.bool() {
                input.text()
            } else {
                "alice".to_string()
            };
            let now = NOW_NS.saturating_add(u64::from(input.u32()));
            store
                .set(&bucket_key(prefix, cfg.revocation_buckets, &sub), &bytes, 0)
                .expect("set");
            let before = RevocationBucket::decode(&bytes);
            if before.is_none() {
                assert_eq!(
                    revocation_cutoff(&store, cfg, &sub),
                    0,
                    "a corrupt bucket revokes"
                );
            }
            revoke_and_check(&store, &sub, now, before.as_ref());
        }
        2 => {
            let value = if input.bool() {
                input.text()
            } else {
                "https://idp.example.com\u{0}jti-1".to_string()
            };
            store
                .set(&seen_key(prefix, &value), &bytes, 0)
                .expect("set");
            let expires = NOW_NS + 600 * SEC;
            let first =
                remember_once(&store, prefix, JTI_TAG, &value, expires, NOW_NS).expect("remember");
            let again =
                remember_once(&store, prefix, JTI_TAG, &value, expires, NOW_NS).expect("remember");
            assert!(!again, "a value was accepted twice");
            if !first {
                // Only a decodable bucket that already holds it may refuse it.
                let held: Value =
                    serde_json::from_slice(&bytes).expect("a refusing bucket decodes");
                assert_eq!(held.get("v"), Some(&json!(1)));
            }
        }
        3 => {
            store.set(&fetch_key(prefix), &bytes, 0).expect("set");
            let blocked = reencode_fetch_state(&bytes).is_some_and(|state| {
                let state: Value = serde_json::from_slice(&state).expect("re-encoded state");
                let live_lease = state["lease"]["deadline_ns"]
                    .as_u64()
                    .is_some_and(|d| NOW_NS < d);
                let backoff = state["retry_ns"].as_u64().is_some_and(|r| NOW_NS < r);
                live_lease || backoff
            });
            let call = Fetcher::new().poll(cfg, &store, "vm-1", NOW_NS);
            assert_eq!(
                call.is_some(),
                !blocked,
                "fetch state {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
        _ => {
            let other = input.bytes().to_vec();
            store.set(&discovery_key(prefix), &bytes, 0).expect("set");
            store.set(&jwks_key(prefix), &other, 0).expect("set");
            let mut provider = Provider::new();
            provider.sync(&store, cfg);
            if let Some((metadata, keys)) = provider.ready() {
                assert!(!keys.is_empty());
                let discovery = provider.discovery().expect("ready with discovery");
                assert_eq!(
                    discovery.issuer,
                    cfg.login.as_ref().expect("login").provider.issuer
                );
                assert!(!metadata.authorization_endpoint.is_empty());
            }
        }
    }
}

fn built_metadata(input: &mut Input) {
    let text = |input: &mut Input| input.bool().then(|| input.text());
    let discovery = DiscoveryRecord {
        v: 1,
        fetched_ns: input.u64(),
        issuer: input.text(),
        authorization_endpoint: text(input),
        jwks_uri: text(input),
        end_session_endpoint: text(input),
        revocation_endpoint: text(input),
    };
    let encoded = serde_json::to_vec(&discovery).expect("encode");
    assert_eq!(DiscoveryRecord::decode(&encoded), Some(discovery));
    let jwks = JwksRecord {
        v: 1,
        fetched_ns: input.u64(),
        keys: (0..input.u8() % 4).map(|_| value(input, 0)).collect(),
    };
    let encoded = serde_json::to_vec(&jwks).expect("encode");
    assert_eq!(
        JwksRecord::decode(&encoded),
        Some(jwks),
        "jwks record round trip"
    );
    let lease = if input.bool() {
        json!({"owner": input.text(), "deadline_ns": input.u64()})
    } else {
        Value::Null
    };
    let failures = input.u32();
    let retry_ns = input.u64();
    let kid_wanted = input.bool();
    let state = json!({"v": 1, "lease": lease, "failures": failures, "retry_ns": retry_ns, "kid_wanted": kid_wanted});
    let bytes = serde_json::to_vec(&state).expect("encode");
    let encoded = reencode_fetch_state(&bytes).expect("a well-formed fetch state decodes");
    assert_eq!(reencode_fetch_state(&encoded), Some(encoded));
}

pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let session = json!({"v":1,"nonce":"AAAAAAAAAAAAAAAAAAAAAA","sub":"alice","state":"live","created_ns":5,
        "expires_ns":3600000000005u64,"access_token":"at-0","access_expires_ns":600000000005u64,
        "refresh_token":"rt-0","validated_ns":5,"attempt_ns":5,"failure":{"class":"timeout","at_ns":4},
        "claims":{"sub":"alice","groups":["a"],"ratio":0.1},
        "lease":{"owner":"vm","job":1,"deadline_ns":10,"waiters":[3,4],"hold_ns":20},"seq":7});
    let bucket = json!({"v":1,"floor_ns":100,"subs":[["alice",1000],["bob",2000]]});
    let discovery = json!({"v":1,"fetched_ns":1,"issuer":"https://idp.example.com","jwks_uri":"https://idp.example.com/jwks"});
    let jwks = json!({"v":1,"fetched_ns":1,"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k"}]});
    let fetch = json!({"v":1,"lease":{"owner":"vm-2","deadline_ns":1},"failures":2,"retry_ns":5,"kid_wanted":true});
    let seen = json!({"v":1,"e":[[1,2],[3,18446744073709551615u64]]});
    let mut seeds = Vec::new();
    for (name, doc) in [
        ("session", &session),
        ("bucket", &bucket),
        ("discovery", &discovery),
        ("jwks", &jwks),
        ("fetch", &fetch),
    ] {
        seeds.push((
            format!("decode-{name}"),
            Output::new()
                .u8(0)
                .rest(doc.to_string().as_bytes())
                .finish(),
        ));
    }
    let mut foreign = session.clone();
    foreign["v"] = json!(2);
    seeds.push((
        "decode-session-v2".into(),
        Output::new()
            .u8(0)
            .rest(foreign.to_string().as_bytes())
            .finish(),
    ));
    let built = Output::new()
        .u8(1)
        .u8(0x3e)
        .text("nonce")
        .text("alice")
        .u64(1)
        .u64(2)
        .text("at")
        .u64(3)
        .text("rt");
    let built = built
        .u64(4)
        .u64(5)
        .text("timeout")
        .u64(6)
        .u8(5)
        .u8(2)
        .text("email")
        .u8(6)
        .text("a@b");
    let built = built
        .text("b")
        .u8(3)
        .u64(0x3ff0_0000_0000_0000)
        .text("vm")
        .u64(7)
        .u64(8)
        .u8(2)
        .u32(1)
        .u32(2)
        .u64(0);
    seeds.push((
        "built-session".into(),
        built.text("id.token.x").u64(9).finish(),
    ));
    let buckets = Output::new()
        .u8(2)
        .u64(10)
        .u8(2)
        .text("alice")
        .u64(NOW_NS)
        .text("bob")
        .u64(5)
        .bool(false)
        .u32(1);
    seeds.push(("built-bucket".into(), buckets.finish()));
    let lease_steps = Output::new()
        .u8(3)
        .u8(0x10)
        .text("n")
        .text("s")
        .u64(0)
        .u64(0)
        .text("a")
        .u64(0)
        .u64(0)
        .u64(0);
    let lease_steps = lease_steps
        .text("vm-b")
        .u64(100)
        .u64(200)
        .u8(1)
        .u32(2)
        .u64(0)
        .u64(0)
        .u64(0)
        .u8(4);
    let lease_steps = lease_steps.u32(50).u8(0).bool(true).u32(1).u32(100).u16(10);
    let lease_steps = lease_steps
        .u32(100)
        .u8(1)
        .bool(true)
        .u32(1)
        .u32(100)
        .u16(10);
    let lease_steps = lease_steps.u32(10).u8(0).bool(false).u32(100).u16(10);
    let lease_steps = lease_steps
        .u32(1000)
        .u8(2)
        .bool(true)
        .u32(3)
        .u32(100)
        .u16(10);
    seeds.push(("leases".into(), lease_steps.finish()));
    for (name, kind, doc) in [
        ("store-session", 0u8, &session),
        ("store-bucket", 1, &bucket),
        ("store-seen", 2, &seen),
        ("store-fetch", 3, &fetch),
        ("store-discovery", 4, &discovery),
    ] {
        let out = Output::new()
            .u8(4)
            .u8(kind)
            .bytes(doc.to_string().as_bytes())
            .bool(false)
            .u32(0);
        seeds.push((name.into(), out.finish()));
    }
    let corrupt = Output::new()
        .u8(4)
        .u8(1)
        .bytes(b"{\"v\":1,\"floor_ns\":")
        .bool(false)
        .u32(0);
    seeds.push(("store-bucket-corrupt".into(), corrupt.finish()));
    let provider = Output::new()
        .u8(4)
        .u8(4)
        .bytes(discovery.to_string().as_bytes())
        .bytes(jwks.to_string().as_bytes());
    seeds.push(("store-provider".into(), provider.finish()));
    let meta = Output::new()
        .u8(5)
        .u64(1)
        .text("https://idp.example.com")
        .bool(true)
        .text("https://a")
        .bool(false)
        .bool(false)
        .bool(true)
        .text("x");
    seeds.push((
        "built-metadata".into(),
        meta.u64(2)
            .u8(1)
            .u8(2)
            .u64(1)
            .bool(true)
            .text("vm")
            .u64(9)
            .u32(1)
            .u64(2)
            .bool(true)
            .finish(),
    ));
    seeds
}
