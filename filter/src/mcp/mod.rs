//! vigil as the OAuth 2.1 authorization server of MCP clients (issue 13):
//! discovery documents, client registration (pre-registered, RFC 7591
//! dynamic registration without storage, Client ID Metadata Documents), the
//! authorization endpoint with PKCE S256 and resource indicators, the token
//! endpoint with rotating refresh tokens, revocation, and the check of the
//! access tokens it issues on the protected paths. Pure logic; the design is
//! in `docs/mcp.md`.
//!
//! # Adapter contract
//!
//! Built once per configuration: `McpVm::new(cfg)` (`None` without an `mcp`
//! section, `Err` naming the problem), then `vm.context(cfg)` per request.
//!
//! **Routing.** For every request, `routes::route(mcp, path, authority)`
//! (after the identity-header stripping, before vigil's own token check):
//! * `None`: not an MCP path, vigil's ordinary handling.
//! * `Some(McpRoute::Resource(i))`: a protected path. Call
//!   `guard(ctx, store, i, req, now)` with the request headers (no body):
//!   - `Guard::Admit(a)`: a valid access token for resource `i`. Run
//!     `revalidation::admit(cfg, store, vm, &a.claims.sub, &a.claims.sid,
//!     a.claims.iat_ns, now)` exactly as for a session cookie (so the
//!     session's revalidation and revocation apply, waiting included); on
//!     `Allow` forward with the identity headers and **without the
//!     `authorization` header** (the MCP server behind vigil must not see,
//!     let alone pass on, the client's token); on `Deny(reason)` reply
//!     `denied(ctx, i, &reason)` (a `401` with `resource_metadata`). The
//!     guard reads the token's family on every request: do not skip it for
//!     a token the VM's token cache already verified.
//!   - `Guard::Reply(reply)`: send it (`401` challenge, `400`, `403
//!     insufficient_scope`).
//!   - `Guard::Ordinary`: a browser navigation without `Authorization`:
//!     vigil's ordinary handling (session cookie, or the login redirect).
//!   - `Guard::Preflight`: a CORS preflight: forward it untouched.
//! * `Some(route)` otherwise (metadata, authorize, token, register, revoke):
//!   when `route.reads_body(method)`, buffer the body first (over
//!   `http::MAX_BODY_LEN` bytes, by `content-length` or as it arrives:
//!   reply `http::body_too_large()`, `413`). Then call `serve(ctx, store,
//!   route, req, session, random, now)`, where `session` is, for
//!   `route.wants_session()` (the authorization endpoint) only, the claims
//!   of the request's vigil session cookie once verified and admitted by
//!   `revalidation::admit` (`Allow`; wait for a due revalidation like any
//!   request), else `None`. `random` is the host's random source (`None` on
//!   failure: nothing guessable is made instead).
//!
//! **Results** (`Served`):
//! * `Reply(reply)`: send it.
//! * `Login { return_to }`: run vigil's existing login
//!   (`login::authorize::authorization_redirect(cfg, login, metadata,
//!   &return_to, …)`, or the usual `503` before discovery) with `return_to`
//!   (the authorization request's own path and query) as the return URL;
//!   after the login the browser comes back to it with a session.
//! * `Fetch(fetch)`: a Client ID Metadata Document is needed. Pause the
//!   request, `dispatch_http_call(fetch.upstream, fetch.headers, no body,
//!   fetch.timeout)`, then call `resume(ctx, store, req, session, &fetch,
//!   &answer, random, now)` with the answer as an `IdpAnswer`
//!   (`Response{status, headers, body}`; a body over `fetch.max_body` may be
//!   passed as `Reset`), and handle its `Served` the same way (it never asks
//!   for the same fetch again).
//!
//! Envoy needs the buffer filter (or `max_request_bytes`) on the `POST`
//! endpoints' routes, as for the back-channel logout path; nginx must give
//! vigil whole bodies (`client_body_buffer_size` at least 16k so bodies are
//! never written to a temporary file). The CIMD `upstream` must reach only
//! the public internet (e.g. a dynamic forward proxy cluster with no route
//! to internal networks).

pub mod authorize;
pub mod cimd;
pub mod client;
pub mod code;
pub mod family;
pub mod guard;
pub mod http;
pub mod keys;
pub mod keyspace;
pub mod metadata;
pub mod redirect;
pub mod register;
pub mod revoke;
pub mod routes;
pub mod token;

#[cfg(test)]
mod flow_tests;
#[cfg(test)]
pub(crate) mod testing;

pub use cimd::CimdFetch;
pub use guard::{denied, guard, Admitted, Guard};
pub use http::{body_too_large, is_browser_navigation, McpRequest, MAX_BODY_LEN};
pub use keys::McpKeys;
pub use routes::{route, McpRoute};

use crate::config::{Config, DownstreamConfig, McpConfig};
use crate::reply::LocalReply;
use crate::revalidation::IdpAnswer;
use crate::session::{is_revoked, parse_sid, read_session, session_key, Session};
use crate::store::SharedStore;
use crate::token::{DownstreamClaims, Signer, Verifier};

/// What the authorization server keeps per configuration: the derived
/// keys, the access-token signer (vigil's login signing key) and one
/// verifier per resource (audience = the resource).
pub struct McpVm {
    keys: McpKeys,
    signer: Signer,
    verifiers: Vec<Verifier>,
}

impl std::fmt::Debug for McpVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpVm").field("resources", &self.verifiers.len()).finish_non_exhaustive()
    }
}

