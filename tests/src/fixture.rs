//! A host-sim running `dist/vigil.wasm` against a scripted IdP, with helpers
//! to log users in (seed the session record the login flow would write) and
//! to send requests the way a browser or an API client would.

use crate::idp::ScriptedIdp;
use crate::{base_config, merge, nginx, vigil_wasm, AUDIENCE, HS_SECRET, ISSUER};
use host_sim::{CalloutRequest, Cluster, Outcome, Profile, Request, Sim, StreamId};
use serde_json::{json, Value};
use std::time::Duration;
use vigil::config::Config;
use vigil::session::{create_session, NewSession};
use vigil::store::{SharedStore, StoreError};
use vigil::token::{MintClaims, Signer};

pub const SECOND_NS: u64 = 1_000_000_000;

/// Options for a fixture; `Default` is 4 Envoy workers, seed 1.
#[derive(Clone)]
pub struct Options {
    pub workers: usize,
    pub profile: Profile,
    pub seed: u64,
    pub config_patch: Value,
}

impl Default for Options {
    fn default() -> Self {
        Options { workers: 4, profile: Profile::Envoy, seed: 1, config_patch: json!({}) }
    }
}

/// The user's side of a login: the downstream token and the session id.
#[derive(Debug, Clone)]
pub struct Login {
    pub sub: String,
    pub token: String,
    pub sid: String,
    pub slot: u32,
}

pub struct Fixture {
    pub sim: Sim,
    pub idp: ScriptedIdp,
    pub cfg: Config,
    pub config_json: Value,
    pub profile: Profile,
    seq: u64,
}

/// An nginx worker crash is a test failure (host-sim would also panic when the `Sim` is dropped).
impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let crashes = self.sim.host_crashes();
            assert!(crashes.is_empty(), "vigil crashed an nginx worker: {crashes:#?}\n{}", self.sim.logs_text());
        }
    }
}

/// host-sim's shared data seen through the filter's own store trait, so
/// tests write records with the filter's codecs (seeding only: no races).
pub struct SimStore<'a>(pub &'a Sim);

impl SharedStore for SimStore<'_> {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.0.shared_data().get(key)
    }
    fn set(&self, key: &str, value: &[u8], _cas: u32) -> Result<(), StoreError> {
        self.0.shared_data().set(key, value);
        Ok(())
    }
}

impl Fixture {
    pub fn new(patch: Value) -> Fixture {
        Fixture::with(Options { config_patch: patch, ..Options::default() })
    }

    /// 4 workers of `profile`, seed 1.
    pub fn on(profile: Profile, patch: Value) -> Fixture {
        Fixture::with(Options { profile, config_patch: patch, ..Options::default() })
    }

    pub fn with(opts: Options) -> Fixture {
        let mut config_json = nginx::config_for(opts.profile, merge(base_config(), opts.config_patch.clone()));
        if opts.config_patch.get("nginx").is_some_and(Value::is_null) {
            // `"nginx": null`: vigil's Envoy configuration, as it is, on the nginx profile.
            if let Some(map) = config_json.as_object_mut() {
                map.remove("nginx");
            }
        }
        let idp = ScriptedIdp::new();
        let sim = nginx::builder(Sim::builder(vigil_wasm()), opts.profile, &config_json, Cluster::scripted(idp.handler()))
            .workers(opts.workers)
            .seed(opts.seed)
            .build()
            .unwrap_or_else(|e| panic!("vigil did not start: {e:?}"));
        let cfg = parse_config(&config_json);
        Fixture { sim, idp, cfg, config_json, profile: opts.profile, seq: 0 }
    }

    /// What vigil's nginx control flow adds to a paused request's wait, at most: a call the root would chain
    /// from a call response waits for the next tick, and a result reaches a paused request with its next wait
    /// call: two poll intervals (none on Envoy).
    pub fn nginx_slack(&self) -> Duration {
        match self.profile {
            Profile::Envoy => Duration::ZERO,
            Profile::Nginx => self.cfg.poll_interval * 2,
        }
    }

    /// Callouts to the IdP (on nginx, paused requests' wait calls left out).
    pub fn idp_callouts(&self) -> Vec<CalloutRequest> {
        nginx::idp_callouts(&self.sim)
    }

