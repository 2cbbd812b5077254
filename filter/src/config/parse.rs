//! JSON plugin configuration -> validated [`Config`], or one error naming the
//! key and the problem (logged as one line by `on_configure`).
//!
//! Error texts name keys, durations and environment variable names, never a
//! secret value, a key or a URL (which may carry credentials).

use std::fmt;
use std::time::Duration;

use jwt_simple::prelude::{ES256PublicKey, Ed25519PublicKey, RS256PublicKey};
use serde_json::Value;

use super::duration::parse_duration;
use super::endpoint::HttpUrl;
use super::keypath;
use super::model::*;
use super::raw::*;

/// A rejected configuration: the key path (empty for the document itself)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    key: String,
    problem: String,
}

impl ConfigError {
    pub(super) fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// Dotted key path, e.g. `downstream.keys[0].alg`; empty for the document.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for ConfigError {
    /// One line, always: a key or value quoted in the message may hold line
    /// breaks or other control characters (the operator's JSON can), which are
    /// written escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "config: {}", OneLine(&self.problem))
        } else {
            write!(f, "config key `{}`: {}", OneLine(&self.key), OneLine(&self.problem))
        }
    }
}

/// Text with its control characters escaped (`\n`, `\u{7}`).
struct OneLine<'a>(&'a str);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_debug())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

pub(super) type Result<T> = std::result::Result<T, ConfigError>;

/// Longest accepted duration: keeps nanosecond arithmetic on the proxy clock
/// far from overflow whatever the operator writes.
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);
/// Longest glob: bounds the matcher's work per claim.
pub const MAX_GLOB_LEN: usize = 256;
const MIN_HS256_SECRET: usize = 32;
const ALGORITHMS: [&str; 4] = ["HS256", "ES256", "EdDSA", "RS256"];

/// Parses and validates the plugin configuration. `env` reads a VM
/// environment variable (for `*_env` keys).
pub fn parse(json: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Err(ConfigError::new(
            "",
            "empty configuration (expected a JSON object)",
        ));
    }
    let value: Value = serde_json::from_slice(json)
        .map_err(|e| ConfigError::new("", format!("invalid JSON: {e}")))?;
    let raw: RawConfig =
        keypath::from_value(&value).map_err(|e| ConfigError::new(e.path(), e.problem()))?;
    validate(raw, env)
}

