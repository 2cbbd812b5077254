//! The `login` section and the `idp.*` keys that only login uses.
//!
//! Error texts name keys, never a secret, a private key or a URL.

use std::time::Duration;

use jwt_simple::prelude::{ES256PublicKey, Ed25519PublicKey};

use super::model::*;
use super::parse::{
    duration, endpoint, plain, required, secret, text, ConfigError, RawProvider, Result,
};
use super::raw::{RawLogin, RawSigningKey};

const MIN_SECRET: usize = 32;
const MAX_STATE_LIFETIME: Duration = Duration::from_secs(3600);
const DEFAULT_SCOPES: [&str; 3] = ["openid", "profile", "email"];
/// Longest path or URL accepted for the served paths and redirect targets.
const MAX_URL_LEN: usize = 2048;

/// `session_cookie` is `downstream.cookie_name` as configured (`None`: the
/// default, `default_session_cookie_name`).
pub(super) fn login(
    raw: RawLogin,
    provider: RawProvider,
    max_token_lifetime: Duration,
    env: &dyn Fn(&str) -> Option<String>,
    session_cookie: Option<&str>,
) -> Result<LoginConfig> {
    let provider = provider_config(provider)?;
    let redirect_key = "login.redirect_uri";
    let redirect_uri = text(redirect_key, raw.redirect_uri)?;
    let callback_path = absolute_url(redirect_key, &redirect_uri)?;
    let scopes = scopes(raw.scopes)?;
    let logout_path = served_path("login.logout_path", raw.logout_path)?;
    let backchannel_logout_path =
        served_path("login.backchannel_logout_path", raw.backchannel_logout_path)?;
    let mut served: Vec<(&str, &str)> = vec![("login.redirect_uri", &callback_path)];
    for (key, path) in [
        ("login.logout_path", &logout_path),
        ("login.backchannel_logout_path", &backchannel_logout_path),
    ] {
        if let Some(path) = path {
            if served.iter().any(|(_, p)| p == path) {
                return Err(ConfigError::new(
                    key,
                    "must differ from the other login paths",
                ));
            }
            served.push((key, path));
        }
    }
    let post_logout_redirect_uri = optional_url(
        "login.post_logout_redirect_uri",
        raw.post_logout_redirect_uri,
    )?;
    let session_lifetime = duration(
        "login.session_lifetime",
        raw.session_lifetime.as_deref(),
        "8h",
    )?;
    if session_lifetime.is_zero() || session_lifetime > max_token_lifetime {
        return Err(ConfigError::new(
            "login.session_lifetime",
            "must be greater than 0 and at most `max_token_lifetime`",
        ));
    }
    let state_lifetime = duration("login.state_lifetime", raw.state_lifetime.as_deref(), "10m")?;
    if state_lifetime.is_zero() || state_lifetime > MAX_STATE_LIFETIME {
        return Err(ConfigError::new(
            "login.state_lifetime",
            "must be greater than 0 and at most 1h",
        ));
    }
    let signing_key = signing_key(required("login.signing_key", raw.signing_key)?, env)?;
    let state_secret = match (raw.state_secret, raw.state_secret_env) {
        (None, None) => derived_state_secret(&signing_key),
        (inline, name) => {
            let value = secret(
                ("login.state_secret", inline),
                ("login.state_secret_env", name),
                env,
            )?;
            if value.len() < MIN_SECRET {
                return Err(ConfigError::new(
                    "login.state_secret",
                    format!("must be at least {MIN_SECRET} bytes"),
                ));
            }
            value.into_bytes()
        }
    };
    let cookie = cookie_config(raw.cookie_domain, raw.cookie_path, raw.cookie_secure)?;
    let session_cookie = session_cookie
        .map(str::to_string)
        .unwrap_or_else(|| default_session_cookie_name(&cookie));
    check_prefix("downstream.cookie_name", &session_cookie, &cookie, &cookie.path)?;
    let state_cookie_name =
        state_cookie_name(raw.state_cookie_name, &session_cookie, &cookie, &callback_path)?;
    let mut token_claims = Vec::new();
    for (i, claim) in raw.token_claims.unwrap_or_default().into_iter().enumerate() {
        plain(&format!("login.token_claims[{i}]"), &claim)?;
        if !token_claims.contains(&claim) {
            token_claims.push(claim);
        }
    }
    Ok(LoginConfig {
        provider,
        redirect_uri,
        callback_path,
        scopes,
        consent_for_offline_access: raw.consent_for_offline_access.unwrap_or(true),
        logout_path,
        post_logout_redirect_uri,
        backchannel_logout_path,
        session_lifetime,
        state_lifetime,
        state_secret,
        signing_key,
        cookie,
        state_cookie_name,
        token_claims,
    })
}

