//! The IdP's metadata: the discovery document (only the members vigil
//! uses), configured endpoints taking precedence, and the per-VM parsed view
//! of what shared data holds.
//!
//! Shared data (prefix P): `P d:discovery` and `P d:jwks` hold the last
//! successful fetches with their time; `fetch.rs` writes them, every VM
//! reads them. Both are bounded (a few fields; at most `MAX_KEYS` stripped
//! JWKs).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::jwks::JwkSet;
use crate::config::parse::endpoint_from_url;
use crate::config::{Config, Endpoint, ProviderConfig};
use crate::store::SharedStore;

pub const RECORD_VERSION: u32 = 1;
/// Largest discovery document accepted.
pub const MAX_DISCOVERY_LEN: usize = 64 * 1024;

pub fn discovery_key(prefix: &str) -> String {
    format!("{prefix}d:discovery")
}

pub fn jwks_key(prefix: &str) -> String {
    format!("{prefix}d:jwks")
}

/// The members of a discovery document vigil uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryRecord {
    pub v: u32,
    pub fetched_ns: u64,
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
}

/// The stripped JWKs of the last JWKS fetch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwksRecord {
    pub v: u32,
    pub fetched_ns: u64,
    pub keys: Vec<Value>,
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    if bytes.is_empty() {
        return None;
    }
    let value: Value = serde_json::from_slice(bytes).ok()?;
    if value.get("v").and_then(Value::as_u64) != Some(u64::from(RECORD_VERSION)) {
        return None;
    }
    serde_json::from_value(value).ok()
}

impl DiscoveryRecord {
    pub fn decode(bytes: &[u8]) -> Option<DiscoveryRecord> {
        decode(bytes)
    }
}

impl JwksRecord {
    pub fn decode(bytes: &[u8]) -> Option<JwksRecord> {
        decode(bytes)
    }
}

/// A URL member: absent is fine, present must be an acceptable http(s) URL.
fn url_member(doc: &Value, name: &str) -> Result<Option<String>, &'static str> {
    match doc.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url)) if endpoint_from_url(url, None).is_some() => Ok(Some(url.clone())),
        Some(_) => Err("discovery document has an invalid endpoint URL"),
    }
}

/// Validates a discovery answer: a JSON object whose `issuer` equals the
/// configured issuer byte for byte, with the endpoints login needs unless
/// they are configured.
pub fn parse_discovery(
    body: &[u8],
    cfg: &ProviderConfig,
    now_ns: u64,
) -> Result<DiscoveryRecord, &'static str> {
    if body.len() > MAX_DISCOVERY_LEN {
        return Err("discovery document too large");
    }
    let doc: Value = serde_json::from_slice(body).map_err(|_| "discovery document is not JSON")?;
    if !doc.is_object() {
        return Err("discovery document is not a JSON object");
    }
    if doc.get("issuer").and_then(Value::as_str) != Some(cfg.issuer.as_str()) {
        return Err("discovery issuer differs from the configured issuer");
    }
    let record = DiscoveryRecord {
        v: RECORD_VERSION,
        fetched_ns: now_ns,
        issuer: cfg.issuer.clone(),
        authorization_endpoint: url_member(&doc, "authorization_endpoint")?,
        jwks_uri: url_member(&doc, "jwks_uri")?,
        end_session_endpoint: url_member(&doc, "end_session_endpoint")?,
        revocation_endpoint: url_member(&doc, "revocation_endpoint")?,
    };
    if cfg.authorization_endpoint.is_none() && record.authorization_endpoint.is_none() {
        return Err("discovery document has no authorization_endpoint");
    }
    if cfg.jwks_uri.is_none() && record.jwks_uri.is_none() {
        return Err("discovery document has no jwks_uri");
    }
    Ok(record)
}

/// The endpoints login uses, configured ones first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    /// Where browsers are sent (full URL; may carry a query).
    pub authorization_endpoint: String,
    pub jwks_uri: Endpoint,
    pub end_session_endpoint: Option<String>,
    pub revocation_endpoint: Option<Endpoint>,
}

