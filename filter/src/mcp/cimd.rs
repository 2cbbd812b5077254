//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document):
//! an https `client_id` names a JSON document describing the client. The
//! pure code checks the URL (the SSRF guard), describes the fetch the
//! adapter makes (`CimdFetch`, like the login's `IdpRequest`), validates the
//! answer, and caches the result in shared data.
//!
//! SSRF guard, before any fetch: `https` only, default port only, no
//! userinfo, no fragment, no query, a non-root path, no dot segments; no IP
//! literal outside public unicast space (loopback, private, link-local,
//! CGNAT, unique-local, multicast, documentation, reserved are refused), no
//! single-label, `localhost`, `.local`, `.internal` or `.localdomain` names;
//! and, when `allowed_hosts` is set, only those hosts. The name is resolved
//! by the proxy, so the operator's `upstream` cluster must not reach
//! internal networks either (a DNS name may still resolve to a private
//! address); redirects are never followed (any non-200 answer fails), and
//! the body is bounded by `max_document_size`.
//!
//! Cache: `cache_entries` direct-mapped slots `P mc:<i>`, `i = SHA-256(url) %
//! cache_entries` (a collision just evicts); each holds
//! `{"v":1,"u":url,"x":expires_ns,"c":{"n":name,"r":[uris],"f":refresh}}` or,
//! for a failure, `{"v":1,"u":url,"x":expires_ns,"e":reason}`. A document is
//! used for `cache_ttl`, less when its `Cache-Control: max-age` says so, but
//! at least 60 s (long enough to finish the authorization it was fetched
//! for); a failure is remembered for 60 s, so a broken or hostile URL costs
//! one fetch a minute.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::{AuthMethod, Client, ClientKind, MAX_CLIENT_NAME_LEN};
use super::redirect::check_redirect_uri;
use crate::config::endpoint::HttpUrl;
use crate::config::CimdConfig;
use crate::revalidation::IdpAnswer;
use crate::session::update::cas_update;
use crate::session::Change;
use crate::store::SharedStore;

/// Longest metadata document URL accepted.
pub const MAX_CIMD_URL_LEN: usize = 512;
/// Most redirect URIs a document may list.
pub const MAX_DOCUMENT_REDIRECT_URIS: usize = 16;
/// Shortest use of a fetched document, and how long a failure is kept.
pub const MIN_CACHE_NS: u64 = 60 * 1_000_000_000;
const RECORD_VERSION: u32 = 1;

/// Checks a metadata document URL before anything fetches it.
pub fn check_cimd_url(url: &str, cfg: &CimdConfig) -> Result<HttpUrl, &'static str> {
    if url.len() > MAX_CIMD_URL_LEN {
        return Err("the client_id URL is too long");
    }
    if !url.starts_with("https://") {
        return Err("a client_id URL must use https");
    }
    let parsed = HttpUrl::parse(url).map_err(|_| "the client_id is not a valid https URL")?;
    if parsed.query().is_some() || url.contains('?') {
        return Err("a client_id URL must not have a query");
    }
    if parsed.path() == "/" {
        return Err("a client_id URL must have a path");
    }
    // Not even an explicit `:443`: the URL must be the document's exact id.
    let authority = url.get("https://".len()..).unwrap_or_default().split('/').next().unwrap_or_default();
    let after_host = match authority.rsplit_once(']') {
        Some((_, after)) => after,
        None => authority,
    };
    if after_host.contains(':') {
        return Err("a client_id URL must use the default https port");
    }
    host_allowed(parsed.host(), cfg)?;
    Ok(parsed)
}

fn host_allowed(host: &str, cfg: &CimdConfig) -> Result<(), &'static str> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let addr: Ipv6Addr = inner.parse().map_err(|_| "the client_id host is not valid")?;
        return if public_v6(&addr) { allow_list(host, cfg) } else { Err("the client_id host is not a public address") };
    }
    if let Ok(addr) = host.parse::<Ipv4Addr>() {
        return if public_v4(&addr) { allow_list(host, cfg) } else { Err("the client_id host is not a public address") };
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let internal = !name.contains('.')
        || ["localhost", "local", "internal", "localdomain", "home.arpa", "lan", "intranet"]
            .iter()
            .any(|suffix| name == *suffix || name.ends_with(&format!(".{suffix}")));
    if internal {
        return Err("the client_id host is an internal name");
    }
    allow_list(name, cfg)
}

