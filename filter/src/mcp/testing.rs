//! Fixtures of the MCP unit tests.
#![allow(clippy::panic)]

use std::time::Duration;

use super::keys::{extract, McpKeys};
use crate::config::{CimdConfig, Config, McpClientAuth, McpClientConfig, McpConfig, McpPaths, McpResource};

pub(crate) const CI_SECRET: &str = "ci-bot secret, at least 32 bytes long";
pub(crate) const SECOND: u64 = 1_000_000_000;

pub(crate) fn cimd_config() -> CimdConfig {
    CimdConfig {
        upstream: "cimd_proxy".into(),
        allowed_hosts: Vec::new(),
        timeout: Duration::from_secs(5),
        cache_ttl: Duration::from_secs(300),
        max_document_size: 5120,
        cache_entries: 64,
    }
}

/// Two resources (one with a required scope and a name, one at a root URL
/// serving `/tools`), two configured clients (a public one asking for
/// consent, a trusted confidential one), registration and documents on.
pub(crate) fn mcp_config() -> McpConfig {
    McpConfig {
        issuer: "https://auth.example.com".into(),
        issuer_origin: "https://auth.example.com".into(),
        issuer_path: String::new(),
        resources: vec![
            McpResource {
                resource: "https://mcp.example.com/mcp".into(),
                authority: "mcp.example.com".into(),
                path: "/mcp".into(),
                paths: vec!["/mcp".into()],
                scopes: vec!["mcp:tools".into()],
                name: Some("Example MCP".into()),
                metadata_url: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp".into(),
            },
            McpResource {
                resource: "https://tools.example.com".into(),
                authority: "tools.example.com".into(),
                path: String::new(),
                paths: vec!["/tools".into()],
                scopes: Vec::new(),
                name: None,
                metadata_url: "https://tools.example.com/.well-known/oauth-protected-resource".into(),
            },
        ],
        scopes: vec!["mcp:tools".into(), "mcp:admin".into()],
        access_token_lifetime: Duration::from_secs(300),
        refresh_token_lifetime: Duration::from_secs(8 * 3600),
        code_lifetime: Duration::from_secs(60),
        paths: McpPaths {
            authorize: "/oauth2/authorize".into(),
            token: "/oauth2/token".into(),
            register: "/oauth2/register".into(),
            revoke: "/oauth2/revoke".into(),
        },
        clients: vec![
            McpClientConfig {
                client_id: "inspector".into(),
                name: Some("MCP Inspector".into()),
                redirect_uris: vec!["http://localhost:6274/oauth/callback".into()],
                auth: McpClientAuth::None,
                refresh: true,
                consent: true,
            },
            McpClientConfig {
                client_id: "ci-bot".into(),
                name: Some("CI bot".into()),
                redirect_uris: vec!["https://ci.example.com/cb".into()],
                auth: McpClientAuth::SecretBasic(CI_SECRET.into()),
                refresh: true,
                consent: false,
            },
        ],
        dynamic_registration: true,
        cimd: Some(cimd_config()),
        prk: extract(b"the test mcp secret, 32 bytes or more"),
        refresh_families: 64,
    }
}

pub(crate) fn test_keys() -> McpKeys {
    McpKeys::expand(&mcp_config().prk)
}

/// `login::testkeys::login_config` (HS256 signing key `vigil`) with `mcp`.
pub(crate) fn config() -> Config {
    let mut cfg = crate::login::testkeys::login_config();
    cfg.mcp = Some(mcp_config());
    cfg
}

/// PKCE verifier and S256 challenge of the tests.
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub(crate) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub(crate) const RESOURCE: &str = "https://mcp.example.com/mcp";

/// One proxy: configuration, the MCP VM, shared data, a deterministic
/// random source.
pub(crate) struct Harness {
    pub cfg: Config,
    pub vm: super::McpVm,
    pub store: crate::store::MemoryStore,
    seed: std::cell::Cell<u64>,
}

impl Harness {
    pub(crate) fn new() -> Harness {
        Harness::with(config())
    }

    pub(crate) fn with(cfg: Config) -> Harness {
        let vm = match super::McpVm::new(&cfg) {
            Some(Ok(vm)) => vm,
            _ => panic!("no mcp vm"),
        };
        Harness { cfg, vm, store: crate::store::MemoryStore::new(), seed: std::cell::Cell::new(1) }
    }

