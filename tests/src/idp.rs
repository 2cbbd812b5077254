//! A scripted OpenID provider for host-sim's `Cluster::scripted`.
//!
//! It is strict where the real ones are strict, because that is what the
//! filter must survive: refresh tokens rotate on every use and presenting a
//! rotated-out one revokes the whole grant (reuse detection, as
//! oidc-provider does); userinfo checks the bearer access token; users can be
//! deprovisioned; faults can be injected per endpoint for a number of calls.

use host_sim::{CalloutReply, CalloutRequest};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub const TOKEN_PATH: &str = "/oauth/token";
pub const USERINFO_PATH: &str = "/userinfo";
pub const CLIENT_ID: &str = "vigil-test";
pub const CLIENT_SECRET: &str = "test-client-secret-0123456789";

/// A fault answered instead of the real reply.
#[derive(Debug, Clone)]
pub enum Fault {
    Status(u16, &'static str),
    /// Never answer: only the callout timeout ends the call.
    Hang,
    Reset,
    ConnectFailure,
    /// Answer normally, but after this delay.
    Delay(Duration),
}

#[derive(Debug, Clone)]
struct Grant {
    sub: String,
    /// The only refresh token of this grant that is still accepted.
    live_refresh: String,
    access_tokens: Vec<String>,
    revoked: bool,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, Value>,
    disabled: HashMap<String, bool>,
    grants: Vec<Grant>,
    /// Refresh tokens already rotated out, with their grant.
    rotated: HashMap<String, usize>,
    counter: u64,
    faults: HashMap<&'static str, (Fault, u32)>,
    token_calls: u32,
    refresh_calls: u32,
    userinfo_calls: u32,
    reuse_detected: u32,
    access_ttl_s: u64,
    /// Network + processing time of every answer (faults aside).
    latency: Duration,
}

/// Shared handle: clone it into the cluster closure and keep one in the test.
#[derive(Clone, Default)]
pub struct ScriptedIdp {
    state: Arc<Mutex<State>>,
}

/// Tokens of one login, as the test seeds them into a session record.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in_s: u64,
}

impl ScriptedIdp {
    pub fn new() -> Self {
        let idp = ScriptedIdp::default();
        {
            let mut s = idp.lock();
            s.access_ttl_s = 300;
            s.latency = Duration::from_millis(5);
        }
        idp
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::lock(&self.state)
    }

    /// Add (or replace) a user with these userinfo claims (must include `sub`).
    pub fn add_user(&self, claims: Value) {
        let sub = claims["sub"].as_str().unwrap_or_default().to_string();
        let mut s = self.lock();
        s.users.insert(sub.clone(), claims);
        s.disabled.insert(sub, false);
    }

    pub fn set_claims(&self, sub: &str, claims: Value) {
        self.lock().users.insert(sub.to_string(), claims);
    }

    /// Lifetime of access tokens issued from now on.
    pub fn set_access_ttl(&self, ttl_s: u64) {
        self.lock().access_ttl_s = ttl_s;
    }

    /// Time every answer takes (default 5 ms).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Suspend the user: refresh answers invalid_grant, userinfo 401.
    pub fn deprovision(&self, sub: &str) {
        let mut s = self.lock();
        s.disabled.insert(sub.to_string(), true);
        for g in s.grants.iter_mut().filter(|g| g.sub == sub) {
            g.revoked = true;
        }
    }

    pub fn reenable(&self, sub: &str) {
        self.lock().disabled.insert(sub.to_string(), false);
    }

    /// The next `count` calls to `path` get `fault`.
    pub fn inject(&self, path: &'static str, fault: Fault, count: u32) {
        self.lock().faults.insert(path, (fault, count));
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// A login: a new grant with a fresh access and refresh token.
    pub fn login(&self, sub: &str) -> IssuedTokens {
        let mut s = self.lock();
        let access = s.next_token("at");
        let refresh = s.next_token("rt");
        let ttl = s.access_ttl_s;
        s.grants.push(Grant {
            sub: sub.to_string(),
            live_refresh: refresh.clone(),
            access_tokens: vec![access.clone()],
            revoked: false,
        });
        IssuedTokens { access_token: access, refresh_token: refresh, expires_in_s: ttl }
    }

    /// Every access and refresh token this IdP ever issued (to check that
    /// none of them reaches a log line).
    pub fn issued_secrets(&self) -> Vec<String> {
        let s = self.lock();
        let mut all: Vec<String> = s.rotated.keys().cloned().collect();
        for grant in &s.grants {
            all.push(grant.live_refresh.clone());
            all.extend(grant.access_tokens.iter().cloned());
        }
        all
    }

    pub fn token_calls(&self) -> u32 {
        self.lock().token_calls
    }
    pub fn refresh_calls(&self) -> u32 {
        self.lock().refresh_calls
    }
    pub fn userinfo_calls(&self) -> u32 {
        self.lock().userinfo_calls
    }
    /// How many times a refresh token was presented a second time.
    pub fn reuse_detected(&self) -> u32 {
        self.lock().reuse_detected
    }

    /// The closure to hand to `Cluster::scripted`.
    pub fn handler(&self) -> impl Fn(&CalloutRequest) -> CalloutReply + Send + Sync + 'static {
        let idp = self.clone();
        move |req: &CalloutRequest| idp.answer(req)
    }