impl ProviderMetadata {
    /// `None` while discovery is needed and has not succeeded.
    pub fn resolve(
        cfg: &ProviderConfig,
        discovered: Option<&DiscoveryRecord>,
    ) -> Option<ProviderMetadata> {
        let found = |pick: fn(&DiscoveryRecord) -> &Option<String>| {
            discovered.and_then(|d| pick(d).clone())
        };
        if cfg.discovery && discovered.is_none() {
            return None;
        }
        let authority = cfg.authority.as_deref();
        let authorization_endpoint = cfg
            .authorization_endpoint
            .clone()
            .or_else(|| found(|d| &d.authorization_endpoint))?;
        let jwks_uri = match &cfg.jwks_uri {
            Some(ep) => ep.clone(),
            None => endpoint_from_url(&found(|d| &d.jwks_uri)?, authority)?,
        };
        let end_session_endpoint = cfg
            .end_session_endpoint
            .clone()
            .or_else(|| found(|d| &d.end_session_endpoint));
        let revocation_endpoint = match &cfg.revocation_endpoint {
            Some(ep) => Some(ep.clone()),
            None => {
                found(|d| &d.revocation_endpoint).and_then(|u| endpoint_from_url(&u, authority))
            }
        };
        Some(ProviderMetadata {
            authorization_endpoint,
            jwks_uri,
            end_session_endpoint,
            revocation_endpoint,
        })
    }
}

/// One VM's parsed copy of the shared metadata and keys; re-parsed only
/// when a record's cas changed (the JWKS is parsed once per fetch per VM).
#[derive(Debug, Default)]
pub struct Provider {
    discovery_cas: Option<u32>,
    jwks_cas: Option<u32>,
    discovery: Option<DiscoveryRecord>,
    metadata: Option<ProviderMetadata>,
    keys: JwkSet,
    jwks_fetched_ns: Option<u64>,
}

impl Provider {
    pub fn new() -> Provider {
        Provider::default()
    }

    /// Re-reads `P d:discovery` and `P d:jwks` (call on every tick and
    /// before serving a login endpoint; cheap when nothing changed).
    pub fn sync(&mut self, store: &dyn SharedStore, cfg: &Config) {
        let Some(login) = &cfg.login else { return };
        let prefix = &cfg.shared_data_prefix;
        let discovery = store.get(&discovery_key(prefix));
        let discovery_cas = discovery.as_ref().map(|(_, cas)| *cas);
        if discovery_cas != self.discovery_cas || self.metadata.is_none() {
            self.discovery_cas = discovery_cas;
            self.discovery = discovery
                .and_then(|(bytes, _)| DiscoveryRecord::decode(&bytes))
                .filter(|d| d.issuer == login.provider.issuer);
            self.metadata = ProviderMetadata::resolve(&login.provider, self.discovery.as_ref());
        }
        let jwks = store.get(&jwks_key(prefix));
        let jwks_cas = jwks.as_ref().map(|(_, cas)| *cas);
        if jwks_cas != self.jwks_cas {
            self.jwks_cas = jwks_cas;
            let record = jwks.and_then(|(bytes, _)| JwksRecord::decode(&bytes));
            self.jwks_fetched_ns = record.as_ref().map(|r| r.fetched_ns);
            self.keys = record
                .map(|r| JwkSet::from_values(&r.keys))
                .unwrap_or_default();
        }
    }

    /// Metadata and keys, once discovery (when used) and the JWKS succeeded.
    pub fn ready(&self) -> Option<(&ProviderMetadata, &JwkSet)> {
        match &self.metadata {
            Some(m) if !self.keys.is_empty() => Some((m, &self.keys)),
            _ => None,
        }
    }

    /// Metadata even without keys (logout needs no keys).
    pub fn metadata(&self) -> Option<&ProviderMetadata> {
        self.metadata.as_ref()
    }

    pub fn discovery(&self) -> Option<&DiscoveryRecord> {
        self.discovery.as_ref()
    }

    pub fn jwks_fetched_ns(&self) -> Option<u64> {
        self.jwks_fetched_ns
    }
}