fn allow_list(host: &str, cfg: &CimdConfig) -> Result<(), &'static str> {
    if cfg.allowed_hosts.is_empty() {
        return Ok(());
    }
    let ok = cfg.allowed_hosts.iter().any(|allowed| match allowed.strip_prefix('.') {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(allowed.as_str()),
        None => host == allowed,
    });
    if ok {
        Ok(())
    } else {
        Err("the client_id host is not in the allowed hosts")
    }
}

fn public_v4(addr: &Ipv4Addr) -> bool {
    let [a, b, c, _] = addr.octets();
    !(addr.is_unspecified()
        || addr.is_loopback()
        || addr.is_private()
        || addr.is_link_local()
        || addr.is_broadcast()
        || addr.is_documentation()
        || addr.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn public_v6(addr: &Ipv6Addr) -> bool {
    if let Some(v4) = addr.to_ipv4_mapped() {
        return public_v4(&v4);
    }
    let s = addr.segments();
    !(addr.is_unspecified()
        || addr.is_loopback()
        || addr.is_multicast()
        || addr.is_unique_local()
        || addr.is_unicast_link_local()
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 (embeds a v4 address)
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard
        || s[0] == 0 // IPv4-compatible and other reserved ::/16
        || (s[0] & 0xffc0) == 0xfec0) // site-local
}

/// The fetch the adapter makes: `dispatch_http_call(upstream, headers, no
/// body, timeout)`, then `crate::mcp::resume` with the answer. A body
/// longer than `max_body` may be dropped unread (pass `IdpAnswer::Reset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CimdFetch {
    /// The client id (the document's URL).
    pub url: String,
    pub upstream: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub max_body: usize,
}

pub(crate) fn fetch_for(url: &HttpUrl, text: &str, cfg: &CimdConfig) -> CimdFetch {
    CimdFetch {
        url: text.to_string(),
        upstream: cfg.upstream.clone(),
        headers: vec![
            (":method".into(), "GET".into()),
            (":path".into(), url.path_and_query()),
            (":authority".into(), url.authority()),
            (":scheme".into(), "https".into()),
            ("accept".into(), "application/json".into()),
        ],
        timeout: cfg.timeout,
        max_body: cfg.max_document_size,
    }
}

/// What the cache or a fetch says about a document URL.
pub(crate) type Resolution = Result<Client, &'static str>;

/// Validates a fetched document for `url` (the exact client id).
pub(crate) fn validate_document(url: &str, body: &[u8], cfg: &CimdConfig) -> Resolution {
    if body.len() > cfg.max_document_size {
        return Err("the client metadata document is too large");
    }
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(body) else {
        return Err("the client metadata document is not a JSON object");
    };
    if doc.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err("the client metadata document's client_id is not its URL");
    }
    let name = match doc.get("client_name") {
        Some(Value::String(n)) if valid_name(n) => n.clone(),
        _ => return Err("the client metadata document needs a client_name"),
    };
    let uris = match doc.get("redirect_uris") {
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_DOCUMENT_REDIRECT_URIS => list,
        _ => return Err("the client metadata document needs 1 to 16 redirect_uris"),
    };
    let mut redirect_uris = Vec::with_capacity(uris.len());
    for uri in uris {
        match uri.as_str().map(|u| (u, check_redirect_uri(u))) {
            Some((u, Ok(_))) => redirect_uris.push(u.to_string()),
            _ => return Err("the client metadata document has an unacceptable redirect URI"),
        }
    }
    match doc.get("token_endpoint_auth_method") {
        None => {}
        Some(Value::String(m)) if m == "none" => {}
        _ => return Err("only public clients (token_endpoint_auth_method none) may use a metadata document"),
    }
    if doc.contains_key("client_secret") {
        return Err("a client metadata document must not contain a client_secret");
    }
    let refresh = grant_types(doc.get("grant_types"))
        .ok_or("the client metadata document's grant_types are not supported")?;
    match doc.get("response_types") {
        None => {}
        Some(Value::Array(list)) if list.iter().all(|t| t == "code") && !list.is_empty() => {}
        _ => return Err("the client metadata document's response_types are not supported"),
    }
    Ok(Client {
        id: url.to_string(),
        kind: ClientKind::Document,
        name: Some(name),
        redirect_uris,
        auth: AuthMethod::None,
        refresh,
        consent: true,
    })
}