fn validate(raw: RawConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
    let revalidate_interval = duration(
        "revalidate_interval",
        raw.revalidate_interval.as_deref(),
        "60s",
    )?;
    let revalidate_timeout = duration(
        "revalidate_timeout",
        raw.revalidate_timeout.as_deref(),
        "10s",
    )?;
    if revalidate_timeout.is_zero() {
        return Err(ConfigError::new(
            "revalidate_timeout",
            "must be greater than 0",
        ));
    }
    let on_failure = match raw.on_failure {
        None | Some(RawFailurePolicy::Allow) => FailurePolicy::Allow,
        Some(RawFailurePolicy::Deny) => FailurePolicy::Deny,
    };
    let max_staleness = match raw.max_staleness.as_deref() {
        None => None,
        Some(text) => Some(max_staleness(text, on_failure, revalidate_interval)?),
    };
    let refresh_margin = duration("refresh_margin", raw.refresh_margin.as_deref(), "30s")?;
    let poll_interval = duration("poll_interval", raw.poll_interval.as_deref(), "50ms")?;
    if poll_interval < Duration::from_millis(10) || poll_interval > Duration::from_secs(1) {
        return Err(ConfigError::new(
            "poll_interval",
            "must be between 10ms and 1s",
        ));
    }
    let shared_data_prefix = raw
        .shared_data_prefix
        .unwrap_or_else(|| "vigil:".to_string());
    if shared_data_prefix.is_empty()
        || shared_data_prefix.len() > 64
        || !shared_data_prefix.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ConfigError::new(
            "shared_data_prefix",
            "must be 1 to 64 printable ASCII characters without spaces",
        ));
    }
    let max_sessions = bounded("max_sessions", raw.max_sessions, 10_000, 1_000_000)?;
    let revocation_buckets = bounded("revocation_buckets", raw.revocation_buckets, 1024, 65_536)?;
    let max_token_lifetime = duration(
        "max_token_lifetime",
        raw.max_token_lifetime.as_deref(),
        "12h",
    )?;
    if max_token_lifetime.is_zero() {
        return Err(ConfigError::new(
            "max_token_lifetime",
            "must be greater than 0",
        ));
    }
    let host = match raw.nginx {
        Some(raw_nginx) => HostKind::Nginx(nginx_host(raw_nginx)?),
        None => HostKind::Envoy,
    };
    let wake_queues = match (&host, raw.wake_queues) {
        (HostKind::Nginx(_), Some(true)) => {
            return Err(ConfigError::new(
                "wake_queues",
                "must be false with `nginx` (ngx_wasm_module cannot register vigil's per-VM queues and never notifies them)",
            ))
        }
        (HostKind::Nginx(_), _) => false,
        (HostKind::Envoy, wake) => wake.unwrap_or(true),
    };
    if host != HostKind::Envoy {
        if let Some((a, b)) = crate::session::keyspace::first_alias(&shared_data_prefix, max_sessions, revocation_buckets) {
            return Err(ConfigError::new(
                "shared_data_prefix",
                format!("shared-data keys {a:?} and {b:?} have the same CRC-32, which ngx_wasm_module cannot tell apart; choose other max_sessions or revocation_buckets"),
            ));
        }
    }
    let mut raw_idp = required("idp", raw.idp)?;
    let raw_provider = RawProvider::take(&mut raw_idp);
    let idp = idp(raw_idp, env)?;
    let session_cookie = raw.downstream.as_ref().and_then(|d| d.cookie_name.clone());
    let login = match raw.login {
        Some(raw_login) => Some(super::parse_login::login(
            raw_login,
            raw_provider,
            max_token_lifetime,
            env,
            session_cookie.as_deref(),
        )?),
        None => {
            raw_provider.refuse_without_login()?;
            None
        }
    };
    let default_cookie = login.as_ref().map_or_else(
        || "vigil_session".to_string(),
        |l| super::parse_login::default_session_cookie_name(&l.cookie),
    );
    let downstream = downstream(
        required("downstream", raw.downstream)?,
        env,
        login.as_ref().map(|l| &l.signing_key),
        default_cookie,
    )?;
    let rules = rules(raw.rules.unwrap_or_default())?;
    let identity_headers =
        identity_headers(raw.identity_headers.unwrap_or_default(), &downstream.header, &rules.groups_claim)?;
    let session_headers = session_headers(
        raw.session_headers.unwrap_or_default(),
        &identity_headers,
        &downstream.header,
    )?;
    let config = Config {
        revalidate_interval,
        revalidate_timeout,
        on_failure,
        max_staleness,
        refresh_margin,
        idp,
        downstream,
        rules,
        identity_headers,
        session_headers,
        shared_data_prefix,
        max_sessions,
        revocation_buckets,
        max_token_lifetime,
        poll_interval,
        wake_queues,
        host,
        login,
        mcp: None,
    };
    super::parse_mcp::with_mcp(config, raw.mcp, env)
}

pub(super) fn required<T>(key: &str, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| ConfigError::new(key, "required key missing"))
}

pub(super) fn duration(key: &str, text: Option<&str>, default: &str) -> Result<Duration> {
    let text = text.unwrap_or(default);
    let value = parse_duration(text)
        .map_err(|e| ConfigError::new(key, format!("invalid duration {text:?}: {e}")))?;
    if value > MAX_DURATION {
        return Err(ConfigError::new(key, "duration too large (at most 8784h)"));
    }
    Ok(value)
}

fn max_staleness(text: &str, policy: FailurePolicy, interval: Duration) -> Result<Duration> {
    const KEY: &str = "max_staleness";
    if policy == FailurePolicy::Deny {
        return Err(ConfigError::new(
            KEY,
            "only allowed with `on_failure: \"allow\"` (\"deny\" never serves stale sessions)",
        ));
    }
    if interval.is_zero() {
        return Err(ConfigError::new(
            KEY,
            "has no effect when `revalidate_interval` is \"0\" (revalidation disabled)",
        ));
    }
    let value = duration(KEY, Some(text), "")?;
    if value < interval {
        return Err(ConfigError::new(
            KEY,
            format!(
                "must be at least `revalidate_interval` ({}ms)",
                interval.as_millis()
            ),
        ));
    }
    Ok(value)
}

