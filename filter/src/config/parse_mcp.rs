//! The `mcp` section (vigil as the OAuth 2.1 authorization server of MCP
//! clients, `crate::mcp`). Called last by `parse.rs`, with the rest of the
//! configuration already validated.
//!
//! Error texts name keys, never a secret or a URL.

use std::time::Duration;

use super::model::*;
use super::model_mcp::*;
use super::parse::{duration, plain, required, secret, text, ConfigError, Result};
use super::raw::{RawMcp, RawMcpCimd, RawMcpClient, RawMcpResource};
use crate::config::endpoint::HttpUrl;
use crate::mcp::redirect::check_redirect_uri;
use crate::mcp::routes::{canonical_resource, covers, RESOURCE_WELL_KNOWN};

const MAX_RESOURCES: usize = 16;
const MAX_CLIENTS: usize = 64;
const MAX_SCOPES: usize = 64;
const MAX_SCOPE_LEN: usize = 128;
const MAX_PATH_LEN: usize = 256;
const MAX_NAME_LEN: usize = 100;
const MAX_CLIENT_REDIRECT_URIS: usize = 16;
const MIN_SECRET: usize = 32;

/// `config` with its `mcp` section parsed from `raw` (unchanged without one).
pub(super) fn with_mcp(mut config: Config, raw: Option<RawMcp>, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
    if let Some(raw) = raw {
        config.mcp = Some(mcp(raw, &config, env)?);
    }
    Ok(config)
}

