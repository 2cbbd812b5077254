//! The authorization endpoint (RFC 6749 §4.1.1 with OAuth 2.1's mandatory
//! PKCE, RFC 8707 `resource`, RFC 9207 `iss`).
//!
//! `GET` checks, in this order:
//! 1. the query parses; `client_id` names a known client (a metadata
//!    document may need a fetch first); `redirect_uri` is present and
//!    registered for it (exact; loopback on any port). Until here every
//!    failure is an HTML `400` page: the redirect URI is not trusted yet
//!    (RFC 6749 §4.1.2.1), so nothing is redirected;
//! 2. then failures redirect back with `error=` (plus `state` and `iss`):
//!    repeated parameters, `response_type` other than `code`, missing PKCE
//!    or a method other than `S256` (`plain` is refused), a `resource` that
//!    is not a configured protected resource (`invalid_target`; may be
//!    omitted only when exactly one is configured), scopes outside
//!    `mcp.scopes` (`invalid_scope`), an over-long `state`;
//! 3. no vigil session: `Served::Login` with this URL (or `login_required`
//!    for `prompt=none`);
//! 4. a client that needs consent gets the consent page (or
//!    `consent_required` for `prompt=none`): a form that `POST`s a consent
//!    ticket back here. The ticket is sealed (`vk1.`, the consent key) and
//!    binds the checked request to the session id, for 10 minutes; the
//!    `POST` must be same-origin and carry the same session;
//! 5. otherwise (a trusted client, or an approved consent) a code is issued
//!    (`code.rs`) and the browser redirected with `code`, `state` and `iss`.
//!    A denied consent redirects with `access_denied`.

use serde::{Deserialize, Serialize};

use super::cimd::{self, Resolution};
use super::client::{lookup, Client, ClientKind, Lookup};
use super::code::{seal_code, CodeClaims};
use crate::reply::escape_html;
use super::http::{error_page, html_reply, is_scope_token, parse_form, same_origin, single, McpRequest, MAX_BODY_LEN};
use super::keys::{digest, open, random_nonce, seal};
use super::redirect::{check_redirect_uri, display_target, find_registered, RedirectKind};
use super::routes::find_resource;
use super::{live_session, McpContext, Served};
use crate::login::form::serialize;
use crate::login::return_url::safe_return_url;
use crate::reply::LocalReply;
use crate::store::SharedStore;
use crate::token::DownstreamClaims;

/// Longest `state` echoed back.
pub const MAX_STATE_LEN: usize = 512;
/// Longest `scope` parameter.
pub const MAX_SCOPE_LEN: usize = 1024;
/// Lifetime of a consent ticket (the time the user has to decide).
pub const CONSENT_LIFETIME_NS: u64 = 600 * 1_000_000_000;
const TICKET_PREFIX: &str = "vk1.";
const MAX_TICKET_LEN: usize = 8192;

/// The checked parts of an authorization request: what a code binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Grant {
    /// SHA-256 of the client id.
    c: String,
    /// The redirect URI as presented (the code goes there).
    ru: String,
    /// PKCE S256 challenge.
    p: String,
    /// The canonical resource.
    a: String,
    /// Space-separated granted scopes.
    s: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    st: Option<String>,
    /// Refresh tokens allowed.
    f: bool,
}

/// A consent ticket: the grant, the session it is for, its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Ticket {
    g: Grant,
    i: String,
    e: u64,
}

/// Where answers go once the redirect URI is trusted.
struct Target<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    issuer: &'a str,
    /// 302 after a `GET`, 303 after the consent `POST`.
    status: u32,
}

impl Target<'_> {
    fn redirect(&self, params: &[(&str, &str)]) -> LocalReply {
        let mut pairs = params.to_vec();
        if let Some(state) = self.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", self.issuer));
        let separator = if self.redirect_uri.contains('?') { '&' } else { '?' };
        LocalReply {
            status: self.status,
            headers: vec![
                ("location", format!("{}{separator}{}", self.redirect_uri, serialize(&pairs))),
                ("cache-control", "no-store".to_string()),
                ("referrer-policy", "no-referrer".to_string()),
            ],
            body: Vec::new(),
        }
    }

    fn error(&self, (code, description): (&str, &str)) -> LocalReply {
        self.redirect(&[("error", code), ("error_description", description)])
    }
}

type Refusal = (&'static str, &'static str);

const REPEATED: Refusal = ("invalid_request", "a parameter is repeated");