fn bounded(key: &str, value: Option<u64>, default: u32, max: u32) -> Result<u32> {
    let value = value.unwrap_or(u64::from(default));
    match u32::try_from(value) {
        Ok(v) if (1..=max).contains(&v) => Ok(v),
        _ => Err(ConfigError::new(
            key,
            format!("must be between 1 and {max}"),
        )),
    }
}

/// A required string with no control characters and not blank.
pub(super) fn text(key: &str, value: Option<String>) -> Result<String> {
    let value = required(key, value)?;
    plain(key, &value)?;
    Ok(value)
}

pub(super) fn plain(key: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(ConfigError::new(key, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(ConfigError::new(key, "must not contain control characters"));
    }
    Ok(())
}

fn idp(raw: RawIdp, env: &dyn Fn(&str) -> Option<String>) -> Result<IdpConfig> {
    let upstream = text("idp.upstream", raw.upstream)?;
    if upstream.contains(char::is_whitespace) {
        return Err(ConfigError::new("idp.upstream", "must not contain spaces"));
    }
    let authority = match raw.authority {
        None => None,
        Some(a) => {
            plain("idp.authority", &a)?;
            if a.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
                return Err(ConfigError::new("idp.authority", "must be host[:port]"));
            }
            Some(a)
        }
    };
    let token_endpoint = endpoint(
        "idp.token_endpoint",
        raw.token_endpoint,
        authority.as_deref(),
    )?;
    let userinfo_endpoint = endpoint(
        "idp.userinfo_endpoint",
        raw.userinfo_endpoint,
        authority.as_deref(),
    )?;
    let client_id = text("idp.client_id", raw.client_id)?;
    let client_secret = secret(
        ("idp.client_secret", raw.client_secret),
        ("idp.client_secret_env", raw.client_secret_env),
        env,
    )?;
    let client_auth = match raw.client_auth {
        None | Some(RawClientAuth::ClientSecretBasic) => ClientAuth::SecretBasic,
        Some(RawClientAuth::ClientSecretPost) => ClientAuth::SecretPost,
    };
    Ok(IdpConfig {
        upstream,
        token_endpoint,
        userinfo_endpoint,
        client_id,
        client_secret,
        client_auth,
    })
}

pub(super) fn endpoint(key: &str, value: Option<String>, authority: Option<&str>) -> Result<Endpoint> {
    let text = required(key, value)?;
    let url = HttpUrl::parse(&text).map_err(|problem| ConfigError::new(key, problem))?;
    Ok(Endpoint {
        url: url.to_string(),
        path: url.path_and_query(),
        authority: authority.map_or_else(|| url.authority(), str::to_string),
        scheme: url.scheme().to_string(),
    })
}

/// An `Endpoint` for a URL learnt at run time (discovery), with the same
/// rules as configured endpoints; `None` when the URL is not acceptable.
pub(crate) fn endpoint_from_url(url: &str, authority: Option<&str>) -> Option<Endpoint> {
    endpoint("", Some(url.to_string()), authority).ok()
}

/// Exactly one of an inline secret and the name of an environment variable.
pub(super) fn secret(
    (inline_key, inline): (&str, Option<String>),
    (env_key, env_name): (&str, Option<String>),
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    let short = |key: &str| key.rsplit('.').next().unwrap_or(key).to_string();
    match (inline, env_name) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            inline_key,
            format!(
                "set only one of `{}` and `{}`",
                short(inline_key),
                short(env_key)
            ),
        )),
        (None, None) => Err(ConfigError::new(
            inline_key,
            format!("required key missing (or set `{}`)", short(env_key)),
        )),
        (Some(value), None) => {
            if value.is_empty() {
                return Err(ConfigError::new(inline_key, "must not be empty"));
            }
            Ok(value)
        }
        (None, Some(name)) => {
            plain(env_key, &name)?;
            match env(&name) {
                None => Err(ConfigError::new(
                    env_key,
                    format!("environment variable `{name}` is not set"),
                )),
                Some(value) if value.is_empty() => Err(ConfigError::new(
                    env_key,
                    format!("environment variable `{name}` is empty"),
                )),
                Some(value) => Ok(value),
            }
        }
    }
}

