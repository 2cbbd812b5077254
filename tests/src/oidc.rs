//! A scripted OpenID provider for the login tests: discovery, a JWKS with
//! Ed25519 keys by `kid`, the token endpoint (authorization code with a PKCE
//! S256 check, one use per code; refresh), userinfo, RFC 7009 revocation.
//!
//! The authorization endpoint is not called by the proxy: the test plays
//! the browser and the user, reads the redirect's `state`, `nonce` and
//! `code_challenge`, and asks `ScriptedOidc::authorize` for a code, which
//! the token endpoint later exchanges for an ID token signed here.

use host_sim::{CalloutReply, CalloutRequest};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use vigil::login::pkce::s256_challenge;
use vigil::login::test_signing::{ed25519_jwk, sign_ed25519, sign_ed25519_typed};

pub const OIDC_ISSUER: &str = "https://idp.test";
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/jwks";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const USERINFO_PATH: &str = "/userinfo";
pub const REVOCATION_PATH: &str = "/revoke";
pub const AUTHORIZE_URL: &str = "https://idp.test/authorize";
pub const END_SESSION_URL: &str = "https://idp.test/logout";

/// The application vigil's login tests protect, and their login endpoints.
pub const APP_HOST: &str = "app.test";
pub const CALLBACK: &str = "/callback";
/// The cookie names `login` defaults to (secure cookies, no domain, path `/`).
pub const COOKIE: &str = "__Host-vigil_session";
pub const STATE_COOKIE: &str = "__Host-vigil_session_login";
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// `base_config()` with vigil's own login against the scripted IdP (HS256
/// signing key, `/logout`, `/backchannel`), then `patch` merged over it.
pub fn login_config(patch: Value) -> Value {
    let login = json!({
        "idp": { "issuer": OIDC_ISSUER },
        "login": {
            "redirect_uri": format!("https://{APP_HOST}{CALLBACK}"),
            "scopes": ["openid", "email", "offline_access"],
            "signing_key": { "alg": "HS256", "secret": String::from_utf8_lossy(crate::HS_SECRET) },
            "logout_path": "/logout",
            "backchannel_logout_path": "/backchannel",
            "post_logout_redirect_uri": format!("https://{APP_HOST}/bye"),
            "token_claims": ["email"]
        }
    });
    crate::merge(crate::merge(crate::base_config(), login), patch)
}

/// Two Ed25519 test keys (generated for these tests only).
const KEY_1: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIFWDfVXOVumWCtRywcFYPxGIps/H/p67jbyTkewzTOC1\n-----END PRIVATE KEY-----\n";
const KEY_2: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHSCdrlHFFDNWvPWd0rfZ5zADtBV3llUvekiggQizAZZ\n-----END PRIVATE KEY-----\n";

/// What the user's login at the IdP produced, and how the ID token for it
/// should be (mis)made.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub sub: String,
    pub nonce: String,
    pub code_challenge: String,
    pub redirect_uri: String,
    pub used: bool,
    /// Claims merged over the ID token's (e.g. a wrong `aud` or `nonce`).
    pub id_token_patch: Value,
}

struct SigningKey {
    kid: String,
    pem: &'static str,
    jwk: Value,
}

#[derive(Default)]
struct State {
    users: HashMap<String, Value>,
    codes: HashMap<String, CodeGrant>,
    keys: Vec<SigningKey>,
    /// Index into `keys` of the key that signs now.
    current: usize,
    /// Kids published in the JWKS.
    published: Vec<String>,
    access: HashMap<String, String>,
    refresh: HashMap<String, String>,
    revoked: Vec<String>,
    counter: u64,
    discovery_up: bool,
    /// The token endpoint never answers (only the call timeout ends it).
    token_hangs: bool,
    discovery_calls: u32,
    jwks_calls: u32,
    token_calls: u32,
    userinfo_calls: u32,
    revocation_calls: u32,
    now_s: u64,
}

#[derive(Clone)]
pub struct ScriptedOidc {
    state: Arc<Mutex<State>>,
}