fn mcp(raw: RawMcp, cfg: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<McpConfig> {
    let login = cfg.login.as_ref().ok_or_else(|| {
        ConfigError::new("mcp", "requires a `login` section (users log in at the IdP; tokens are signed with `login.signing_key`)")
    })?;
    let (issuer, issuer_url) = match raw.issuer {
        Some(issuer) => {
            let url = server_url("mcp.issuer", &issuer)?;
            (issuer, url)
        }
        None => {
            let issuer = cfg.downstream.issuer.clone();
            let url = server_url("mcp.issuer", &issuer).map_err(|_| {
                ConfigError::new("mcp.issuer", "required: `downstream.issuer` is not an https URL that can name the authorization server")
            })?;
            (issuer, url)
        }
    };
    let issuer_origin = format!("{}://{}", issuer_url.scheme(), issuer_url.authority());
    let issuer_path = if issuer_url.path() == "/" { String::new() } else { issuer_url.path().to_string() };
    let scopes = scopes("mcp.scopes", raw.scopes.unwrap_or_default(), None)?;
    let resources = resources(required("mcp.resources", raw.resources)?, cfg, &scopes)?;
    let max = cfg.max_token_lifetime;
    let access_token_lifetime = bounded_duration(
        "mcp.access_token_lifetime",
        raw.access_token_lifetime.as_deref(),
        "5m",
        Duration::from_secs(10),
        Duration::from_secs(3600).min(max),
    )?;
    let refresh_token_lifetime = bounded_duration(
        "mcp.refresh_token_lifetime",
        raw.refresh_token_lifetime.as_deref(),
        "8h",
        Duration::from_secs(60),
        Duration::from_secs(30 * 24 * 3600),
    )?;
    let code_lifetime = bounded_duration(
        "mcp.code_lifetime",
        raw.code_lifetime.as_deref(),
        "60s",
        Duration::from_secs(10),
        Duration::from_secs(600),
    )?;
    let paths = McpPaths {
        authorize: served_path("mcp.authorization_path", raw.authorization_path, "/oauth2/authorize")?,
        token: served_path("mcp.token_path", raw.token_path, "/oauth2/token")?,
        register: served_path("mcp.registration_path", raw.registration_path, "/oauth2/register")?,
        revoke: served_path("mcp.revocation_path", raw.revocation_path, "/oauth2/revoke")?,
    };
    check_paths(&paths, login, &resources)?;
    let mut clients: Vec<McpClientConfig> = Vec::new();
    let raw_clients = raw.clients.unwrap_or_default();
    if raw_clients.len() > MAX_CLIENTS {
        return Err(ConfigError::new("mcp.clients", format!("at most {MAX_CLIENTS} clients")));
    }
    for (i, raw_client) in raw_clients.into_iter().enumerate() {
        let c = client(&format!("mcp.clients[{i}]"), raw_client, env)?;
        if clients.iter().any(|o| o.client_id == c.client_id) {
            return Err(ConfigError::new(format!("mcp.clients[{i}].client_id"), "duplicate client_id"));
        }
        clients.push(c);
    }
    let cimd = raw.client_id_metadata_documents.map(cimd).transpose()?;
    let ikm = match (raw.secret, raw.secret_env) {
        (None, None) => match &login.signing_key.material {
            SigningMaterial::Hs256(secret) => secret.clone(),
            SigningMaterial::EdDsaPem(pem) | SigningMaterial::Es256Pem(pem) => pem.as_bytes().to_vec(),
        },
        (inline, name) => {
            let value = secret(("mcp.secret", inline), ("mcp.secret_env", name), env)?;
            if value.len() < MIN_SECRET {
                return Err(ConfigError::new("mcp.secret", format!("must be at least {MIN_SECRET} bytes")));
            }
            value.into_bytes()
        }
    };
    let refresh_families = bounded("mcp.refresh_families", raw.refresh_families, 4096, 1_000_000)?;
    let config = McpConfig {
        issuer,
        issuer_origin,
        issuer_path,
        resources,
        scopes,
        access_token_lifetime,
        refresh_token_lifetime,
        code_lifetime,
        paths,
        clients,
        dynamic_registration: raw.dynamic_registration.unwrap_or(true),
        cimd,
        prk: crate::mcp::keys::extract(&ikm),
        refresh_families,
    };
    if cfg.host != HostKind::Envoy {
        check_aliases(cfg, &config)?;
    }
    Ok(config)
}

/// An https URL (http only on a loopback host) in canonical form, without
/// query: the issuer or a resource.
fn server_url(key: &str, value: &str) -> Result<HttpUrl> {
    plain(key, value)?;
    let url = HttpUrl::parse(value).map_err(|problem| ConfigError::new(key, problem))?;
    let loopback = ["127.0.0.1", "[::1]", "localhost"].contains(&url.host());
    if url.scheme() != "https" && !loopback {
        return Err(ConfigError::new(key, "must be an https URL (http only on a loopback host)"));
    }
    if canonical_resource(value).as_deref() != Some(value) {
        return Err(ConfigError::new(
            key,
            "must be canonical: lower-case scheme and host, no default port, no query, no trailing `/`",
        ));
    }
    Ok(url)
}

fn scopes(key: &str, raw: Vec<String>, supported: Option<&[String]>) -> Result<Vec<String>> {
    if raw.len() > MAX_SCOPES {
        return Err(ConfigError::new(key, format!("at most {MAX_SCOPES} scopes")));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, scope) in raw.into_iter().enumerate() {
        let item = format!("{key}[{i}]");
        if scope.len() > MAX_SCOPE_LEN || !crate::mcp::http::is_scope_token(&scope) {
            return Err(ConfigError::new(item, "not a valid scope (RFC 6749 §3.3)"));
        }
        if let Some(supported) = supported {
            if scope == "offline_access" {
                return Err(ConfigError::new(item, "a resource does not require offline_access (MCP: refresh tokens are no resource requirement)"));
            }
            if !supported.contains(&scope) {
                return Err(ConfigError::new(item, "not in `mcp.scopes`"));
            }
        }
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    Ok(out)
}

fn resources(raw: Vec<RawMcpResource>, cfg: &Config, supported: &[String]) -> Result<Vec<McpResource>> {
    if raw.is_empty() || raw.len() > MAX_RESOURCES {
        return Err(ConfigError::new("mcp.resources", format!("must list 1 to {MAX_RESOURCES} resources")));
    }
    let mut out: Vec<McpResource> = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let key = format!("mcp.resources[{i}]");
        let resource = text(&format!("{key}.resource"), r.resource)?;
        let url = server_url(&format!("{key}.resource"), &resource)?;
        if resource == cfg.downstream.audience {
            return Err(ConfigError::new(
                format!("{key}.resource"),
                "must differ from `downstream.audience` (a token for one must never open the other)",
            ));
        }
        if out.iter().any(|o| o.resource == resource) {
            return Err(ConfigError::new(format!("{key}.resource"), "duplicate resource"));
        }
        let path = if url.path() == "/" { String::new() } else { url.path().to_string() };
        let default_paths = vec![if path.is_empty() { "/".to_string() } else { path.clone() }];
        let mut paths = Vec::new();
        for (j, p) in r.paths.unwrap_or(default_paths).into_iter().enumerate() {
            let item = format!("{key}.paths[{j}]");
            let p = served_path(&item, Some(p), "")?;
            if out.iter().any(|o| o.paths.contains(&p)) || paths.contains(&p) {
                return Err(ConfigError::new(item, "already covered by another entry"));
            }
            paths.push(p);
        }
        if paths.is_empty() {
            return Err(ConfigError::new(format!("{key}.paths"), "must list at least one path"));
        }
        let scopes = scopes(&format!("{key}.scopes"), r.scopes.unwrap_or_default(), Some(supported))?;
        let name = match r.name {
            None => None,
            Some(name) => {
                plain(&format!("{key}.name"), &name)?;
                if name.chars().count() > MAX_NAME_LEN {
                    return Err(ConfigError::new(format!("{key}.name"), "at most 100 characters"));
                }
                Some(name)
            }
        };
        out.push(McpResource {
            metadata_url: format!("{}://{}{RESOURCE_WELL_KNOWN}{path}", url.scheme(), url.authority()),
            authority: url.authority(),
            resource,
            path,
            paths,
            scopes,
            name,
        });
    }
    Ok(out)
}

/// An absolute request path: no query, fragment, wildcard, whitespace, dot
/// segment or trailing `/` (except `/` itself), not under `/.well-known/`.
fn served_path(key: &str, value: Option<String>, default: &str) -> Result<String> {
    let path = value.unwrap_or_else(|| default.to_string());
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= MAX_PATH_LEN
        && path.bytes().all(|b| b.is_ascii_graphic() && !b"?#*\\".contains(&b))
        && (path == "/" || !path.ends_with('/'))
        && !path.split('/').any(|s| s == "." || s == "..");
    if !ok {
        return Err(ConfigError::new(
            key,
            "must be a path starting with `/`, without query, `*`, spaces, dot segments or a trailing `/`",
        ));
    }
    if path == "/.well-known" || path.starts_with("/.well-known/") {
        return Err(ConfigError::new(key, "must not be under /.well-known/ (vigil serves the metadata there)"));
    }
    Ok(path)
}

/// The endpoints differ from each other, from the login paths, and from
/// every protected path (an endpoint must never be forwarded).
fn check_paths(paths: &McpPaths, login: &LoginConfig, resources: &[McpResource]) -> Result<()> {
    let endpoints = [
        ("mcp.authorization_path", &paths.authorize),
        ("mcp.token_path", &paths.token),
        ("mcp.registration_path", &paths.register),
        ("mcp.revocation_path", &paths.revoke),
    ];
    let login_paths = [Some(&login.callback_path), login.logout_path.as_ref(), login.backchannel_logout_path.as_ref()];
    for (i, (key, path)) in endpoints.iter().enumerate() {
        if endpoints[..i].iter().any(|(_, p)| p == path) || login_paths.iter().flatten().any(|p| p == path) {
            return Err(ConfigError::new(*key, "must differ from the other MCP and login paths"));
        }
        if resources.iter().flat_map(|r| &r.paths).any(|p| covers(p, path)) {
            return Err(ConfigError::new(*key, "must not be under a protected resource path"));
        }
    }
    for (i, r) in resources.iter().enumerate() {
        for (j, p) in r.paths.iter().enumerate() {
            if login_paths.iter().flatten().any(|l| covers(p, l)) {
                return Err(ConfigError::new(
                    format!("mcp.resources[{i}].paths[{j}]"),
                    "must not cover the login paths",
                ));
            }
        }
    }
    Ok(())
}

fn client(key: &str, raw: RawMcpClient, env: &dyn Fn(&str) -> Option<String>) -> Result<McpClientConfig> {
    let client_id = text(&format!("{key}.client_id"), raw.client_id)?;
    if client_id.len() > 255 || !client_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(format!("{key}.client_id"), "must be 1 to 255 printable ASCII characters"));
    }
    if client_id.starts_with(crate::mcp::client::DYNAMIC_PREFIX) {
        return Err(ConfigError::new(format!("{key}.client_id"), "must not start with `vd1.` (dynamic client ids)"));
    }
    let name = match raw.client_name {
        None => None,
        Some(name) if crate::mcp::cimd::valid_name(&name) => Some(name),
        Some(_) => return Err(ConfigError::new(format!("{key}.client_name"), "1 to 100 characters, no control characters")),
    };
    let uris = required(&format!("{key}.redirect_uris"), raw.redirect_uris)?;
    if uris.is_empty() || uris.len() > MAX_CLIENT_REDIRECT_URIS {
        return Err(ConfigError::new(format!("{key}.redirect_uris"), "must list 1 to 16 redirect URIs"));
    }
    for (i, uri) in uris.iter().enumerate() {
        check_redirect_uri(uri).map_err(|problem| ConfigError::new(format!("{key}.redirect_uris[{i}]"), problem))?;
    }
    let method_key = format!("{key}.token_endpoint_auth_method");
    let secret_key = format!("{key}.secret");
    let auth = match raw.token_endpoint_auth_method.as_deref().unwrap_or("none") {
        "none" => {
            if raw.secret.is_some() || raw.secret_env.is_some() {
                return Err(ConfigError::new(secret_key, "not used with token_endpoint_auth_method none"));
            }
            McpClientAuth::None
        }
        method @ ("client_secret_basic" | "client_secret_post") => {
            let value = secret((&secret_key, raw.secret), (&format!("{key}.secret_env"), raw.secret_env), env)?;
            if value.len() < MIN_SECRET {
                return Err(ConfigError::new(secret_key, format!("must be at least {MIN_SECRET} bytes")));
            }
            if method == "client_secret_basic" {
                McpClientAuth::SecretBasic(value)
            } else {
                McpClientAuth::SecretPost(value)
            }
        }
        _ => {
            return Err(ConfigError::new(
                method_key,
                "must be none, client_secret_basic or client_secret_post",
            ))
        }
    };
    let grants = raw
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    let grant_ok = grants.iter().any(|g| g == "authorization_code")
        && grants.iter().all(|g| g == "authorization_code" || g == "refresh_token");
    if !grant_ok {
        return Err(ConfigError::new(
            format!("{key}.grant_types"),
            "must be authorization_code, optionally with refresh_token",
        ));
    }
    Ok(McpClientConfig {
        client_id,
        name,
        redirect_uris: uris,
        auth,
        refresh: grants.iter().any(|g| g == "refresh_token"),
        consent: raw.consent.unwrap_or(true),
    })
}

