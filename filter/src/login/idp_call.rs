//! The IdP calls of the login flows, as values the adapter dispatches with
//! `dispatch_http_call(cfg.idp.upstream, headers, body, timeout)`; answers
//! come back as `revalidation::IdpAnswer`.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::form;
use crate::config::{ClientAuth, Endpoint, IdpConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginCallKind {
    Discovery,
    Jwks,
    CodeExchange,
    Userinfo,
    Revocation,
}

/// One call to the IdP. Debug omits headers and body (secrets, tokens).
#[derive(Clone, PartialEq, Eq)]
pub struct IdpRequest {
    pub kind: LoginCallKind,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

impl std::fmt::Debug for IdpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpRequest")
            .field("kind", &self.kind)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn pseudo(method: &str, endpoint: &Endpoint) -> Vec<(String, String)> {
    vec![
        (":method".into(), method.into()),
        (":path".into(), endpoint.path.clone()),
        (":authority".into(), endpoint.authority.clone()),
        (":scheme".into(), endpoint.scheme.clone()),
        ("accept".into(), "application/json".into()),
    ]
}

/// `GET` of a JSON document (discovery, JWKS).
pub fn get_json(kind: LoginCallKind, endpoint: &Endpoint, timeout: Duration) -> IdpRequest {
    IdpRequest {
        kind,
        headers: pseudo("GET", endpoint),
        body: Vec::new(),
        timeout,
    }
}

/// `GET` with a bearer token (userinfo).
pub fn get_with_bearer(endpoint: &Endpoint, token: &str, timeout: Duration) -> IdpRequest {
    let mut headers = pseudo("GET", endpoint);
    headers.push(("authorization".into(), format!("Bearer {token}")));
    IdpRequest {
        kind: LoginCallKind::Userinfo,
        headers,
        body: Vec::new(),
        timeout,
    }
}

/// A form `POST` with client authentication per `idp.client_auth`
/// (token endpoint, revocation endpoint).
pub fn post_form(
    kind: LoginCallKind,
    endpoint: &Endpoint,
    idp: &IdpConfig,
    params: &[(&str, &str)],
    timeout: Duration,
) -> IdpRequest {
    let mut pairs: Vec<(&str, &str)> = params.to_vec();
    let mut headers = pseudo("POST", endpoint);
    headers.push((
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    match idp.client_auth {
        ClientAuth::SecretBasic => {
            // RFC 6749 §2.3.1: each part form-url-encoded before Basic.
            let id = form::encode(&idp.client_id);
            let secret = form::encode(&idp.client_secret);
            let basic = STANDARD.encode(format!("{id}:{secret}"));
            headers.push(("authorization".into(), format!("Basic {basic}")));
        }
        ClientAuth::SecretPost => {
            pairs.push(("client_id", &idp.client_id));
            pairs.push(("client_secret", &idp.client_secret));
        }
    }
    IdpRequest {
        kind,
        headers,
        body: form::serialize(&pairs).into_bytes(),
        timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revalidation::testing::test_config;

    #[test]
    fn client_auth_goes_where_configured() {
        let mut cfg = test_config();
        let ep = cfg.idp.token_endpoint.clone();
        let call = post_form(
            LoginCallKind::CodeExchange,
            &ep,
            &cfg.idp,
            &[("code", "c")],
            Duration::from_secs(1),
        );
        let auth = call
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap();
        assert!(auth.1.starts_with("Basic "));
        assert_eq!(call.body, b"code=c");
        cfg.idp.client_auth = ClientAuth::SecretPost;
        let call = post_form(
            LoginCallKind::CodeExchange,
            &ep,
            &cfg.idp,
            &[("code", "c")],
            Duration::from_secs(1),
        );
        assert!(call.headers.iter().all(|(k, _)| k != "authorization"));
        let body = String::from_utf8(call.body.clone()).unwrap();
        assert!(body.contains("client_secret=s3cr%26t%3Ax"), "{body}");
        assert!(!format!("{call:?}").contains("s3cr"));
    }
}