impl Default for ScriptedOidc {
    fn default() -> Self {
        ScriptedOidc::new()
    }
}

fn key(pem: &'static str, kid: &str) -> SigningKey {
    let jwk = ed25519_jwk(pem, kid).unwrap_or_else(|| panic!("test key {kid}"));
    SigningKey { kid: kid.to_string(), pem, jwk }
}

impl ScriptedOidc {
    pub fn new() -> Self {
        let state = State {
            keys: vec![key(KEY_1, "key-1"), key(KEY_2, "key-2")],
            published: vec!["key-1".to_string()],
            discovery_up: true,
            ..State::default()
        };
        ScriptedOidc { state: Arc::new(Mutex::new(state)) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::lock(&self.state)
    }

    pub fn add_user(&self, claims: Value) {
        let sub = claims["sub"].as_str().unwrap_or_default().to_string();
        self.lock().users.insert(sub, claims);
    }

    /// `true`: the token endpoint never answers.
    pub fn set_token_hangs(&self, hangs: bool) {
        self.lock().token_hangs = hangs;
    }

    /// The user is gone at the IdP: userinfo answers 401 for their tokens.
    pub fn remove_user(&self, sub: &str) {
        self.lock().users.remove(sub);
    }

    /// `false`: discovery answers 503 until set back.
    pub fn set_discovery_up(&self, up: bool) {
        self.lock().discovery_up = up;
    }

    /// Rotate: sign with `key-2` from now on and publish both keys.
    pub fn rotate_key(&self) {
        let mut s = self.lock();
        s.current = 1;
        s.published = vec!["key-1".to_string(), "key-2".to_string()];
    }

    /// The user `sub` logs in at the authorization endpoint: `query` is the
    /// redirect's query string. Returns the code the IdP would send back.
    pub fn authorize(&self, query: &str, sub: &str, id_token_patch: Value) -> String {
        let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let get = |k: &str| params.get(k).cloned().unwrap_or_default();
        assert_eq!(get("response_type"), "code");
        assert_eq!(get("code_challenge_method"), "S256");
        let mut s = self.lock();
        s.counter += 1;
        let code = format!("code-{:04}-{}", s.counter, "c".repeat(16));
        s.codes.insert(
            code.clone(),
            CodeGrant {
                sub: sub.to_string(),
                nonce: get("nonce"),
                code_challenge: get("code_challenge"),
                redirect_uri: get("redirect_uri"),
                used: false,
                id_token_patch,
            },
        );
        code
    }

    /// Sign a token (ID token or logout token) with the current key.
    pub fn sign(&self, claims: &Value) -> String {
        let s = self.lock();
        sign_with(&s.keys[s.current], claims)
    }

    /// A logout token (header `typ` "logout+jwt"), signed with the current key.
    pub fn sign_logout(&self, claims: &Value) -> String {
        let s = self.lock();
        sign_logout_with(&s.keys[s.current], claims)
    }

    /// A logout token signed with the key `kid`.
    pub fn sign_logout_with_kid(&self, kid: &str, claims: &Value) -> String {
        let s = self.lock();
        let key = s.keys.iter().find(|k| k.kid == kid).unwrap_or_else(|| panic!("no key {kid}"));
        sign_logout_with(key, claims)
    }

    /// Sign with a key the JWKS does not publish (yet).
    pub fn sign_with_kid(&self, kid: &str, claims: &Value) -> String {
        let s = self.lock();
        let key = s.keys.iter().find(|k| k.kid == kid).unwrap_or_else(|| panic!("no key {kid}"));
        sign_with(key, claims)
    }

    pub fn discovery_calls(&self) -> u32 {
        self.lock().discovery_calls
    }
    pub fn jwks_calls(&self) -> u32 {
        self.lock().jwks_calls
    }
    pub fn token_calls(&self) -> u32 {
        self.lock().token_calls
    }
    pub fn userinfo_calls(&self) -> u32 {
        self.lock().userinfo_calls
    }
    pub fn revocation_calls(&self) -> u32 {
        self.lock().revocation_calls
    }
    /// Refresh tokens revoked through the revocation endpoint.
    pub fn revoked(&self) -> Vec<String> {
        self.lock().revoked.clone()
    }
    /// Refresh tokens issued so far.
    pub fn refresh_tokens(&self) -> Vec<String> {
        self.lock().refresh.keys().cloned().collect()
    }
    /// Every secret the IdP handed out or holds (for "never logged" checks).
    pub fn secrets(&self) -> Vec<String> {
        let s = self.lock();
        let mut out: Vec<String> = s.access.keys().chain(s.refresh.keys()).chain(s.codes.keys()).cloned().collect();
        out.push(crate::idp::CLIENT_SECRET.to_string());
        out
    }

    pub fn handler(&self) -> impl Fn(&CalloutRequest) -> CalloutReply + Send + Sync + 'static {
        let idp = self.clone();
        move |req: &CalloutRequest| idp.answer(req)
    }

