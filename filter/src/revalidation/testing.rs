//! Fixtures shared by the unit tests of `session` and `revalidation`.

use std::time::Duration;

pub(crate) const SECOND: u64 = 1_000_000_000;

use crate::config::{
    AuthorizationRules, ClientAuth, Config, DownstreamConfig, Endpoint, FailurePolicy, IdpConfig,
    KeyMaterial, VerificationKey,
};

fn endpoint(path: &str) -> Endpoint {
    Endpoint {
        url: format!("https://idp.example.com{path}"),
        path: path.to_owned(),
        authority: "idp.example.com".to_owned(),
        scheme: "https".to_owned(),
    }
}

/// The documented defaults with a test IdP.
pub(crate) fn test_config() -> Config {
    Config {
        revalidate_interval: Duration::from_secs(60),
        revalidate_timeout: Duration::from_secs(10),
        on_failure: FailurePolicy::Allow,
        max_staleness: None,
        refresh_margin: Duration::from_secs(30),
        idp: IdpConfig {
            upstream: "idp".to_owned(),
            token_endpoint: endpoint("/token"),
            userinfo_endpoint: endpoint("/userinfo"),
            client_id: "vigil client".to_owned(),
            client_secret: "s3cr&t:x".to_owned(),
            client_auth: ClientAuth::SecretBasic,
        },
        downstream: DownstreamConfig {
            issuer: "vigil".to_owned(),
            audience: "app".to_owned(),
            algorithms: vec!["HS256".to_owned()],
            keys: vec![VerificationKey {
                kid: None,
                material: KeyMaterial::Hs256(b"key".to_vec()),
            }],
            leeway: Duration::from_secs(30),
            cookie_name: "vigil_session".to_owned(),
            header: "authorization".to_owned(),
        },
        rules: AuthorizationRules::default(),
        identity_headers: Vec::new(),
        session_headers: Default::default(),
        shared_data_prefix: "vigil:".to_owned(),
        max_sessions: 10_000,
        revocation_buckets: 1024,
        max_token_lifetime: Duration::from_secs(12 * 3600),
        poll_interval: Duration::from_millis(50),
        wake_queues: true,
        host: crate::config::HostKind::Envoy,
        login: None,
        mcp: None,
    }
}

/// A deterministic `random` source (splitmix64).
pub(crate) fn seq_random(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `seq_random` as the login code takes it (a source that never fails).
pub(crate) fn seq_entropy(seed: u64) -> impl FnMut() -> Option<u64> {
    let mut random = seq_random(seed);
    move || Some(random())
}

use std::collections::HashSet;

use super::classify::IdpAnswer;
use super::job::{CallKind, IdpCall};

pub(crate) fn json_answer(status: u16, body: &str) -> IdpAnswer {
    IdpAnswer::Response {
        status,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: body.as_bytes().to_vec(),
    }
}

pub(crate) fn header<'a>(call: &'a IdpCall, name: &str) -> Option<&'a str> {
    call.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An IdP with rotating refresh tokens. With `reuse_detection` a refresh
/// token presented twice revokes the whole grant (what makes uncoalesced
/// refreshes log users out); without it a stale token just gets
/// `invalid_grant`.
pub(crate) struct ScriptedIdp {
    pub sub: String,
    pub reuse_detection: bool,
    pub current_refresh: String,
    pub current_access: String,
    pub used: HashSet<String>,
    pub grant_revoked: bool,
    pub refresh_calls: usize,
    pub userinfo_calls: usize,
    /// Served by userinfo on top of `sub`.
    pub extra_claims: serde_json::Value,
    generation: usize,
}

impl ScriptedIdp {
    pub(crate) fn new(sub: &str, refresh: &str, access: &str) -> Self {
        Self {
            sub: sub.to_owned(),
            reuse_detection: true,
            current_refresh: refresh.to_owned(),
            current_access: access.to_owned(),
            used: HashSet::new(),
            grant_revoked: false,
            refresh_calls: 0,
            userinfo_calls: 0,
            extra_claims: serde_json::json!({}),
            generation: 0,
        }
    }

    pub(crate) fn answer(&mut self, call: &IdpCall) -> IdpAnswer {
        match call.kind {
            CallKind::Refresh => self.refresh(call),
            CallKind::Userinfo => self.userinfo(call),
        }
    }

    fn refresh(&mut self, call: &IdpCall) -> IdpAnswer {
        self.refresh_calls += 1;
        let presented = form_urlencoded::parse(&call.body)
            .find(|(k, _)| k == "refresh_token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let invalid = json_answer(400, r#"{"error":"invalid_grant"}"#);
        if self.grant_revoked {
            return invalid;
        }
        if !self.used.insert(presented.clone()) && self.reuse_detection {
            self.grant_revoked = true;
            return invalid;
        }
        if presented != self.current_refresh {
            return invalid;
        }
        self.generation += 1;
        self.current_refresh = format!("rt-{}", self.generation);
        self.current_access = format!("at-{}", self.generation);
        let body = serde_json::json!({
            "access_token": self.current_access,
            "refresh_token": self.current_refresh,
            "expires_in": 300,
            "token_type": "Bearer",
        });
        json_answer(200, &body.to_string())
    }

    fn userinfo(&mut self, call: &IdpCall) -> IdpAnswer {
        self.userinfo_calls += 1;
        let expected = format!("Bearer {}", self.current_access);
        if self.grant_revoked || header(call, "authorization") != Some(expected.as_str()) {
            return json_answer(401, "");
        }
        let mut claims = self.extra_claims.clone();
        if let Some(map) = claims.as_object_mut() {
            map.insert("sub".to_owned(), serde_json::json!(self.sub));
        }
        json_answer(200, &claims.to_string())
    }
}

/// Logs "alice" in at `now_ns` (tokens `at-0`/`rt-0`, one-hour session).
pub(crate) fn login_alice(
    store: &dyn crate::store::SharedStore,
    cfg: &Config,
    random: &mut dyn FnMut() -> u64,
    access_expires_ns: u64,
    now_ns: u64,
) -> crate::session::CreatedSession {
    let new = crate::session::NewSession {
        sub: "alice".into(),
        access_token: "at-0".into(),
        access_expires_ns,
        refresh_token: Some("rt-0".into()),
        expires_ns: now_ns + 3_600 * SECOND,
        claims: Some(serde_json::json!({"sub": "alice"})),
    };
    match crate::session::create_session(store, cfg, new, random, now_ns) {
        Ok(created) => created,
        Err(e) => unreachable!("login failed: {e}"),
    }
}