fn downstream(
    raw: RawDownstream,
    env: &dyn Fn(&str) -> Option<String>,
    signing: Option<&SigningKeyConfig>,
    default_cookie: String,
) -> Result<DownstreamConfig> {
    let issuer = text("downstream.issuer", raw.issuer)?;
    let audience = text("downstream.audience", raw.audience)?;
    // With a login signing key, its algorithm and key are always accepted.
    let signing_key = signing.map(super::parse_login::verification_key_of).transpose()?;
    let mut algorithms = match (raw.algorithms, &signing_key) {
        (Some(raw), _) => algorithms(raw)?,
        (None, Some(_)) => Vec::new(),
        (None, None) => return Err(ConfigError::new("downstream.algorithms", "required key missing")),
    };
    if let Some(key) = &signing_key {
        let alg = key.material.alg().to_string();
        if !algorithms.contains(&alg) {
            algorithms.push(alg);
        }
    }
    let raw_keys = match (raw.keys, &signing_key) {
        (Some(keys), _) => keys,
        (None, Some(_)) => Vec::new(),
        (None, None) => return Err(ConfigError::new("downstream.keys", "required key missing")),
    };
    if raw_keys.is_empty() && signing_key.is_none() {
        return Err(ConfigError::new(
            "downstream.keys",
            "at least one key is required",
        ));
    }
    let several = raw_keys.len() + usize::from(signing_key.is_some()) > 1;
    let mut keys: Vec<VerificationKey> = Vec::with_capacity(raw_keys.len() + 1);
    keys.extend(signing_key);
    for (i, raw_key) in raw_keys.into_iter().enumerate() {
        let key = verification_key(&format!("downstream.keys[{i}]"), raw_key, &algorithms, env)?;
        let kid_key = format!("downstream.keys[{i}].kid");
        match &key.kid {
            None if several => {
                return Err(ConfigError::new(
                    kid_key,
                    "required when several keys are configured",
                ))
            }
            Some(kid) if keys.iter().any(|k| k.kid.as_ref() == Some(kid)) => {
                return Err(ConfigError::new(kid_key, format!("duplicate kid `{kid}`")))
            }
            _ => {}
        }
        keys.push(key);
    }
    let leeway = duration("downstream.leeway", raw.leeway.as_deref(), "30s")?;
    let cookie_name = raw.cookie_name.unwrap_or(default_cookie);
    if cookie_name.is_empty() || !cookie_name.bytes().all(is_token_byte) {
        return Err(ConfigError::new(
            "downstream.cookie_name",
            "must be a non-empty cookie name (RFC 6265 token characters)",
        ));
    }
    let header = raw.header.unwrap_or_else(|| "authorization".to_string());
    header_name("downstream.header", &header)?;
    if header == "cookie" {
        return Err(ConfigError::new(
            "downstream.header",
            "must not be `cookie` (use `cookie_name`)",
        ));
    }
    Ok(DownstreamConfig {
        issuer,
        audience,
        algorithms,
        keys,
        leeway,
        cookie_name,
        header,
    })
}

