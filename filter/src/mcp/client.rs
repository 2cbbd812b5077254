//! Clients: the three kinds a `client_id` can name, and client
//! authentication at the token and revocation endpoints.
//!
//! * Pre-registered (`mcp.clients`): looked up by exact id.
//! * Dynamically registered (RFC 7591): the id *is* the registration,
//!   sealed with the `client_id` key (`keys.rs`):
//!   `vd1.<base64url(JSON)>.<base64url(HMAC)>` where the JSON is
//!   `{"r":[redirect_uris],"n":client_name?,"m":auth_method,"f":refresh_allowed,"t":issued_at_s,"j":nonce}`
//!   (the 64-bit random `j` makes two registrations with equal metadata two clients).
//!   Any worker validates it without shared data; nothing is stored, so
//!   registration cannot exhaust memory. A confidential one's secret is
//!   `base64url(HMAC(client_secret key, client_id))`: derived, never stored.
//!   Changing the key (`mcp.secret`, or the signing key it defaults to)
//!   invalidates every registration; clients then register again.
//! * Client ID Metadata Documents: an https id whose document the adapter
//!   fetches (`cimd.rs`); only public clients (`none`).

use serde::{Deserialize, Serialize};

use super::cimd::check_cimd_url;
use super::http::{single, McpRequest, OAuthError};
use super::keys::{constant_time_eq, open, seal, tag, verify_tag, McpKeys};
use crate::config::{McpClientAuth, McpConfig};

/// Longest `client_id` looked at (a registration with more metadata than
/// fits is refused at registration time).
pub const MAX_CLIENT_ID_LEN: usize = 1536;
/// Most redirect URIs one dynamic registration may carry.
pub const MAX_DYNAMIC_REDIRECT_URIS: usize = 8;
/// Longest `client_name` kept (characters).
pub const MAX_CLIENT_NAME_LEN: usize = 100;
/// Prefix of dynamically registered client ids.
pub const DYNAMIC_PREFIX: &str = "vd1.";

/// Where a client's registration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Configured,
    Dynamic,
    Document,
}

impl ClientKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ClientKind::Configured => "configured",
            ClientKind::Dynamic => "dynamic",
            ClientKind::Document => "metadata_document",
        }
    }
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    None,
    SecretBasic,
    SecretPost,
}

impl AuthMethod {
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::SecretBasic => "client_secret_basic",
            AuthMethod::SecretPost => "client_secret_post",
        }
    }

    pub fn parse(text: &str) -> Option<AuthMethod> {
        match text {
            "none" => Some(AuthMethod::None),
            "client_secret_basic" => Some(AuthMethod::SecretBasic),
            "client_secret_post" => Some(AuthMethod::SecretPost),
            _ => None,
        }
    }
}

/// A client the authorization endpoint can serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub kind: ClientKind,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub auth: AuthMethod,
    /// Gets refresh tokens (its grant types include `refresh_token`).
    pub refresh: bool,
    /// The user confirms on a consent page before a code is issued.
    pub consent: bool,
}

/// The registration sealed into a dynamic client id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Registration {
    pub r: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    pub m: String,
    pub f: bool,
    pub t: u64,
    pub j: String,
}

/// The client id of a registration.
pub(crate) fn dynamic_client_id(keys: &McpKeys, registration: &Registration) -> Option<String> {
    let json = serde_json::to_vec(registration).ok()?;
    Some(seal(&keys.client_id, DYNAMIC_PREFIX, &json))
}

/// The secret of a confidential dynamic client.
pub(crate) fn dynamic_client_secret(keys: &McpKeys, client_id: &str) -> String {
    tag(&keys.client_secret, client_id.as_bytes())
}

fn open_dynamic(keys: &McpKeys, client_id: &str) -> Option<Client> {
    let json = open(&keys.client_id, DYNAMIC_PREFIX, client_id, MAX_CLIENT_ID_LEN)?;
    let reg: Registration = serde_json::from_slice(&json).ok()?;
    Some(Client {
        id: client_id.to_string(),
        kind: ClientKind::Dynamic,
        name: reg.n,
        redirect_uris: reg.r,
        auth: AuthMethod::parse(&reg.m)?,
        refresh: reg.f,
        consent: true,
    })
}