    pub fn answer(&self, req: &CalloutRequest) -> CalloutReply {
        let path = req.path().to_string();
        let route = path.split('?').next().unwrap_or_default().to_string();
        let mut s = self.lock();
        let mut delay = None;
        let key = if route == TOKEN_PATH { TOKEN_PATH } else { USERINFO_PATH };
        if let Some((fault, left)) = s.faults.get_mut(key) {
            if *left > 0 {
                *left -= 1;
                match fault.clone() {
                    Fault::Status(code, body) => {
                        count_call(&mut s, &route);
                        return CalloutReply::ok(code)
                            .header("content-type", "application/json")
                            .body(body.as_bytes().to_vec())
                            .after(s.latency);
                    }
                    Fault::Hang => return CalloutReply::no_answer(),
                    Fault::Reset => return CalloutReply::reset().after(s.latency),
                    Fault::ConnectFailure => return CalloutReply::connect_failure(),
                    Fault::Delay(d) => delay = Some(d),
                }
            }
        }
        let reply = if route == TOKEN_PATH {
            s.token_endpoint(req)
        } else if route == USERINFO_PATH {
            s.userinfo_endpoint(req)
        } else {
            CalloutReply::ok(404).body(b"not found".to_vec())
        };
        reply.after(delay.unwrap_or(s.latency))
    }
}

fn count_call(s: &mut State, route: &str) {
    if route == TOKEN_PATH {
        s.token_calls += 1;
    } else {
        s.userinfo_calls += 1;
    }
}

fn json_reply(status: u16, body: Value) -> CalloutReply {
    CalloutReply::ok(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(body.to_string().into_bytes())
}

fn oauth_error(status: u16, code: &str) -> CalloutReply {
    json_reply(status, json!({ "error": code, "error_description": "scripted" }))
}

fn form_decode(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

impl State {
    fn next_token(&mut self, kind: &str) -> String {
        self.counter += 1;
        format!("{kind}-{:08}-{}", self.counter, "x".repeat(24))
    }

    fn client_ok(req: &CalloutRequest, form: &HashMap<String, String>) -> bool {
        use base64::Engine;
        if let Some(basic) = req.header("authorization").and_then(|v| v.strip_prefix("Basic ")) {
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(basic) else { return false };
            let Ok(text) = String::from_utf8(raw) else { return false };
            let Some((id, secret)) = text.split_once(':') else { return false };
            let dec = |v: &str| url::form_urlencoded::parse(format!("x={v}").as_bytes()).next().map(|(_, v)| v.into_owned());
            return dec(id).as_deref() == Some(CLIENT_ID) && dec(secret).as_deref() == Some(CLIENT_SECRET);
        }
        form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
    }

    fn token_endpoint(&mut self, req: &CalloutRequest) -> CalloutReply {
        self.token_calls += 1;
        if req.method() != "POST" {
            return oauth_error(405, "invalid_request");
        }
        let form = form_decode(&req.body);
        if !Self::client_ok(req, &form) {
            return oauth_error(401, "invalid_client");
        }
        if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
            return oauth_error(400, "unsupported_grant_type");
        }
        self.refresh_calls += 1;
        let Some(presented) = form.get("refresh_token").cloned() else {
            return oauth_error(400, "invalid_request");
        };
        if let Some(&gi) = self.rotated.get(&presented) {
            // A rotated-out token came back: someone redeemed it twice. Like
            // oidc-provider, revoke the whole grant (its newest tokens too).
            self.reuse_detected += 1;
            if let Some(g) = self.grants.get_mut(gi) {
                g.revoked = true;
            }
            return oauth_error(400, "invalid_grant");
        }
        let Some(gi) = self.grants.iter().position(|g| g.live_refresh == presented) else {
            return oauth_error(400, "invalid_grant");
        };
        let ttl = self.access_ttl_s;
        let (sub, revoked) = match self.grants.get(gi) {
            Some(g) => (g.sub.clone(), g.revoked),
            None => return oauth_error(400, "invalid_grant"),
        };
        if revoked || self.disabled.get(&sub).copied().unwrap_or(true) {
            return oauth_error(400, "invalid_grant");
        }
        let access = self.next_token("at");
        let refresh = self.next_token("rt");
        if let Some(g) = self.grants.get_mut(gi) {
            g.live_refresh = refresh.clone();
            g.access_tokens.push(access.clone());
        }
        self.rotated.insert(presented, gi);
        json_reply(
            200,
            json!({
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": ttl,
                "refresh_token": refresh,
                "scope": "openid profile email offline_access"
            }),
        )
    }

    fn userinfo_endpoint(&mut self, req: &CalloutRequest) -> CalloutReply {
        self.userinfo_calls += 1;
        let Some(token) = req.header("authorization").and_then(|v| v.strip_prefix("Bearer ")) else {
            return CalloutReply::ok(401).header("www-authenticate", "Bearer error=\"invalid_token\"");
        };
        let grant = self.grants.iter().find(|g| g.access_tokens.iter().any(|a| a == token));
        let Some(g) = grant else {
            return CalloutReply::ok(401).header("www-authenticate", "Bearer error=\"invalid_token\"");
        };
        if g.revoked || self.disabled.get(&g.sub).copied().unwrap_or(true) {
            return CalloutReply::ok(401).header("www-authenticate", "Bearer error=\"invalid_token\"");
        }
        match self.users.get(&g.sub) {
            Some(claims) => json_reply(200, claims.clone()),
            None => CalloutReply::ok(401).header("www-authenticate", "Bearer error=\"invalid_token\""),
        }
    }
}