fn algorithms(raw: Vec<String>) -> Result<Vec<String>> {
    const KEY: &str = "downstream.algorithms";
    if raw.is_empty() {
        return Err(ConfigError::new(KEY, "at least one algorithm is required"));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, alg) in raw.into_iter().enumerate() {
        let key = format!("{KEY}[{i}]");
        if alg.eq_ignore_ascii_case("none") {
            return Err(ConfigError::new(key, "`none` is never allowed"));
        }
        if !ALGORITHMS.contains(&alg.as_str()) {
            return Err(ConfigError::new(
                key,
                format!(
                    "unsupported algorithm (expected one of {})",
                    ALGORITHMS.join(", ")
                ),
            ));
        }
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    Ok(out)
}

fn verification_key(
    path: &str,
    raw: RawKey,
    algorithms: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<VerificationKey> {
    let kid = match raw.kid {
        None => None,
        Some(kid) => {
            plain(&format!("{path}.kid"), &kid)?;
            Some(kid)
        }
    };
    let alg_key = format!("{path}.alg");
    let alg = required(&alg_key, raw.alg)?;
    if !ALGORITHMS.contains(&alg.as_str()) {
        return Err(ConfigError::new(
            alg_key,
            format!(
                "unsupported algorithm (expected one of {})",
                ALGORITHMS.join(", ")
            ),
        ));
    }
    if !algorithms.contains(&alg) {
        return Err(ConfigError::new(
            alg_key,
            format!("algorithm `{alg}` is not in `downstream.algorithms`"),
        ));
    }
    let material = if alg == "HS256" {
        if raw.public_key.is_some() {
            return Err(ConfigError::new(
                format!("{path}.public_key"),
                "not used with HS256 (set `secret` or `secret_env`)",
            ));
        }
        let secret_key = format!("{path}.secret");
        let secret = secret(
            (&secret_key, raw.secret),
            (&format!("{path}.secret_env"), raw.secret_env),
            env,
        )?;
        if secret.len() < MIN_HS256_SECRET {
            return Err(ConfigError::new(
                secret_key,
                format!("HS256 secret must be at least {MIN_HS256_SECRET} bytes"),
            ));
        }
        KeyMaterial::Hs256(secret.into_bytes())
    } else {
        for (name, present) in [
            ("secret", raw.secret.is_some()),
            ("secret_env", raw.secret_env.is_some()),
        ] {
            if present {
                return Err(ConfigError::new(
                    format!("{path}.{name}"),
                    format!("not used with {alg} (set `public_key`)"),
                ));
            }
        }
        let pem_key = format!("{path}.public_key");
        let pem = required(&pem_key, raw.public_key)?;
        let invalid = || ConfigError::new(&pem_key, format!("not a valid {alg} public key (PEM)"));
        match alg.as_str() {
            "ES256" => KeyMaterial::Es256(ES256PublicKey::from_pem(&pem).map_err(|_| invalid())?),
            "EdDSA" => KeyMaterial::EdDsa(Ed25519PublicKey::from_pem(&pem).map_err(|_| invalid())?),
            _ => KeyMaterial::Rs256(RS256PublicKey::from_pem(&pem).map_err(|_| invalid())?),
        }
    };
    Ok(VerificationKey { kid, material })
}

fn rules(raw: RawRules) -> Result<AuthorizationRules> {
    let allowed_subjects = globs("rules.allowed_subjects", raw.allowed_subjects, false)?;
    let allowed_emails = globs("rules.allowed_emails", raw.allowed_emails, true)?;
    let mut allowed_email_domains = Vec::new();
    for (i, domain) in raw
        .allowed_email_domains
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let key = format!("rules.allowed_email_domains[{i}]");
        plain(&key, &domain)?;
        if domain.contains(|c: char| c == '@' || c.is_whitespace()) {
            return Err(ConfigError::new(
                key,
                "must be a bare domain (no `@`, no spaces)",
            ));
        }
        allowed_email_domains.push(domain.to_lowercase());
    }
    let groups_claim = raw.groups_claim.unwrap_or_else(|| "groups".to_string());
    plain("rules.groups_claim", &groups_claim)?;
    let mut required_groups = Vec::new();
    for (i, group) in raw
        .required_groups
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if group.is_empty() {
            return Err(ConfigError::new(
                format!("rules.required_groups[{i}]"),
                "must not be empty",
            ));
        }
        required_groups.push(group);
    }
    Ok(AuthorizationRules {
        allowed_subjects,
        allowed_emails,
        allowed_email_domains,
        groups_claim,
        required_groups,
        require_email_verified: raw.require_email_verified.unwrap_or(false),
    })
}

fn globs(key: &str, raw: Option<Vec<String>>, lower: bool) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, glob) in raw.unwrap_or_default().into_iter().enumerate() {
        let item = format!("{key}[{i}]");
        plain(&item, &glob)?;
        if glob.chars().count() > MAX_GLOB_LEN {
            return Err(ConfigError::new(
                item,
                format!("longer than {MAX_GLOB_LEN} characters"),
            ));
        }
        out.push(if lower { glob.to_lowercase() } else { glob });
    }
    Ok(out)
}

/// Headers an identity mapping must never set: credentials, framing and
/// hop-by-hop headers.
const RESERVED_HEADERS: [&str; 14] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "host",
    "content-length",
    "content-type",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn identity_headers(
    raw: std::collections::BTreeMap<String, String>,
    token_header: &str,
    groups_claim: &str,
) -> Result<Vec<IdentityHeader>> {
    let mut out = Vec::with_capacity(raw.len());
    for (header, claim) in raw {
        let key = format!("identity_headers.{header}");
        header_name(&key, &header)?;
        if RESERVED_HEADERS.contains(&header.as_str()) || header == token_header {
            return Err(ConfigError::new(
                key,
                "reserved header (credentials, framing or hop-by-hop)",
            ));
        }
        plain(&key, &claim)?;
        let list = claim == groups_claim;
        out.push(IdentityHeader { header, claim, list });
    }
    Ok(out)
}