fn configured(mcp: &McpConfig, client_id: &str) -> Option<Client> {
    let c = mcp.clients.iter().find(|c| c.client_id == client_id)?;
    Some(Client {
        id: c.client_id.clone(),
        kind: ClientKind::Configured,
        name: c.name.clone(),
        redirect_uris: c.redirect_uris.clone(),
        auth: match c.auth {
            McpClientAuth::None => AuthMethod::None,
            McpClientAuth::SecretBasic(_) => AuthMethod::SecretBasic,
            McpClientAuth::SecretPost(_) => AuthMethod::SecretPost,
        },
        refresh: c.refresh,
        consent: c.consent,
    })
}

/// What a `client_id` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    Found(Client),
    /// A metadata document URL that passed the SSRF checks: resolve it
    /// through the cache or a fetch (`cimd.rs`).
    Document,
    Unknown(&'static str),
}

pub(crate) fn lookup(mcp: &McpConfig, keys: &McpKeys, client_id: &str) -> Lookup {
    if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_LEN {
        return Lookup::Unknown("the client_id is not valid");
    }
    if let Some(client) = configured(mcp, client_id) {
        return Lookup::Found(client);
    }
    if client_id.starts_with(DYNAMIC_PREFIX) {
        if !mcp.dynamic_registration {
            return Lookup::Unknown("dynamic client registration is disabled");
        }
        return match open_dynamic(keys, client_id) {
            Some(client) => Lookup::Found(client),
            None => Lookup::Unknown("the client_id was not issued by this server"),
        };
    }
    if client_id.starts_with("https://") {
        return match &mcp.cimd {
            None => Lookup::Unknown("client id metadata documents are not accepted"),
            Some(cimd) => match check_cimd_url(client_id, cimd) {
                Ok(_) => Lookup::Document,
                Err(reason) => Lookup::Unknown(reason),
            },
        };
    }
    Lookup::Unknown("unknown client_id")
}

/// A client that passed authentication at the token or revocation endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authenticated {
    pub id: String,
    pub kind: ClientKind,
}

/// `(id, secret)` of an `Authorization: Basic` header (each part
/// form-url-decoded, RFC 6749 §2.3.1).
fn basic_credentials(value: &str) -> Option<(String, String)> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let pairs = super::http::parse_form(format!("i={id}&s={secret}").as_bytes()).ok()?;
    match pairs.as_slice() {
        [(_, id), (_, secret)] => Some((id.clone(), secret.clone())),
        _ => None,
    }
}