/// Serves the authorization endpoint. `fetched` is the resolution of the
/// metadata document the previous call asked for (`resume`).
pub(crate) fn authorize(
    ctx: &McpContext,
    store: &dyn SharedStore,
    req: &McpRequest,
    session: Option<&DownstreamClaims>,
    fetched: Option<(&str, Resolution)>,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> Served {
    match req.method.as_str() {
        "GET" => authorize_get(ctx, store, req, session, fetched, random, now_ns),
        "POST" => Served::Reply(consent_post(ctx, store, req, session, random, now_ns)),
        _ => Served::Reply(super::http::method_not_allowed("GET, POST")),
    }
}

fn page(code: &'static str, reason: &'static str) -> Served {
    Served::Reply(error_page(400, code, reason))
}

fn resolve_client(
    ctx: &McpContext,
    store: &dyn SharedStore,
    client_id: &str,
    fetched: Option<(&str, Resolution)>,
    now_ns: u64,
) -> Result<Client, Served> {
    match lookup(ctx.mcp, ctx.keys, client_id) {
        Lookup::Found(client) => Ok(client),
        Lookup::Unknown(reason) => Err(page("invalid_client", reason)),
        Lookup::Document => {
            let Some(cfg) = ctx.mcp.cimd.as_ref() else {
                return Err(page("invalid_client", "client id metadata documents are not accepted"));
            };
            let prefix = &ctx.cfg.shared_data_prefix;
            let resolution = match fetched {
                Some((url, resolution)) if url == client_id => resolution,
                _ => match cimd::cached(store, prefix, cfg, client_id, now_ns) {
                    Some(resolution) => resolution,
                    None => {
                        let url = cimd::check_cimd_url(client_id, cfg).map_err(|r| page("invalid_client", r))?;
                        return Err(Served::Fetch(cimd::fetch_for(&url, client_id, cfg)));
                    }
                },
            };
            resolution.map_err(|reason| page("invalid_client", reason))
        }
    }
}

fn authorize_get(
    ctx: &McpContext,
    store: &dyn SharedStore,
    req: &McpRequest,
    session: Option<&DownstreamClaims>,
    fetched: Option<(&str, Resolution)>,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> Served {
    let Ok(params) = parse_form(req.query().as_bytes()) else {
        return page("invalid_request", "the authorization request is malformed");
    };
    let client_id = match single(&params, "client_id") {
        Ok(Some(id)) => id,
        Ok(None) => return page("invalid_request", "client_id is required"),
        Err(()) => return page("invalid_request", "client_id is repeated"),
    };
    let client = match resolve_client(ctx, store, client_id, fetched, now_ns) {
        Ok(client) => client,
        Err(served) => return served,
    };
    let redirect_uri = match single(&params, "redirect_uri") {
        Ok(Some(uri)) => uri,
        Ok(None) => return page("invalid_request", "redirect_uri is required"),
        Err(()) => return page("invalid_request", "redirect_uri is repeated"),
    };
    if find_registered(&client.redirect_uris, redirect_uri).is_none() {
        return page("invalid_request", "the redirect_uri is not registered for this client");
    }
    // The redirect URI is trusted from here on.
    let state = single(&params, "state");
    let mut target = Target {
        redirect_uri,
        state: state.ok().flatten().filter(|s| s.len() <= MAX_STATE_LEN),
        issuer: &ctx.mcp.issuer,
        status: 302,
    };
    match state {
        Err(()) => return Served::Reply(target.error(REPEATED)),
        Ok(Some(s)) if s.len() > MAX_STATE_LEN => {
            target.state = None;
            return Served::Reply(target.error(("invalid_request", "state is too long")));
        }
        Ok(_) => {}
    }
    let grant = match check_request(ctx, &params, &client, redirect_uri, target.state) {
        Ok(grant) => grant,
        Err(refusal) => return Served::Reply(target.error(refusal)),
    };
    let prompt_none = matches!(single(&params, "prompt"), Ok(Some("none")));
    let Some(claims) = session else {
        return login_first(req, &target, prompt_none);
    };
    if live_session(ctx.cfg, store, &claims.sub, &claims.sid, Some(claims.iat_ns), now_ns).is_err() {
        return login_first(req, &target, prompt_none);
    }
    if client.consent {
        if prompt_none {
            return Served::Reply(target.error(("consent_required", "the user must approve this client")));
        }
        return Served::Reply(consent_page(ctx, &client, &grant, claims, redirect_uri, now_ns));
    }
    Served::Reply(issue_code(ctx, &grant, claims, &target, random, now_ns))
}

fn login_first(req: &McpRequest, target: &Target, prompt_none: bool) -> Served {
    if prompt_none {
        return Served::Reply(target.error(("login_required", "the user is not signed in")));
    }
    if safe_return_url(&req.path) != req.path {
        return Served::Reply(target.error(("invalid_request", "the authorization request is too long")));
    }
    Served::Login { return_to: req.path.clone() }
}

/// Steps 2 of the module doc, once the redirect URI is trusted.
fn check_request(
    ctx: &McpContext,
    params: &[(String, String)],
    client: &Client,
    redirect_uri: &str,
    state: Option<&str>,
) -> Result<Grant, Refusal> {
    for name in ["response_type", "code_challenge", "code_challenge_method", "scope", "prompt"] {
        single(params, name).map_err(|()| REPEATED)?;
    }
    let get = |name: &str| single(params, name).ok().flatten();
    match get("response_type") {
        None => return Err(("invalid_request", "response_type is required")),
        Some("code") => {}
        Some(_) => return Err(("unsupported_response_type", "only response_type=code is supported")),
    }
    let challenge = get("code_challenge").ok_or((
        "invalid_request",
        "PKCE is required: send code_challenge with code_challenge_method=S256",
    ))?;
    if get("code_challenge_method") != Some("S256") {
        return Err(("invalid_request", "code_challenge_method must be S256 (plain is not accepted)"));
    }
    let challenge_ok = challenge.len() == 43
        && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !challenge_ok {
        return Err(("invalid_request", "code_challenge is not a base64url SHA-256 value"));
    }
    let resources: Vec<&str> = params.iter().filter(|(k, _)| k == "resource").map(|(_, v)| v.as_str()).collect();
    let resource = match resources.as_slice() {
        [] if ctx.mcp.resources.len() == 1 => 0,
        [] => return Err(("invalid_target", "resource is required")),
        [one] => find_resource(ctx.mcp, one).ok_or(("invalid_target", "the resource is not served by this authorization server"))?,
        _ => return Err(("invalid_target", "request one resource at a time")),
    };
    let resource = ctx.mcp.resources.get(resource).ok_or(("invalid_target", "resource is required"))?;
    let scope = granted_scope(ctx, get("scope"), &resource.scopes)?;
    if prompt_unsupported(get("prompt")) {
        return Err(("invalid_request", "prompt must be none, login or consent"));
    }
    Ok(Grant {
        c: digest(&client.id),
        ru: redirect_uri.to_string(),
        p: challenge.to_string(),
        a: resource.resource.clone(),
        s: scope,
        st: state.map(str::to_string),
        f: client.refresh,
    })
}

fn prompt_unsupported(prompt: Option<&str>) -> bool {
    prompt.is_some_and(|p| !p.split(' ').all(|v| matches!(v, "none" | "login" | "consent" | "select_account")))
}

/// The requested scopes when every one is supported (deduplicated, in
/// order), else `invalid_scope`; none requested: the resource's own.
pub(crate) fn granted_scope(ctx: &McpContext, requested: Option<&str>, default: &[String]) -> Result<String, Refusal> {
    let Some(requested) = requested else {
        return Ok(default.join(" "));
    };
    if requested.len() > MAX_SCOPE_LEN {
        return Err(("invalid_scope", "the scope is too long"));
    }
    let mut out: Vec<&str> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !is_scope_token(scope) || !ctx.mcp.scopes.iter().any(|s| s == scope) {
            return Err(("invalid_scope", "a requested scope is not supported"));
        }
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    if out.is_empty() {
        return Ok(default.join(" "));
    }
    Ok(out.join(" "))
}

fn issue_code(
    ctx: &McpContext,
    grant: &Grant,
    claims: &DownstreamClaims,
    target: &Target,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> LocalReply {
    let lifetime = u64::try_from(ctx.mcp.code_lifetime.as_nanos()).unwrap_or(u64::MAX);
    let code = random_nonce(random).and_then(|nonce| {
        seal_code(
            ctx.keys,
            &CodeClaims {
                c: grant.c.clone(),
                r: digest(&grant.ru),
                p: grant.p.clone(),
                a: grant.a.clone(),
                s: grant.s.clone(),
                i: claims.sid.clone(),
                u: claims.sub.clone(),
                f: grant.f,
                t: now_ns,
                e: now_ns.saturating_add(lifetime),
                n: nonce,
            },
        )
    });
    match code {
        Some(code) => target.redirect(&[("code", &code)]),
        None => target.error(("temporarily_unavailable", "the server could not generate a code; retry")),
    }
}

fn consent_page(
    ctx: &McpContext,
    client: &Client,
    grant: &Grant,
    claims: &DownstreamClaims,
    redirect_uri: &str,
    now_ns: u64,
) -> LocalReply {
    let ticket = Ticket {
        g: grant.clone(),
        i: claims.sid.clone(),
        e: now_ns.saturating_add(CONSENT_LIFETIME_NS),
    };
    let Some(sealed) = serde_json::to_vec(&ticket).ok().map(|json| seal(&ctx.keys.consent, TICKET_PREFIX, &json)) else {
        return error_page(500, "server_error", "the consent page could not be built");
    };
    let name = client.name.as_deref().unwrap_or("An unnamed application");
    let origin = match client.kind {
        ClientKind::Configured => "configured by the operator of this site".to_string(),
        ClientKind::Dynamic => "registered itself; its name is not verified".to_string(),
        ClientKind::Document => format!("described by a document at {}; its name is not verified", display_target(&client.id)),
    };
    let scopes = if grant.s.is_empty() {
        "<li>use it on your behalf</li>".to_string()
    } else {
        grant.s.split(' ').map(|s| format!("<li><code>{}</code></li>", escape_html(s))).collect()
    };
    let loopback = check_redirect_uri(redirect_uri) == Ok(RedirectKind::Loopback);
    let warning = if loopback {
        "<p class=warn>The answer goes to a program on <b>your own computer</b>. Allow only if you started this from an application on this computer just now.</p>"
    } else {
        ""
    };
    let body = format!(
        "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width\"><title>Allow access?</title>\
<style>body{{font:16px system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em}}.warn{{background:#fff3cd;padding:.6em}}button{{font-size:1em;padding:.4em 1.2em;margin-right:.6em}}</style>\
<h1>Allow <q>{name}</q> to access {resource}?</h1>\
<p><q>{name}</q> ({origin}) asks to act as <b>{user}</b> on <b>{resource}</b>:</p><ul>{scopes}</ul>\
<p>After you decide, your browser goes to <b>{target}</b>.</p>{warning}\
<form method=post action=\"{action}\"><input type=hidden name=ticket value=\"{ticket}\">\
<button name=decision value=approve>Allow</button><button name=decision value=deny>Deny</button></form>\n",
        name = escape_html(name),
        origin = escape_html(&origin),
        resource = escape_html(&grant.a),
        user = escape_html(&claims.sub),
        target = escape_html(&display_target(redirect_uri)),
        action = escape_html(&ctx.mcp.paths.authorize),
        ticket = escape_html(&sealed),
    );
    html_reply(200, body)
}

fn consent_post(
    ctx: &McpContext,
    store: &dyn SharedStore,
    req: &McpRequest,
    session: Option<&DownstreamClaims>,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> LocalReply {
    if req.body.len() > MAX_BODY_LEN {
        return super::http::body_too_large();
    }
    if req.media_type().as_deref() != Some("application/x-www-form-urlencoded") {
        return error_page(400, "invalid_request", "the consent form must be form-encoded");
    }
    if !same_origin(req) {
        return error_page(403, "cross_site_request", "the consent must come from this site's own page");
    }
    let Ok(params) = parse_form(&req.body) else {
        return error_page(400, "invalid_request", "the consent form is malformed");
    };
    let (Ok(Some(sealed)), Ok(decision)) = (single(&params, "ticket"), single(&params, "decision")) else {
        return error_page(400, "invalid_request", "the consent form is malformed");
    };
    let ticket = open(&ctx.keys.consent, TICKET_PREFIX, sealed, MAX_TICKET_LEN)
        .and_then(|json| serde_json::from_slice::<Ticket>(&json).ok())
        .filter(|t| now_ns < t.e);
    let Some(ticket) = ticket else {
        return error_page(400, "invalid_request", "the consent request expired; start again from the application");
    };
    let Some(claims) = session.filter(|c| c.sid == ticket.i) else {
        return error_page(400, "invalid_request", "the sign-in changed since the consent page was shown; start again");
    };
    if live_session(ctx.cfg, store, &claims.sub, &claims.sid, Some(claims.iat_ns), now_ns).is_err() {
        return error_page(400, "invalid_request", "the session has ended; start again from the application");
    }
    let target = Target {
        redirect_uri: &ticket.g.ru,
        state: ticket.g.st.as_deref(),
        issuer: &ctx.mcp.issuer,
        status: 303,
    };
    match decision {
        Some("approve") => issue_code(ctx, &ticket.g, claims, &target, random, now_ns),
        Some("deny") => target.error(("access_denied", "the user denied the request")),
        _ => error_page(400, "invalid_request", "the consent form is malformed"),
    }
}

#[cfg(test)]
#[path = "authorize_tests.rs"]
mod tests;