fn cimd(raw: RawMcpCimd) -> Result<CimdConfig> {
    const KEY: &str = "mcp.client_id_metadata_documents";
    let upstream = text(&format!("{KEY}.upstream"), raw.upstream)?;
    if upstream.contains(char::is_whitespace) {
        return Err(ConfigError::new(format!("{KEY}.upstream"), "must not contain spaces"));
    }
    let mut allowed_hosts = Vec::new();
    for (i, host) in raw.allowed_hosts.unwrap_or_default().into_iter().enumerate() {
        let name = host.strip_prefix('.').unwrap_or(&host);
        let label_ok = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name.split('.').all(label_ok) || !name.contains('.') {
            return Err(ConfigError::new(
                format!("{KEY}.allowed_hosts[{i}]"),
                "must be a lower-case host name with a dot, optionally starting with `.` for its subdomains",
            ));
        }
        allowed_hosts.push(host);
    }
    Ok(CimdConfig {
        upstream,
        allowed_hosts,
        timeout: bounded_duration(&format!("{KEY}.timeout"), raw.timeout.as_deref(), "5s", Duration::from_secs(1), Duration::from_secs(30))?,
        cache_ttl: bounded_duration(
            &format!("{KEY}.cache_ttl"),
            raw.cache_ttl.as_deref(),
            "5m",
            Duration::from_secs(60),
            Duration::from_secs(24 * 3600),
        )?,
        max_document_size: bounded(&format!("{KEY}.max_document_size"), raw.max_document_size, 5120, 65_536)
            .and_then(|n| {
                if n < 256 {
                    Err(ConfigError::new(format!("{KEY}.max_document_size"), "must be between 256 and 65536"))
                } else {
                    Ok(n as usize)
                }
            })?,
        cache_entries: bounded(&format!("{KEY}.cache_entries"), raw.cache_entries, 256, 65_536)?,
    })
}