    pub fn answer(&self, req: &CalloutRequest) -> CalloutReply {
        let route = req.path().split('?').next().unwrap_or_default().to_string();
        let mut s = self.lock();
        // The IdP's clock is the proxy's (tokens it signs are fresh).
        s.now_s = req.at_ns / 1_000_000_000;
        if route == TOKEN_PATH && s.token_hangs {
            s.token_calls += 1;
            return CalloutReply::no_answer();
        }
        let reply = match route.as_str() {
            DISCOVERY_PATH => s.discovery(),
            JWKS_PATH => s.jwks(),
            TOKEN_PATH => s.token(req),
            USERINFO_PATH => s.userinfo(req),
            REVOCATION_PATH => s.revocation(req),
            _ => CalloutReply::ok(404).body(b"not found".to_vec()),
        };
        reply.after(Duration::from_millis(5))
    }
}

fn sign_with(key: &SigningKey, claims: &Value) -> String {
    sign_ed25519(key.pem, &key.kid, claims).unwrap_or_else(|| panic!("signing with {}", key.kid))
}

fn sign_logout_with(key: &SigningKey, claims: &Value) -> String {
    sign_ed25519_typed(key.pem, &key.kid, "logout+jwt", claims).unwrap_or_else(|| panic!("signing with {}", key.kid))
}