/// `downstream.cookie_name`'s default with `login`: the strongest prefix the
/// session cookie's attributes allow, so a sibling subdomain or a plain-http
/// page cannot plant or overwrite it.
pub(super) fn default_session_cookie_name(cookie: &CookieConfig) -> String {
    format!("{}vigil_session", cookie.strongest_prefix(&cookie.path))
}

/// A prefixed name must have the attributes browsers require of it (they
/// drop the cookie otherwise, and every login would fail).
fn check_prefix(key: &str, name: &str, cookie: &CookieConfig, path: &str) -> Result<()> {
    match cookie_prefix(name) {
        HOST_PREFIX if !cookie.host_prefix_allowed(path) => Err(ConfigError::new(
            key,
            "a `__Host-` cookie needs `login.cookie_secure` true, no `login.cookie_domain` and `login.cookie_path` \"/\"",
        )),
        SECURE_PREFIX if !cookie.secure => Err(ConfigError::new(
            key,
            "a `__Secure-` cookie needs `login.cookie_secure` true",
        )),
        _ => Ok(()),
    }
}

/// The login state cookie's name: configured, or the strongest prefix its
/// attributes allow (`__Host-` only when the session cookie may be
/// `__Host-` too, since it then lives at `Path=/`) followed by the session
/// cookie's name without its prefix and `_login`.
fn state_cookie_name(
    raw: Option<String>,
    session_cookie: &str,
    cookie: &CookieConfig,
    callback_path: &str,
) -> Result<String> {
    const KEY: &str = "login.state_cookie_name";
    let host_ok = cookie.host_prefix_allowed(&cookie.path);
    let name = match raw {
        Some(name) => name,
        None => {
            let prefix = if host_ok { HOST_PREFIX } else { cookie.strongest_prefix(callback_path) };
            format!("{prefix}{}_login", unprefixed_cookie_name(session_cookie))
        }
    };
    if name.is_empty() || !name.bytes().all(super::parse::is_token_byte) {
        return Err(ConfigError::new(
            KEY,
            "must be a non-empty cookie name (RFC 6265 token characters)",
        ));
    }
    if unprefixed_cookie_name(&name).eq_ignore_ascii_case(unprefixed_cookie_name(session_cookie)) {
        return Err(ConfigError::new(KEY, "must differ from `downstream.cookie_name`"));
    }
    // A `__Host-` state cookie lives at `Path=/`; any other at the callback path.
    let path = if cookie_prefix(&name) == HOST_PREFIX { "/" } else { callback_path };
    check_prefix(KEY, &name, cookie, path)?;
    Ok(name)
}