fn bounded_duration(key: &str, value: Option<&str>, default: &str, min: Duration, max: Duration) -> Result<Duration> {
    let d = duration(key, value, default)?;
    if d < min || d > max {
        return Err(ConfigError::new(
            key,
            format!("must be between {}s and {}s", min.as_secs(), max.as_secs()),
        ));
    }
    Ok(d)
}

fn bounded(key: &str, value: Option<u64>, default: u32, max: u32) -> Result<u32> {
    match u32::try_from(value.unwrap_or(u64::from(default))) {
        Ok(v) if (1..=max).contains(&v) => Ok(v),
        _ => Err(ConfigError::new(key, format!("must be between 1 and {max}"))),
    }
}

/// ngx_wasm_module: no two keys of the whole key space may share a CRC-32.
fn check_aliases(cfg: &Config, mcp: &McpConfig) -> Result<()> {
    use crate::login::seen::{JTI_TAG, SEEN_BUCKETS, STATE_TAG};
    let prefix = cfg.shared_data_prefix.as_str();
    let seen = [JTI_TAG, STATE_TAG]
        .into_iter()
        .flat_map(move |tag| (0..SEEN_BUCKETS).map(move |i| format!("{prefix}{tag}:{i}")));
    let all = crate::session::keyspace::all_keys(prefix, cfg.max_sessions, cfg.revocation_buckets)
        .chain(seen)
        .chain(crate::mcp::keyspace::mcp_keys(prefix, mcp));
    match crate::mcp::keyspace::first_alias(all) {
        None => Ok(()),
        Some((a, b)) => Err(ConfigError::new(
            "mcp.refresh_families",
            format!("shared-data keys {a:?} and {b:?} have the same CRC-32, which ngx_wasm_module cannot tell apart; choose another refresh_families or client_id_metadata_documents.cache_entries"),
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
#[path = "parse_mcp_tests.rs"]
mod tests;