/// `session_headers`: valid, unreserved names, none already used by an
/// identity header or by the other time (one header, one value).
fn nginx_host(raw: RawNginx) -> Result<NginxHost> {
    let wait_upstream = required("nginx.wait_upstream", raw.wait_upstream)?;
    let valid_host_port = wait_upstream
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
        && wait_upstream.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if !valid_host_port {
        return Err(ConfigError::new(
            "nginx.wait_upstream",
            "must be host:port of the nginx server that serves the wait location (127.0.0.1:8080)",
        ));
    }
    let wait_path = raw.wait_path.unwrap_or_else(|| "/_vigil/wait".to_string());
    if !wait_path.starts_with('/') || !wait_path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            "nginx.wait_path",
            "must be an absolute path without spaces",
        ));
    }
    Ok(NginxHost { wait_upstream, wait_path })
}

fn session_headers(
    raw: RawSessionHeaders,
    identity: &[IdentityHeader],
    token_header: &str,
) -> Result<SessionHeaders> {
    let mut taken: Vec<&str> = identity.iter().map(|h| h.header.as_str()).collect();
    for (field, name) in [
        ("validated_at", raw.validated_at.as_deref()),
        ("revalidate_at", raw.revalidate_at.as_deref()),
    ] {
        let Some(name) = name else { continue };
        let key = format!("session_headers.{field}");
        header_name(&key, name)?;
        if RESERVED_HEADERS.contains(&name) || name == token_header {
            return Err(ConfigError::new(
                key,
                "reserved header (credentials, framing or hop-by-hop)",
            ));
        }
        if taken.contains(&name) {
            return Err(ConfigError::new(
                key,
                format!("header {name:?} is already set by identity_headers or session_headers"),
            ));
        }
        taken.push(name);
    }
    Ok(SessionHeaders {
        validated_at: raw.validated_at,
        revalidate_at: raw.revalidate_at,
    })
}

/// RFC 9110 `tchar`.
pub(super) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn header_name(key: &str, name: &str) -> Result<()> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(ConfigError::new(
            key,
            "not a valid header name (RFC 9110 token, no pseudo-headers)",
        ));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ConfigError::new(key, "header names must be lower-case"));
    }
    Ok(())
}

/// The `idp.*` keys that only matter with `login`, taken out of the raw
/// `idp` section before it is validated.
pub(super) struct RawProvider {
    pub issuer: Option<String>,
    pub discovery: Option<bool>,
    pub authorization_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub end_session_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub metadata_refresh: Option<String>,
    pub authority: Option<String>,
}

impl RawProvider {
    fn take(raw: &mut RawIdp) -> RawProvider {
        RawProvider {
            issuer: raw.issuer.take(),
            discovery: raw.discovery.take(),
            authorization_endpoint: raw.authorization_endpoint.take(),
            jwks_uri: raw.jwks_uri.take(),
            end_session_endpoint: raw.end_session_endpoint.take(),
            revocation_endpoint: raw.revocation_endpoint.take(),
            metadata_refresh: raw.metadata_refresh.take(),
            authority: raw.authority.clone(),
        }
    }

    fn refuse_without_login(&self) -> Result<()> {
        let set = [
            ("idp.issuer", self.issuer.is_some()),
            ("idp.discovery", self.discovery.is_some()),
            ("idp.authorization_endpoint", self.authorization_endpoint.is_some()),
            ("idp.jwks_uri", self.jwks_uri.is_some()),
            ("idp.end_session_endpoint", self.end_session_endpoint.is_some()),
            ("idp.revocation_endpoint", self.revocation_endpoint.is_some()),
            ("idp.metadata_refresh", self.metadata_refresh.is_some()),
        ];
        match set.iter().find(|(_, present)| *present) {
            Some((key, _)) => Err(ConfigError::new(*key, "only used with a `login` section")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
#[path = "parse_tests.rs"]
mod tests;