    pub fn now_ns(&self) -> u64 {
        self.sim.now_ns()
    }

    /// Log `sub` in: a grant at the IdP, the session record the login flow
    /// writes, and a downstream token for it.
    pub fn login(&mut self, claims: Value) -> Login {
        let sub = claims["sub"].as_str().unwrap_or("user").to_string();
        self.idp.add_user(claims.clone());
        let issued = self.idp.login(&sub);
        let now = self.now_ns();
        self.seed_session(&sub, &issued.access_token, now + issued.expires_in_s * SECOND_NS, Some(&issued.refresh_token), Some(claims))
    }

    /// Write a session record directly (for cases a login cannot produce).
    pub fn seed_session(
        &mut self,
        sub: &str,
        access_token: &str,
        access_expires_ns: u64,
        refresh_token: Option<&str>,
        claims: Option<Value>,
    ) -> Login {
        let now = self.now_ns();
        let cfg = self.cfg.clone();
        self.seq += 1;
        let mut n = self.seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut random = move || {
            n = n.wrapping_add(0x2545_f491_4f6c_dd1d).rotate_left(17);
            n
        };
        let created = create_session(
            &SimStore(&self.sim),
            &cfg,
            NewSession {
                sub: sub.to_string(),
                access_token: access_token.to_string(),
                access_expires_ns,
                refresh_token: refresh_token.map(str::to_string),
                expires_ns: now + 8 * 3600 * SECOND_NS,
                claims,
            },
            &mut random,
            now,
        )
        .unwrap_or_else(|e| panic!("seeding a session failed: {e}"));
        let token = self.mint(sub, &created.sid, now);
        Login { sub: sub.to_string(), token, sid: created.sid, slot: created.slot }
    }

    /// A downstream token as vigil's login would mint it.
    pub fn mint(&self, sub: &str, sid: &str, iat_ns: u64) -> String {
        mint_with(HS_SECRET, Some("k1"), ISSUER, AUDIENCE, sub, sid, iat_ns, iat_ns / SECOND_NS + 3600)
    }

    /// GET /api with the token as Bearer on worker `vm`.
    pub fn get(&mut self, vm: usize, token: &str) -> StreamId {
        self.sim.send(vm, Request::get("/api").header("authorization", format!("Bearer {token}")))
    }

    /// Send and return the outcome right away (no clock advance).
    pub fn get_outcome(&mut self, vm: usize, token: &str) -> Outcome {
        let s = self.get(vm, token);
        self.sim.outcome(s)
    }

    pub fn advance(&mut self, d: Duration) {
        self.sim.advance(d);
    }

    /// The session record as the filter stored it.
    pub fn session(&self, login: &Login) -> Option<vigil::session::Session> {
        let key = vigil::session::session_key(&self.cfg.shared_data_prefix, login.slot);
        let (bytes, _) = self.sim.shared_data().get(&key)?;
        vigil::session::Session::decode(&bytes)
    }
}

#[allow(clippy::too_many_arguments)]
pub fn mint_with(secret: &[u8], kid: Option<&str>, iss: &str, aud: &str, sub: &str, sid: &str, iat_ns: u64, exp_s: u64) -> String {
    let signer = Signer::hs256(secret, kid.map(str::to_string)).unwrap_or_else(|e| panic!("signer: {e:?}"));
    signer
        .mint(&MintClaims {
            iss: iss.to_string(),
            aud: aud.to_string(),
            sub: sub.to_string(),
            sid: sid.to_string(),
            iat_ns,
            exp_s,
            extra: serde_json::Map::new(),
        })
        .unwrap_or_else(|e| panic!("mint: {e:?}"))
}

pub fn parse_config(json: &Value) -> Config {
    vigil::config::parse(json.to_string().as_bytes(), &|_| None).unwrap_or_else(|e| panic!("config rejected: {e}"))
}

/// The claims of a typical user.
pub fn user(sub: &str) -> Value {
    json!({ "sub": sub, "email": format!("{sub}@example.com"), "email_verified": true, "groups": ["staff", "dev"] })
}
