//! The logout path: end the session in shared data (every VM refuses its
//! token from the next request on), clear the cookie, revoke the refresh
//! token at the IdP (RFC 7009) and send the browser to the IdP's
//! `end_session_endpoint` (RP-Initiated Logout).
//!
//! Only a same-origin `POST` logs out. The session cookie is `SameSite=Lax`,
//! which browsers send on a cross-site top-level *navigation*: a `GET` that
//! logged out would let any page end the user's session and revoke their
//! refresh token with a link. A `GET` gets a small confirmation page whose
//! form POSTs back; a `POST` whose `Sec-Fetch-Site` is not `same-origin` (or
//! `none`), or whose `Origin` names another host, is refused with 403.
//!
//! The redirect carries `id_token_hint` (the login's ID token, kept in the
//! session record when at most `MAX_ID_TOKEN_LEN` bytes) and `client_id`,
//! plus `post_logout_redirect_uri` when configured (RP-Initiated Logout
//! 1.0). Without a live session (or with an oversized ID token) only
//! `client_id` is sent, and IdPs ask the user to confirm.

use super::cookies::clear_cookie;
use super::error::LoginError;
use super::form::serialize;
use super::idp_call::{post_form, IdpRequest, LoginCallKind};
use super::provider::Provider;
use super::request::RequestView;
use crate::config::Config;
use crate::reply::{escape_html, LocalReply};
use crate::session::{parse_sid, session_key, update_session, Change, SessionState};
use crate::store::SharedStore;
use crate::token::{extract_token, Verifier};

/// What the adapter does after a logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutDone {
    /// Send this at once (302, cookie cleared).
    pub reply: LocalReply,
    /// Dispatch from the root context, fire and forget (the reply does not
    /// wait for it; its answer only matters for a log line).
    pub revocation: Option<IdpRequest>,
    /// Subject whose session was ended (logs, metrics).
    pub ended: Option<String>,
}

/// Handles a request to `login.logout_path`: `GET`/`HEAD` get the
/// confirmation page, a same-origin `POST` logs out, anything else is refused.
pub fn logout(
    cfg: &Config,
    provider: &Provider,
    verifier: &Verifier,
    store: &dyn SharedStore,
    req: &RequestView,
    now_ns: u64,
) -> LogoutDone {
    let Some(login) = &cfg.login else {
        return LogoutDone {
            reply: redirect("/".to_string(), Vec::new()),
            revocation: None,
            ended: None,
        };
    };
    let refuse = |error: LoginError| LogoutDone {
        reply: error.to_page(),
        revocation: None,
        ended: None,
    };
    match req.method.as_str() {
        "POST" => {}
        "GET" | "HEAD" => {
            return LogoutDone {
                reply: confirmation_page(req.path_only()),
                revocation: None,
                ended: None,
            }
        }
        _ => {
            let mut done = refuse(LoginError::MethodNotAllowed);
            done.reply.headers.push(("allow", "GET, POST".to_string()));
            return done;
        }
    }
    if !same_origin(req) {
        return refuse(LoginError::CrossSiteLogout);
    }
    let token = match req.header(&cfg.downstream.header) {
        Some(value) => extract_token(Some(value), None, "").ok().flatten(),
        None => match req.cookie(&cfg.downstream.cookie_name) {
            Ok(token) => token,
            Err(_) => return refuse(LoginError::DuplicateCookie),
        },
    };
    let claims = token.and_then(|t| verifier.verify(&t, now_ns).ok());
    let ended = claims.and_then(|claims| {
        let sid = parse_sid(&claims.sid, cfg.max_sessions)?;
        let key = session_key(&cfg.shared_data_prefix, sid.slot);
        update_session(store, &key, |current| match current {
            Some(mut s)
                if s.nonce == sid.nonce && s.sub == claims.sub && s.state == SessionState::Live =>
            {
                let refresh_token = s.refresh_token.take();
                let id_token = s.id_token.take();
                s.kill("logout", now_ns);
                // Waiters of a running revalidation see a result arrive.
                s.seq = s.seq.saturating_add(1);
                let sub = s.sub.clone();
                Change::Write(s, Some((sub, refresh_token, id_token)))
            }
            _ => Change::Keep(None),
        })
        .ok()
        .flatten()
    });
    let metadata = provider.metadata();
    let revocation = match (
        &ended,
        metadata.and_then(|m| m.revocation_endpoint.as_ref()),
    ) {
        (Some((_, Some(refresh_token), _)), Some(endpoint)) => Some(post_form(
            LoginCallKind::Revocation,
            endpoint,
            &cfg.idp,
            &[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
            ],
            cfg.revalidate_timeout,
        )),
        _ => None,
    };
    let location = match metadata.and_then(|m| m.end_session_endpoint.as_deref()) {
        Some(endpoint) => {
            let mut params = Vec::new();
            if let Some((_, _, Some(id_token))) = &ended {
                params.push(("id_token_hint", id_token.as_str()));
            }
            params.push(("client_id", cfg.idp.client_id.as_str()));
            if let Some(uri) = &login.post_logout_redirect_uri {
                params.push(("post_logout_redirect_uri", uri));
            }
            let separator = if endpoint.contains('?') { '&' } else { '?' };
            format!("{endpoint}{separator}{}", serialize(&params))
        }
        None => login
            .post_logout_redirect_uri
            .clone()
            .unwrap_or_else(|| "/".to_string()),
    };
    let cookie = clear_cookie(
        &login.cookie,
        &cfg.downstream.cookie_name,
        &login.cookie.path,
    );
    LogoutDone {
        reply: redirect(location, vec![cookie]),
        revocation,
        ended: ended.map(|(sub, _, _)| sub),
    }
}