fn provider_config(raw: RawProvider) -> Result<ProviderConfig> {
    let issuer = required("idp.issuer", raw.issuer)
        .map_err(|_| ConfigError::new("idp.issuer", "required with a `login` section"))?;
    absolute_url("idp.issuer", &issuer)?;
    if issuer.contains('?') {
        return Err(ConfigError::new("idp.issuer", "must not contain a query"));
    }
    let authority = raw.authority;
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery_endpoint = endpoint("idp.issuer", Some(discovery_url), authority.as_deref())?;
    let discovery = raw.discovery.unwrap_or(true);
    let authorization_endpoint =
        optional_url("idp.authorization_endpoint", raw.authorization_endpoint)?;
    let jwks_uri = raw
        .jwks_uri
        .map(|url| endpoint("idp.jwks_uri", Some(url), authority.as_deref()))
        .transpose()?;
    if !discovery {
        if authorization_endpoint.is_none() {
            return Err(ConfigError::new(
                "idp.authorization_endpoint",
                "required when `idp.discovery` is false",
            ));
        }
        if jwks_uri.is_none() {
            return Err(ConfigError::new(
                "idp.jwks_uri",
                "required when `idp.discovery` is false",
            ));
        }
    }
    let end_session_endpoint = optional_url("idp.end_session_endpoint", raw.end_session_endpoint)?;
    let revocation_endpoint = raw
        .revocation_endpoint
        .map(|url| endpoint("idp.revocation_endpoint", Some(url), authority.as_deref()))
        .transpose()?;
    let metadata_refresh = duration(
        "idp.metadata_refresh",
        raw.metadata_refresh.as_deref(),
        "1h",
    )?;
    if metadata_refresh < Duration::from_secs(10) {
        return Err(ConfigError::new(
            "idp.metadata_refresh",
            "must be at least 10s",
        ));
    }
    Ok(ProviderConfig {
        issuer,
        discovery,
        discovery_endpoint,
        authorization_endpoint,
        jwks_uri,
        end_session_endpoint,
        revocation_endpoint,
        authority,
        metadata_refresh,
    })
}

/// Checks an absolute http(s) URL (same rules as the endpoints) and returns
/// its path without the query.
fn absolute_url(key: &str, text: &str) -> Result<String> {
    plain(key, text)?;
    if text.len() > MAX_URL_LEN {
        return Err(ConfigError::new(key, "too long"));
    }
    let parsed = endpoint(key, Some(text.to_string()), None)?;
    Ok(parsed
        .path
        .split_once('?')
        .map_or(parsed.path.as_str(), |(p, _)| p)
        .to_string())
}

fn optional_url(key: &str, value: Option<String>) -> Result<Option<String>> {
    if let Some(url) = &value {
        absolute_url(key, url)?;
    }
    Ok(value)
}

fn scopes(raw: Option<Vec<String>>) -> Result<Vec<String>> {
    let raw = raw.unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect());
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, scope) in raw.into_iter().enumerate() {
        let key = format!("login.scopes[{i}]");
        // RFC 6749 §3.3 scope-token: printable ASCII without space, `"` or `\`.
        if scope.is_empty()
            || !scope
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            return Err(ConfigError::new(key, "not a valid scope"));
        }
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    if !out.iter().any(|s| s == "openid") {
        return Err(ConfigError::new("login.scopes", "must contain \"openid\""));
    }
    Ok(out)
}

fn served_path(key: &str, value: Option<String>) -> Result<Option<String>> {
    let Some(path) = value else { return Ok(None) };
    plain(key, &path)?;
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= MAX_URL_LEN
        && !path.contains(|c: char| c == '?' || c == '#' || c.is_whitespace());
    if !ok {
        return Err(ConfigError::new(
            key,
            "must be a path starting with `/` (no query)",
        ));
    }
    Ok(Some(path))
}

fn cookie_config(
    domain: Option<String>,
    path: Option<String>,
    secure: Option<bool>,
) -> Result<CookieConfig> {
    let attribute_ok = |v: &str| {
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
    };
    if let Some(d) = &domain {
        if !attribute_ok(d) || d.contains('/') {
            return Err(ConfigError::new(
                "login.cookie_domain",
                "not a valid cookie domain",
            ));
        }
    }
    let path = path.unwrap_or_else(|| "/".to_string());
    if !path.starts_with('/') || !attribute_ok(&path) {
        return Err(ConfigError::new(
            "login.cookie_path",
            "must be a path starting with `/`",
        ));
    }
    Ok(CookieConfig {
        domain,
        path,
        secure: secure.unwrap_or(true),
    })
}