/// Client authentication of a token or revocation request: exactly one
/// method, the one the client registered.
pub(crate) fn authenticate(
    mcp: &McpConfig,
    keys: &McpKeys,
    req: &McpRequest,
    params: &[(String, String)],
) -> Result<Authenticated, OAuthError> {
    let repeated = || OAuthError::invalid_request("a parameter is repeated");
    let body_id = single(params, "client_id").map_err(|()| repeated())?;
    let body_secret = single(params, "client_secret").map_err(|()| repeated())?;
    let mut authorization = req.header_values("authorization");
    let header = authorization.next();
    if authorization.next().is_some() {
        return Err(OAuthError::invalid_request("the authorization header is repeated"));
    }
    let basic = match header {
        None => None,
        Some(value) => Some(
            basic_credentials(value)
                .ok_or(OAuthError::invalid_client("the authorization header is not valid Basic credentials"))?,
        ),
    };
    let (id, presented, method) = match (basic, body_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use only one client authentication method",
            ))
        }
        (Some((id, secret)), None) => {
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request("client_id differs from the Basic credentials"));
            }
            (id, Some(secret), AuthMethod::SecretBasic)
        }
        (None, Some(secret)) => {
            let id = body_id.ok_or(OAuthError::invalid_client("client_id is required"))?;
            (id.to_string(), Some(secret.to_string()), AuthMethod::SecretPost)
        }
        (None, None) => {
            let id = body_id.ok_or(OAuthError::invalid_client("client_id is required"))?;
            (id.to_string(), None, AuthMethod::None)
        }
    };
    let failed = OAuthError::invalid_client("client authentication failed");
    let client = match lookup(mcp, keys, &id) {
        Lookup::Found(client) => client,
        Lookup::Document => {
            return match method {
                AuthMethod::None => Ok(Authenticated { id, kind: ClientKind::Document }),
                _ => Err(failed),
            }
        }
        Lookup::Unknown(_) => return Err(failed),
    };
    if client.auth != method {
        return Err(failed);
    }
    let secret_ok = match (&presented, client.kind) {
        (None, _) => true,
        (Some(secret), ClientKind::Dynamic) => verify_tag(&keys.client_secret, id.as_bytes(), secret),
        (Some(secret), _) => mcp
            .clients
            .iter()
            .find(|c| c.client_id == id)
            .and_then(|c| match &c.auth {
                McpClientAuth::SecretBasic(s) | McpClientAuth::SecretPost(s) => Some(s),
                McpClientAuth::None => None,
            })
            .is_some_and(|expected| constant_time_eq(expected.as_bytes(), secret.as_bytes())),
    };
    if !secret_ok {
        return Err(failed);
    }
    Ok(Authenticated { id, kind: client.kind })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::mcp::testing::{mcp_config, test_keys};

    fn registration(method: &str) -> Registration {
        Registration {
            r: vec!["http://127.0.0.1/cb".into()],
            n: Some("CLI".into()),
            m: method.into(),
            f: true,
            t: 1,
            j: "AAAAAAAAAAA".into(),
        }
    }

    fn token_request(headers: &[(&str, &str)]) -> McpRequest {
        McpRequest::new(
            "POST",
            "/oauth2/token",
            headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            Vec::new(),
        )
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn basic(id: &str, secret: &str) -> String {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine;
        let enc = |s: &str| crate::login::form::encode(s);
        format!("Basic {}", STANDARD.encode(format!("{}:{}", enc(id), enc(secret))))
    }

    #[test]
    fn dynamic_ids_round_trip_and_forgeries_are_unknown() {
        let mcp = mcp_config();
        let keys = test_keys();
        let id = dynamic_client_id(&keys, &registration("none")).unwrap();
        assert!(id.starts_with("vd1."));
        let Lookup::Found(client) = lookup(&mcp, &keys, &id) else { panic!("not found") };
        assert_eq!(client.kind, ClientKind::Dynamic);
        assert_eq!(client.redirect_uris, ["http://127.0.0.1/cb"]);
        assert!(client.consent && client.refresh);
        // Another server's key, an edited payload, a truncated tag.
        let other = McpKeys::expand(&crate::mcp::keys::extract(b"another secret of at least 32 bytes"));
        let foreign = dynamic_client_id(&other, &registration("none")).unwrap();
        assert!(matches!(lookup(&mcp, &keys, &foreign), Lookup::Unknown(_)));
        let mut edited = registration("none");
        edited.r = vec!["https://evil.example/cb".into()];
        let edited_body = dynamic_client_id(&other, &edited).unwrap();
        let (_, mac) = id.rsplit_once('.').unwrap();
        let (body, _) = edited_body.rsplit_once('.').unwrap();
        assert!(matches!(lookup(&mcp, &keys, &format!("{body}.{mac}")), Lookup::Unknown(_)));
        assert!(matches!(lookup(&mcp, &keys, &id[..id.len() - 2]), Lookup::Unknown(_)));
        let mut off = mcp.clone();
        off.dynamic_registration = false;
        assert!(matches!(lookup(&off, &keys, &id), Lookup::Unknown(_)));
        assert!(matches!(lookup(&mcp, &keys, "nobody"), Lookup::Unknown(_)));
        assert!(matches!(lookup(&mcp, &keys, &"a".repeat(MAX_CLIENT_ID_LEN + 1)), Lookup::Unknown(_)));
    }

    #[test]
    fn metadata_document_ids_need_the_feature_and_a_safe_url() {
        let mut mcp = mcp_config();
        let keys = test_keys();
        assert_eq!(lookup(&mcp, &keys, "https://client.example.com/meta.json"), Lookup::Document);
        assert!(matches!(lookup(&mcp, &keys, "https://127.0.0.1/meta.json"), Lookup::Unknown(_)));
        mcp.cimd = None;
        assert!(matches!(lookup(&mcp, &keys, "https://client.example.com/meta.json"), Lookup::Unknown(_)));
    }

    #[test]
    fn public_clients_send_their_id_and_no_secret() {
        let mcp = mcp_config();
        let keys = test_keys();
        let id = dynamic_client_id(&keys, &registration("none")).unwrap();
        let ok = authenticate(&mcp, &keys, &token_request(&[]), &params(&[("client_id", &id)])).unwrap();
        assert_eq!(ok.kind, ClientKind::Dynamic);
        let err = |headers: &[(&str, &str)], p: &[(&str, &str)]| {
            authenticate(&mcp, &keys, &token_request(headers), &params(p)).unwrap_err()
        };
        assert_eq!(err(&[], &[]).code, "invalid_client");
        assert_eq!(err(&[], &[("client_id", &id), ("client_secret", "x")]).code, "invalid_client");
        assert_eq!(err(&[], &[("client_id", "nobody")]).status, 401);
        assert_eq!(err(&[], &[("client_id", &id), ("client_id", &id)]).code, "invalid_request");
        let doc = authenticate(&mcp, &keys, &token_request(&[]), &params(&[("client_id", "https://client.example.com/meta.json")]))
            .unwrap();
        assert_eq!(doc.kind, ClientKind::Document);
    }

    #[test]
    fn confidential_clients_use_exactly_their_method_and_secret() {
        let mcp = mcp_config();
        let keys = test_keys();
        // Configured: "ci-bot" uses client_secret_basic with a configured secret.
        let good = basic("ci-bot", crate::mcp::testing::CI_SECRET);
        let ok = authenticate(&mcp, &keys, &token_request(&[("authorization", &good)]), &[]).unwrap();
        assert_eq!((ok.id.as_str(), ok.kind), ("ci-bot", ClientKind::Configured));
        let wrong = basic("ci-bot", "not the secret at all, not at all!");
        let err = |h: &[(&str, &str)], p: &[(&str, &str)]| authenticate(&mcp, &keys, &token_request(h), &params(p)).unwrap_err();
        assert_eq!(err(&[("authorization", &wrong)], &[]).code, "invalid_client");
        // The right secret by the wrong method.
        assert_eq!(err(&[], &[("client_id", "ci-bot"), ("client_secret", crate::mcp::testing::CI_SECRET)]).code, "invalid_client");
        // Two methods at once, or a mismatching body id.
        assert_eq!(err(&[("authorization", &good)], &[("client_secret", "x")]).code, "invalid_request");
        assert_eq!(err(&[("authorization", &good)], &[("client_id", "other")]).code, "invalid_request");
        assert_eq!(err(&[("authorization", "Bearer abc")], &[]).code, "invalid_client");
        assert_eq!(err(&[("authorization", &good), ("authorization", &good)], &[]).code, "invalid_request");
        // Dynamic confidential client: the derived secret, by post.
        let id = dynamic_client_id(&keys, &registration("client_secret_post")).unwrap();
        let secret = dynamic_client_secret(&keys, &id);
        assert!(authenticate(&mcp, &keys, &token_request(&[]), &params(&[("client_id", &id), ("client_secret", &secret)])).is_ok());
        assert_eq!(err(&[], &[("client_id", &id), ("client_secret", "guess")]).code, "invalid_client");
        assert_eq!(err(&[], &[("client_id", &id)]).code, "invalid_client");
        // Documents are public clients only.
        assert_eq!(err(&[], &[("client_id", "https://client.example.com/meta.json"), ("client_secret", "x")]).code, "invalid_client");
    }
}