/// `Some(refresh allowed)` for grant types vigil supports: a subset of
/// `authorization_code` and `refresh_token` containing the first (absent:
/// `["authorization_code"]`, RFC 7591 §2).
pub(crate) fn grant_types(value: Option<&Value>) -> Option<bool> {
    let Some(value) = value else { return Some(false) };
    let list = value.as_array()?;
    let mut code = false;
    let mut refresh = false;
    for g in list {
        match g.as_str()? {
            "authorization_code" => code = true,
            "refresh_token" => refresh = true,
            _ => return None,
        }
    }
    code.then_some(refresh)
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= MAX_CLIENT_NAME_LEN && !name.chars().any(char::is_control)
}

/// The resolution of a fetch answer, and how long to cache it.
pub(crate) fn resolve_answer(url: &str, answer: &IdpAnswer, cfg: &CimdConfig) -> (Resolution, u64) {
    let ttl_cap = u64::try_from(cfg.cache_ttl.as_nanos()).unwrap_or(u64::MAX);
    match answer {
        IdpAnswer::Response { status: 200, headers, body } => {
            let result = validate_document(url, body, cfg);
            let ttl = match (&result, max_age_ns(headers)) {
                (Err(_), _) => MIN_CACHE_NS,
                (Ok(_), Some(age)) => age.min(ttl_cap).max(MIN_CACHE_NS),
                (Ok(_), None) => ttl_cap.max(MIN_CACHE_NS),
            };
            (result, ttl)
        }
        _ => (Err("the client metadata document could not be fetched"), MIN_CACHE_NS),
    }
}

/// `Cache-Control` `max-age` (0 for `no-store`/`no-cache`), in ns.
fn max_age_ns(headers: &[(String, String)]) -> Option<u64> {
    let value = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("cache-control"))
        .map(|(_, v)| v.to_ascii_lowercase())?;
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        if directive == "no-store" || directive == "no-cache" {
            return Some(0);
        }
        if let Some(n) = directive.strip_prefix("max-age=") {
            age = n.trim_matches('"').parse::<u64>().ok().map(|s| s.saturating_mul(1_000_000_000));
        }
    }
    age
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CachedClient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    r: Vec<String>,
    f: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CacheRecord {
    v: u32,
    u: String,
    x: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<CachedClient>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<String>,
}