impl McpVm {
    /// `None` without an `mcp` section.
    pub fn new(cfg: &Config) -> Option<Result<McpVm, String>> {
        let mcp = cfg.mcp.as_ref()?;
        Some(Self::build(cfg, mcp))
    }

    fn build(cfg: &Config, mcp: &McpConfig) -> Result<McpVm, String> {
        let login = cfg.login.as_ref().ok_or("config key `mcp`: requires a `login` section")?;
        let signer = login
            .signing_key
            .signer()
            .map_err(|e| format!("config key `login.signing_key`: {e}"))?;
        let key = cfg
            .downstream
            .keys
            .iter()
            .find(|k| k.kid == login.signing_key.kid && k.material.alg() == signer.alg())
            .ok_or("config key `login.signing_key`: its verification key is missing")?;
        let verifiers = mcp
            .resources
            .iter()
            .map(|r| {
                Verifier::new(&DownstreamConfig {
                    issuer: mcp.issuer.clone(),
                    audience: r.resource.clone(),
                    algorithms: vec![signer.alg().to_string()],
                    keys: vec![key.clone()],
                    leeway: cfg.downstream.leeway,
                    cookie_name: cfg.downstream.cookie_name.clone(),
                    header: "authorization".to_string(),
                })
            })
            .collect();
        Ok(McpVm {
            keys: McpKeys::expand(&mcp.prk),
            signer,
            verifiers,
        })
    }

    /// Everything one request needs; `None` when `cfg` has no `mcp` section.
    pub fn context<'a>(&'a self, cfg: &'a Config) -> Option<McpContext<'a>> {
        Some(McpContext {
            cfg,
            mcp: cfg.mcp.as_ref()?,
            keys: &self.keys,
            signer: &self.signer,
            verifiers: &self.verifiers,
        })
    }
}

/// The configuration and keys of one request.
#[derive(Clone, Copy)]
pub struct McpContext<'a> {
    pub cfg: &'a Config,
    pub mcp: &'a McpConfig,
    pub keys: &'a McpKeys,
    pub signer: &'a Signer,
    /// One per `mcp.resources` entry, same order.
    pub verifiers: &'a [Verifier],
}

/// What the adapter does with a served request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    Reply(LocalReply),
    /// Run vigil's login with this return URL first.
    Login { return_to: String },
    /// Make this call, then `resume`.
    Fetch(CimdFetch),
}

/// Serves `route` (anything but `McpRoute::Resource`, which is `guard`'s).
pub fn serve(
    ctx: &McpContext,
    store: &dyn SharedStore,
    route: McpRoute,
    req: &McpRequest,
    session: Option<&DownstreamClaims>,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> Served {
    let reply = match route {
        McpRoute::ResourceMetadata(i) => match ctx.mcp.resources.get(i) {
            Some(resource) if matches!(req.method.as_str(), "GET" | "HEAD") => metadata::resource_metadata(ctx.mcp, resource),
            Some(_) if req.method == "OPTIONS" => http::preflight("GET"),
            _ => http::method_not_allowed("GET"),
        },
        McpRoute::ServerMetadata => match req.method.as_str() {
            "GET" | "HEAD" => metadata::server_metadata(ctx.mcp),
            "OPTIONS" => http::preflight("GET"),
            _ => http::method_not_allowed("GET"),
        },
        McpRoute::Authorize => return authorize::authorize(ctx, store, req, session, None, random, now_ns),
        McpRoute::Token => token::token(ctx, store, req, random, now_ns),
        McpRoute::Register => register::register(ctx, req, random, now_ns),
        McpRoute::Revoke => revoke::revoke(ctx, store, req, now_ns),
        McpRoute::Resource(i) => match ctx.mcp.resources.get(i) {
            Some(resource) => metadata::missing_token(resource),
            None => http::method_not_allowed("GET"),
        },
    };
    Served::Reply(reply)
}

/// Continues an authorization request after the `Fetch` it asked for.
#[allow(clippy::too_many_arguments)]
pub fn resume(
    ctx: &McpContext,
    store: &dyn SharedStore,
    req: &McpRequest,
    session: Option<&DownstreamClaims>,
    fetch: &CimdFetch,
    answer: &IdpAnswer,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> Served {
    let resolution = match &ctx.mcp.cimd {
        Some(cimd) => {
            let (resolution, ttl_ns) = cimd::resolve_answer(&fetch.url, answer, cimd);
            cimd::remember(store, &ctx.cfg.shared_data_prefix, cimd, &fetch.url, &resolution, ttl_ns, now_ns);
            resolution
        }
        None => Err("client id metadata documents are not accepted"),
    };
    authorize::authorize(ctx, store, req, session, Some((fetch.url.as_str(), resolution)), random, now_ns)
}

/// The vigil session `sid` of subject `sub`, if it is still live, and (with
/// `granted_ns`) no revocation of `sub` happened after that instant.
pub(crate) fn live_session(
    cfg: &Config,
    store: &dyn SharedStore,
    sub: &str,
    sid: &str,
    granted_ns: Option<u64>,
    now_ns: u64,
) -> Result<Session, &'static str> {
    const ENDED: &str = "the user's session has ended";
    let id = parse_sid(sid, cfg.max_sessions).ok_or(ENDED)?;
    let (record, _) = read_session(store, &session_key(&cfg.shared_data_prefix, id.slot))
        .filter(|(r, _)| r.nonce == id.nonce && r.sub == sub)
        .ok_or(ENDED)?;
    if !record.is_usable(now_ns) {
        return Err(ENDED);
    }
    if granted_ns.is_some_and(|t| is_revoked(store, cfg, sub, t)) {
        return Err("the user's access was revoked");
    }
    Ok(record)
}