fn json_reply(status: u16, body: Value) -> CalloutReply {
    CalloutReply::ok(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(body.to_string().into_bytes())
}

fn oauth_error(status: u16, code: &str) -> CalloutReply {
    json_reply(status, json!({ "error": code }))
}

fn form(req: &CalloutRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(&req.body).into_owned().collect()
}

fn client_ok(req: &CalloutRequest, form: &HashMap<String, String>) -> bool {
    use base64::Engine;
    use crate::idp::{CLIENT_ID, CLIENT_SECRET};
    if let Some(basic) = req.header("authorization").and_then(|v| v.strip_prefix("Basic ")) {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(basic) else { return false };
        let text = String::from_utf8_lossy(&raw).into_owned();
        let Some((id, secret)) = text.split_once(':') else { return false };
        let dec = |v: &str| url::form_urlencoded::parse(format!("x={v}").as_bytes()).next().map(|(_, v)| v.into_owned());
        return dec(id).as_deref() == Some(CLIENT_ID) && dec(secret).as_deref() == Some(CLIENT_SECRET);
    }
    form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
}

impl State {
    fn next(&mut self, kind: &str) -> String {
        self.counter += 1;
        format!("{kind}-{:06}-{}", self.counter, "s".repeat(20))
    }

    fn discovery(&mut self) -> CalloutReply {
        self.discovery_calls += 1;
        if !self.discovery_up {
            return CalloutReply::ok(503).body(b"down".to_vec());
        }
        json_reply(
            200,
            json!({
                "issuer": OIDC_ISSUER,
                "authorization_endpoint": AUTHORIZE_URL,
                "token_endpoint": format!("{OIDC_ISSUER}{TOKEN_PATH}"),
                "userinfo_endpoint": format!("{OIDC_ISSUER}{USERINFO_PATH}"),
                "jwks_uri": format!("{OIDC_ISSUER}{JWKS_PATH}"),
                "end_session_endpoint": END_SESSION_URL,
                "revocation_endpoint": format!("{OIDC_ISSUER}{REVOCATION_PATH}"),
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"]
            }),
        )
    }

    fn jwks(&mut self) -> CalloutReply {
        self.jwks_calls += 1;
        let keys: Vec<Value> =
            self.keys.iter().filter(|k| self.published.contains(&k.kid)).map(|k| k.jwk.clone()).collect();
        json_reply(200, json!({ "keys": keys }))
    }

    fn token(&mut self, req: &CalloutRequest) -> CalloutReply {
        self.token_calls += 1;
        let form = form(req);
        if req.method() != "POST" || !client_ok(req, &form) {
            return oauth_error(401, "invalid_client");
        }
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => self.code_exchange(&form),
            Some("refresh_token") => {
                let presented = form.get("refresh_token").cloned().unwrap_or_default();
                let Some(sub) = self.refresh.get(&presented).cloned() else { return oauth_error(400, "invalid_grant") };
                if self.revoked.contains(&presented) {
                    return oauth_error(400, "invalid_grant");
                }
                self.revoked.push(presented);
                let (access, refresh) = self.issue(&sub);
                json_reply(200, json!({ "access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": 300 }))
            }
            _ => oauth_error(400, "unsupported_grant_type"),
        }
    }

    fn issue(&mut self, sub: &str) -> (String, String) {
        let access = self.next("at");
        let refresh = self.next("rt");
        self.access.insert(access.clone(), sub.to_string());
        self.refresh.insert(refresh.clone(), sub.to_string());
        (access, refresh)
    }

    fn code_exchange(&mut self, form: &HashMap<String, String>) -> CalloutReply {
        let code = form.get("code").cloned().unwrap_or_default();
        let Some(grant) = self.codes.get_mut(&code) else { return oauth_error(400, "invalid_grant") };
        // One use per code (RFC 6749 §4.1.2).
        if grant.used {
            return oauth_error(400, "invalid_grant");
        }
        grant.used = true;
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        if s256_challenge(&verifier) != grant.code_challenge {
            return oauth_error(400, "invalid_grant");
        }
        if form.get("redirect_uri") != Some(&grant.redirect_uri) {
            return oauth_error(400, "invalid_grant");
        }
        let grant = grant.clone();
        let (access, refresh) = self.issue(&grant.sub);
        let mut claims = json!({
            "iss": OIDC_ISSUER,
            "aud": crate::idp::CLIENT_ID,
            "sub": grant.sub,
            "nonce": grant.nonce,
            "iat": self.now_s,
            "exp": self.now_s + 300,
        });
        if let (Some(c), Some(p)) = (claims.as_object_mut(), grant.id_token_patch.as_object()) {
            for (k, v) in p {
                c.insert(k.clone(), v.clone());
            }
        }
        let id_token = sign_with(&self.keys[self.current], &claims);
        json_reply(
            200,
            json!({ "access_token": access, "refresh_token": refresh, "id_token": id_token, "token_type": "Bearer", "expires_in": 300 }),
        )
    }

    fn userinfo(&mut self, req: &CalloutRequest) -> CalloutReply {
        self.userinfo_calls += 1;
        let token = req.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
        match self.access.get(token).and_then(|sub| self.users.get(sub)) {
            Some(claims) => json_reply(200, claims.clone()),
            None => CalloutReply::ok(401).header("www-authenticate", "Bearer error=\"invalid_token\""),
        }
    }

    fn revocation(&mut self, req: &CalloutRequest) -> CalloutReply {
        self.revocation_calls += 1;
        let form = form(req);
        if !client_ok(req, &form) {
            return oauth_error(401, "invalid_client");
        }
        if let Some(token) = form.get("token") {
            self.revoked.push(token.clone());
        }
        CalloutReply::ok(200)
    }
}