    pub(crate) fn ctx(&self) -> super::McpContext<'_> {
        match self.vm.context(&self.cfg) {
            Some(ctx) => ctx,
            None => panic!("no mcp context"),
        }
    }

    /// splitmix64.
    pub(crate) fn next(&self) -> u64 {
        let state = self.seed.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.seed.set(state);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A live vigil session of `sub` (as a login creates it) and the claims
    /// of its cookie.
    pub(crate) fn session(&self, sub: &str, now_ns: u64) -> crate::token::DownstreamClaims {
        let expires_ns = now_ns + 8 * 3600 * SECOND;
        let new = crate::session::NewSession {
            sub: sub.to_string(),
            access_token: "upstream-at".into(),
            access_expires_ns: now_ns + 600 * SECOND,
            refresh_token: Some("upstream-rt".into()),
            expires_ns,
            claims: None,
        };
        let created = match crate::session::create_session(&self.store, &self.cfg, new, &mut || self.next(), now_ns) {
            Ok(created) => created,
            Err(e) => panic!("session: {e}"),
        };
        crate::token::DownstreamClaims {
            sub: sub.to_string(),
            sid: created.sid,
            iat_ns: crate::session::mint_time_ns(&self.store, &self.cfg, sub, now_ns),
            exp: expires_ns / SECOND,
            extra: serde_json::Map::new(),
        }
    }

    pub(crate) fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> super::McpRequest {
        let mut all: Vec<(String, String)> = vec![("host".into(), "auth.example.com".into())];
        all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        super::McpRequest::new(method, path, all, body.to_vec())
    }

    pub(crate) fn serve(
        &self,
        req: &super::McpRequest,
        session: Option<&crate::token::DownstreamClaims>,
        now_ns: u64,
    ) -> super::Served {
        let Some(route) = super::route(self.ctx().mcp, &req.path, &req.authority) else {
            panic!("no route for {}", req.path);
        };
        super::serve(&self.ctx(), &self.store, route, req, session, &mut || Some(self.next()), now_ns)
    }

    pub(crate) fn reply(&self, req: &super::McpRequest, session: Option<&crate::token::DownstreamClaims>, now_ns: u64) -> crate::reply::LocalReply {
        match self.serve(req, session, now_ns) {
            super::Served::Reply(reply) => reply,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// `GET` of the authorization endpoint with these parameters.
    pub(crate) fn authorize(&self, params: &[(&str, &str)], session: Option<&crate::token::DownstreamClaims>, now_ns: u64) -> super::Served {
        let url = format!("/oauth2/authorize?{}", crate::login::form::serialize(params));
        self.serve(&self.request("GET", &url, &[("accept", "text/html")], b""), session, now_ns)
    }

    /// A form `POST` to `path`.
    pub(crate) fn post(&self, path: &str, params: &[(&str, &str)], headers: &[(&str, &str)], now_ns: u64) -> crate::reply::LocalReply {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        let body = crate::login::form::serialize(params);
        self.reply(&self.request("POST", path, &all, body.as_bytes()), None, now_ns)
    }

    /// The consent page's `Allow` (or `Deny`), same-origin.
    pub(crate) fn decide(&self, page: &crate::reply::LocalReply, decision: &str, session: &crate::token::DownstreamClaims, now_ns: u64) -> crate::reply::LocalReply {
        let body = format!("ticket={}&decision={decision}", crate::login::form::encode(&ticket_of(page)));
        let req = self.request(
            "POST",
            "/oauth2/authorize",
            &[("content-type", "application/x-www-form-urlencoded"), ("sec-fetch-site", "same-origin")],
            body.as_bytes(),
        );
        self.reply(&req, Some(session), now_ns)
    }
}

/// The consent ticket in a consent page.
pub(crate) fn ticket_of(page: &crate::reply::LocalReply) -> String {
    let html = String::from_utf8_lossy(&page.body);
    let Some(start) = html.find("name=ticket value=\"") else { panic!("no ticket in {html}") };
    let rest = &html[start + "name=ticket value=\"".len()..];
    rest[..rest.find('"').unwrap_or(0)].to_string()
}

pub(crate) fn header<'a>(reply: &'a crate::reply::LocalReply, name: &str) -> Option<&'a str> {
    reply.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
}

/// The query parameters of a redirect's `Location`.
pub(crate) fn location_params(reply: &crate::reply::LocalReply) -> Vec<(String, String)> {
    let location = header(reply, "location").unwrap_or_default();
    let query = location.split_once('?').map_or("", |(_, q)| q);
    crate::login::form::parse(query)
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub(crate) fn json(reply: &crate::reply::LocalReply) -> serde_json::Value {
    serde_json::from_slice(&reply.body).unwrap_or(serde_json::Value::Null)
}