/// Whether a logout `POST` comes from the proxy's own pages. Browsers say
/// so in `Sec-Fetch-Site` (`same-origin`; `none` is the user's own action);
/// older ones send `Origin`, whose host[:port] must be the request's
/// authority (the scheme is not compared: TLS may end before the proxy).
/// A request with neither is no browser's cross-site request (and the
/// `SameSite=Lax` cookie is not sent on a cross-site `POST` anyway).
pub fn same_origin(req: &RequestView) -> bool {
    if let Some(site) = req.header("sec-fetch-site") {
        return site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none");
    }
    let Some(origin) = req.header("origin") else {
        return true;
    };
    let Some((scheme, host)) = origin.trim().split_once("://") else {
        return false; // "null" (a sandboxed or privacy-sensitive context) or garbage
    };
    match req.authority() {
        Some(authority) => {
            without_default_port(scheme, host).eq_ignore_ascii_case(without_default_port(scheme, authority))
        }
        None => false,
    }
}

fn without_default_port<'a>(scheme: &str, host: &'a str) -> &'a str {
    let default = if scheme.eq_ignore_ascii_case("https") { ":443" } else { ":80" };
    host.strip_suffix(default).unwrap_or(host)
}

/// The answer to a `GET`: a form that POSTs to the logout path (the click is
/// the user's consent; no other site can make it). Framing is forbidden, so
/// no page can trick the user into that click either.
fn confirmation_page(path: &str) -> LocalReply {
    let action = escape_html(path);
    let body = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>Log out</title><h1>Log out?</h1>\
         <form method=\"post\" action=\"{action}\"><button type=\"submit\">Log out</button></form>\n"
    );
    LocalReply {
        status: 200,
        headers: vec![
            ("content-type", "text/html; charset=utf-8".to_string()),
            ("cache-control", "no-store".to_string()),
            (
                "content-security-policy",
                "default-src 'none'; frame-ancestors 'none'".to_string(),
            ),
            ("x-frame-options", "DENY".to_string()),
        ],
        body: body.into_bytes(),
    }
}


fn redirect(location: String, cookies: Vec<String>) -> LocalReply {
    let mut headers = vec![
        ("location", location),
        ("cache-control", "no-store".to_string()),
    ];
    headers.extend(cookies.into_iter().map(|c| ("set-cookie", c)));
    LocalReply {
        status: 302,
        headers,
        body: Vec::new(),
    }
}

#[cfg(test)]
#[path = "logout_tests.rs"]
mod tests;