fn signing_key(
    raw: RawSigningKey,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SigningKeyConfig> {
    const PATH: &str = "login.signing_key";
    let kid = match raw.kid {
        None => Some("vigil".to_string()),
        Some(kid) => {
            plain(&format!("{PATH}.kid"), &kid)?;
            Some(kid)
        }
    };
    let alg = required(&format!("{PATH}.alg"), raw.alg)?;
    let material = match alg.as_str() {
        "HS256" => {
            refuse(PATH, "private_key", raw.private_key.is_some(), &alg)?;
            refuse(PATH, "private_key_env", raw.private_key_env.is_some(), &alg)?;
            let value = secret(
                (&format!("{PATH}.secret"), raw.secret),
                (&format!("{PATH}.secret_env"), raw.secret_env),
                env,
            )?;
            SigningMaterial::Hs256(value.into_bytes())
        }
        "EdDSA" | "ES256" => {
            refuse(PATH, "secret", raw.secret.is_some(), &alg)?;
            refuse(PATH, "secret_env", raw.secret_env.is_some(), &alg)?;
            let pem = secret(
                (&format!("{PATH}.private_key"), raw.private_key),
                (&format!("{PATH}.private_key_env"), raw.private_key_env),
                env,
            )?;
            if alg == "EdDSA" {
                SigningMaterial::EdDsaPem(pem)
            } else {
                SigningMaterial::Es256Pem(pem)
            }
        }
        _ => {
            return Err(ConfigError::new(
                format!("{PATH}.alg"),
                "must be EdDSA, ES256 or HS256",
            ))
        }
    };
    let key = SigningKeyConfig { kid, material };
    if let Err(e) = key.signer() {
        let field = if alg == "HS256" {
            "secret"
        } else {
            "private_key"
        };
        return Err(ConfigError::new(format!("{PATH}.{field}"), e.reason()));
    }
    Ok(key)
}

fn refuse(path: &str, name: &str, present: bool, alg: &str) -> Result<()> {
    if present {
        return Err(ConfigError::new(
            format!("{path}.{name}"),
            format!("not used with {alg}"),
        ));
    }
    Ok(())
}

/// The key that verifies what `key` signs (first in `downstream.keys`).
pub(super) fn verification_key_of(key: &SigningKeyConfig) -> Result<VerificationKey> {
    let invalid = || ConfigError::new("login.signing_key.private_key", "invalid private key (PEM)");
    let material = match &key.material {
        SigningMaterial::Hs256(secret) => KeyMaterial::Hs256(secret.clone()),
        other => {
            let signer = key.signer().map_err(|_| invalid())?;
            let pem = signer.public_key_pem().ok_or_else(invalid)?;
            match other {
                SigningMaterial::EdDsaPem(_) => {
                    KeyMaterial::EdDsa(Ed25519PublicKey::from_pem(&pem).map_err(|_| invalid())?)
                }
                _ => KeyMaterial::Es256(ES256PublicKey::from_pem(&pem).map_err(|_| invalid())?),
            }
        }
    };
    Ok(VerificationKey {
        kid: key.kid.clone(),
        material,
    })
}

/// A state-cookie key derived from the signing key, so operators need not
/// configure a second secret: HMAC-SHA256(signing material, label).
fn derived_state_secret(key: &SigningKeyConfig) -> Vec<u8> {
    let material: &[u8] = match &key.material {
        SigningMaterial::Hs256(secret) => secret,
        SigningMaterial::EdDsaPem(pem) | SigningMaterial::Es256Pem(pem) => pem.as_bytes(),
    };
    hmac_sha256::HMAC::mac(b"vigil login state cookie v1", material).to_vec()
}