/// Shared-data key of the cache slot of `url`.
pub fn cache_key(prefix: &str, entries: u32, url: &str) -> String {
    let digest = hmac_sha256::Hash::hash(url.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let index = u64::from_le_bytes(first) % u64::from(entries.max(1));
    cache_key_at(prefix, u32::try_from(index).unwrap_or(0))
}

/// Shared-data key of cache slot `index`.
pub fn cache_key_at(prefix: &str, index: u32) -> String {
    format!("{prefix}mc:{index}")
}

/// The cached resolution of `url`, if fresh. Failures come back with a
/// fixed reason (the stored text is never shown).
pub(crate) fn cached(store: &dyn SharedStore, prefix: &str, cfg: &CimdConfig, url: &str, now_ns: u64) -> Option<Resolution> {
    let (bytes, _) = store.get(&cache_key(prefix, cfg.cache_entries, url))?;
    let record: CacheRecord = serde_json::from_slice(&bytes).ok()?;
    if record.v != RECORD_VERSION || record.u != url || now_ns >= record.x {
        return None;
    }
    Some(match record.c {
        Some(c) => Ok(Client {
            id: url.to_string(),
            kind: ClientKind::Document,
            name: c.n,
            redirect_uris: c.r,
            auth: AuthMethod::None,
            refresh: c.f,
            consent: true,
        }),
        None => Err("the client metadata document could not be used (cached failure)"),
    })
}

/// Stores a resolution for `ttl_ns` (best effort: a failed write only
/// costs a later fetch).
pub(crate) fn remember(store: &dyn SharedStore, prefix: &str, cfg: &CimdConfig, url: &str, result: &Resolution, ttl_ns: u64, now_ns: u64) {
    let record = CacheRecord {
        v: RECORD_VERSION,
        u: url.to_string(),
        x: now_ns.saturating_add(ttl_ns),
        c: result.as_ref().ok().map(|c| CachedClient {
            n: c.name.clone(),
            r: c.redirect_uris.clone(),
            f: c.refresh,
        }),
        e: result.as_ref().err().map(|e| e.to_string()),
    };
    let _ = cas_update(
        store,
        &cache_key(prefix, cfg.cache_entries, url),
        |_| Some(()),
        |_: &()| serde_json::to_vec(&record).ok(),
        |_| Change::Write((), ()),
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::mcp::testing::cimd_config;
    use crate::store::MemoryStore;

    const URL: &str = "https://client.example.com/oauth/meta.json";

    fn doc(extra: Value) -> Vec<u8> {
        let mut base = serde_json::json!({
            "client_id": URL,
            "client_name": "Example MCP Client",
            "redirect_uris": ["http://127.0.0.1:3000/callback", "http://localhost:3000/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none"
        });
        if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
            for (k, v) in e {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    b.insert(k, v);
                }
            }
        }
        serde_json::to_vec(&base).unwrap()
    }

    #[test]
    fn the_ssrf_guard_refuses_internal_and_odd_urls() {
        let cfg = cimd_config();
        assert!(check_cimd_url(URL, &cfg).is_ok());
        assert!(check_cimd_url("https://8.8.8.8/meta.json", &cfg).is_ok());
        assert!(check_cimd_url("https://[2606:4700::1111]/meta.json", &cfg).is_ok());
        for bad in [
            "http://client.example.com/meta.json",
            "HTTPS://client.example.com/meta.json",
            "https://client.example.com/",
            "https://client.example.com",
            "https://client.example.com/meta.json?x=1",
            "https://client.example.com/meta.json#f",
            "https://user@client.example.com/meta.json",
            "https://client.example.com:8443/meta.json",
            "https://client.example.com:443/meta.json",
            "https://client.example.com/a/../meta.json",
            "https://127.0.0.1/meta.json",
            "https://10.1.2.3/meta.json",
            "https://172.16.0.1/meta.json",
            "https://192.168.1.1/meta.json",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/meta.json",
            "https://0.0.0.0/meta.json",
            "https://224.0.0.1/meta.json",
            "https://255.255.255.255/meta.json",
            "https://[::1]/meta.json",
            "https://[fd00::1]/meta.json",
            "https://[fe80::1]/meta.json",
            "https://[::ffff:127.0.0.1]/meta.json",
            "https://[::ffff:10.0.0.1]/meta.json",
            "https://[64:ff9b::a00:1]/meta.json",
            "https://localhost/meta.json",
            "https://foo.localhost/meta.json",
            "https://metadata/meta.json",
            "https://printer.local/meta.json",
            "https://svc.cluster.internal/meta.json",
            "https://0x7f000001/meta.json",
            "https://2130706433/meta.json",
        ] {
            assert!(check_cimd_url(bad, &cfg).is_err(), "accepted {bad}");
        }
        assert!(check_cimd_url(&format!("https://a.example.com/{}", "x".repeat(MAX_CIMD_URL_LEN)), &cfg).is_err());
    }

    #[test]
    fn an_allow_list_limits_the_hosts() {
        let mut cfg = cimd_config();
        cfg.allowed_hosts = vec!["client.example.com".into(), ".trusted.example".into()];
        assert!(check_cimd_url(URL, &cfg).is_ok());
        assert!(check_cimd_url("https://a.trusted.example/m.json", &cfg).is_ok());
        assert!(check_cimd_url("https://trusted.example/m.json", &cfg).is_err());
        assert!(check_cimd_url("https://eviltrusted.example/m.json", &cfg).is_err());
        assert!(check_cimd_url("https://other.example.com/m.json", &cfg).is_err());
    }

    #[test]
    fn the_fetch_is_a_plain_get_of_the_url() {
        let cfg = cimd_config();
        let url = check_cimd_url(URL, &cfg).unwrap();
        let fetch = fetch_for(&url, URL, &cfg);
        assert_eq!(fetch.upstream, "cimd_proxy");
        assert!(fetch.headers.contains(&(":path".into(), "/oauth/meta.json".into())));
        assert!(fetch.headers.contains(&(":authority".into(), "client.example.com".into())));
        assert_eq!(fetch.max_body, cfg.max_document_size);
    }

    #[test]
    fn documents_are_validated_strictly() {
        let cfg = cimd_config();
        let client = validate_document(URL, &doc(serde_json::json!({})), &cfg).unwrap();
        assert_eq!(client.kind, ClientKind::Document);
        assert!(client.refresh && client.consent);
        assert_eq!(client.name.as_deref(), Some("Example MCP Client"));
        let no_refresh = validate_document(URL, &doc(serde_json::json!({"grant_types": null})), &cfg).unwrap();
        assert!(!no_refresh.refresh);
        for (extra, why) in [
            (serde_json::json!({"client_id": "https://client.example.com/other.json"}), "client_id"),
            (serde_json::json!({"client_id": null}), "client_id"),
            (serde_json::json!({"client_name": null}), "client_name"),
            (serde_json::json!({"client_name": ""}), "client_name"),
            (serde_json::json!({"redirect_uris": []}), "redirect_uris"),
            (serde_json::json!({"redirect_uris": ["https://evil.example/cb#x"]}), "redirect"),
            (serde_json::json!({"redirect_uris": ["http://evil.example/cb"]}), "redirect"),
            (serde_json::json!({"redirect_uris": [1]}), "redirect"),
            (serde_json::json!({"token_endpoint_auth_method": "private_key_jwt"}), "auth"),
            (serde_json::json!({"token_endpoint_auth_method": "client_secret_basic"}), "auth"),
            (serde_json::json!({"client_secret": "s"}), "secret"),
            (serde_json::json!({"grant_types": ["client_credentials"]}), "grants"),
            (serde_json::json!({"grant_types": ["refresh_token"]}), "grants"),
            (serde_json::json!({"response_types": ["token"]}), "response types"),
        ] {
            assert!(validate_document(URL, &doc(extra.clone()), &cfg).is_err(), "{why}: {extra}");
        }
        assert!(validate_document(URL, b"[]", &cfg).is_err());
        assert!(validate_document(URL, b"not json", &cfg).is_err());
        let big = doc(serde_json::json!({"padding": "x".repeat(cfg.max_document_size)}));
        assert_eq!(validate_document(URL, &big, &cfg), Err("the client metadata document is too large"));
    }

    #[test]
    fn answers_are_cached_with_bounded_lifetimes() {
        let cfg = cimd_config();
        let store = MemoryStore::new();
        let ok = IdpAnswer::Response {
            status: 200,
            headers: vec![("cache-control".into(), "public, max-age=120".into())],
            body: doc(serde_json::json!({})),
        };
        let (result, ttl) = resolve_answer(URL, &ok, &cfg);
        assert!(result.is_ok());
        assert_eq!(ttl, 120 * 1_000_000_000);
        remember(&store, "p:", &cfg, URL, &result, ttl, 0);
        assert_eq!(cached(&store, "p:", &cfg, URL, ttl - 1), Some(result.clone()));
        assert_eq!(cached(&store, "p:", &cfg, URL, ttl), None);
        assert_eq!(cached(&store, "p:", &cfg, "https://client.example.com/x.json", 0), None);
        // no-store still lasts the minimum; no header lasts cache_ttl.
        let no_store = IdpAnswer::Response {
            status: 200,
            headers: vec![("Cache-Control".into(), "no-store".into())],
            body: doc(serde_json::json!({})),
        };
        assert_eq!(resolve_answer(URL, &no_store, &cfg).1, MIN_CACHE_NS);
        let plain = IdpAnswer::Response { status: 200, headers: vec![], body: doc(serde_json::json!({})) };
        assert_eq!(resolve_answer(URL, &plain, &cfg).1, u64::try_from(cfg.cache_ttl.as_nanos()).unwrap());
        // Failures (redirects included) are remembered for a minute.
        for answer in [
            IdpAnswer::Response { status: 302, headers: vec![("location".into(), "https://10.0.0.1/".into())], body: vec![] },
            IdpAnswer::Response { status: 404, headers: vec![], body: vec![] },
            IdpAnswer::Timeout,
            IdpAnswer::Reset,
        ] {
            let (result, ttl) = resolve_answer(URL, &answer, &cfg);
            assert!(result.is_err());
            assert_eq!(ttl, MIN_CACHE_NS);
            remember(&store, "p:", &cfg, URL, &result, ttl, 0);
            assert!(cached(&store, "p:", &cfg, URL, 1).unwrap().is_err());
        }
        assert!(store.key_count() <= cfg.cache_entries as usize);
        store.set(&cache_key("p:", cfg.cache_entries, URL), b"garbage", 0).unwrap();
        assert_eq!(cached(&store, "p:", &cfg, URL, 1), None);
    }
}
