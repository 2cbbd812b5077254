//! The plugin configuration exactly as the operator writes it (JSON).
//!
//! These types are the single source of the accepted keys: `parse.rs`
//! deserializes them and validates the values into `model.rs`, and the
//! `vigil-schema` binary derives the published JSON Schema from them.
//! Every field is optional at this level so that a missing required key is
//! reported by `parse.rs` with its full key path.

use std::collections::BTreeMap;

use serde::Deserialize;

/// What `duration::parse_duration` accepts, for the schema.
#[cfg(feature = "schema")]
const DURATION_PATTERN: &str = "^(0|([0-9]+(ms|s|m|h))+)$";

/// Top-level plugin configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawConfig {
    /// How old a session's last successful validation may be before the next
    /// request revalidates it (duration, default "60s"; "0" disables).
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub revalidate_interval: Option<String>,
    /// Bound on one revalidation, refresh + userinfo (duration, default "10s", > 0).
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub revalidate_timeout: Option<String>,
    /// What a non-fatal IdP failure does (default "allow").
    pub on_failure: Option<RawFailurePolicy>,
    /// Under "allow": deny once the last success is older than this (duration, >= revalidate_interval).
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub max_staleness: Option<String>,
    /// Refresh the upstream access token when it expires within this margin (duration, default "30s").
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub refresh_margin: Option<String>,
    /// Tick period for followers and deadlines (duration, default "50ms", 10ms..=1s).
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub poll_interval: Option<String>,
    /// One shared queue per VM for immediate wake-ups (default true; false,
    /// and only false, with `nginx`, where only `shm_queue` zones can be registered).
    pub wake_queues: Option<bool>,
    /// Set when vigil runs in nginx with ngx_wasm_module (default: none, Envoy).
    pub nginx: Option<RawNginx>,
    /// Prefix of every shared-data key and queue name (default "vigil:").
    pub shared_data_prefix: Option<String>,
    /// Number of session slots in shared data (default 10000, 1..=1000000).
    pub max_sessions: Option<u64>,
    /// Number of revocation buckets in shared data (default 1024, 1..=65536).
    pub revocation_buckets: Option<u64>,
    /// Longest lifetime of a downstream token (duration, default "12h").
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub max_token_lifetime: Option<String>,
    /// The upstream OpenID Connect provider (required).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub idp: Option<RawIdp>,
    /// How vigil-issued downstream tokens are found and verified (required).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub downstream: Option<RawDownstream>,
    /// Conditions on the userinfo claims (default: none).
    pub rules: Option<RawRules>,
    /// Header name (lower-case) -> claim name sent to the upstream service.
    pub identity_headers: Option<BTreeMap<String, String>>,
    /// Headers sent to the upstream service with the session's validation
    /// times, Unix seconds (default: none).
    pub session_headers: Option<RawSessionHeaders>,
    /// Login, callback and logout served by vigil (default: none).
    pub login: Option<RawLogin>,
    /// vigil as the OAuth 2.1 authorization server of MCP clients (default:
    /// none; needs `login`).
    pub mcp: Option<RawMcp>,
}

/// `nginx` section: how requests waiting for the IdP are woken in nginx.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawNginx {
    /// host:port of an nginx server of this instance that serves `wait_path` (required).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub wait_upstream: Option<String>,
    /// The wait location: answers after about `poll_interval` (default "/_vigil/wait").
    pub wait_path: Option<String>,
}

/// `on_failure` values.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum RawFailurePolicy {
    Allow,
    Deny,
}

/// `idp.client_auth` values.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum RawClientAuth {
    ClientSecretBasic,
    ClientSecretPost,
}

/// `idp` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawIdp {
    /// Callout target: Envoy cluster name, or host:port on nginx (required).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub upstream: Option<String>,
    /// `:authority` of the callouts (default: host[:port] of the endpoint URL).
    pub authority: Option<String>,
    /// Absolute http(s) URL of the token endpoint (required).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub token_endpoint: Option<String>,
    /// Absolute http(s) URL of the userinfo endpoint (required).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub userinfo_endpoint: Option<String>,
    /// OAuth client id (required).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub client_id: Option<String>,
    /// OAuth client secret, inline (exactly one of client_secret, client_secret_env).
    pub client_secret: Option<String>,
    /// Name of the VM environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// Client authentication at the token endpoint (default "client_secret_basic").
    pub client_auth: Option<RawClientAuth>,
    /// Issuer URL of ID and logout tokens; discovery runs at
    /// `<issuer>/.well-known/openid-configuration` (required with `login`).
    pub issuer: Option<String>,
    /// Fetch the discovery document (default true; false requires
    /// `authorization_endpoint` and `jwks_uri`).
    pub discovery: Option<bool>,
    /// Authorization endpoint URL (overrides discovery).
    pub authorization_endpoint: Option<String>,
    /// JWKS URL (overrides discovery).
    pub jwks_uri: Option<String>,
    /// RP-initiated logout endpoint URL (overrides discovery).
    pub end_session_endpoint: Option<String>,
    /// RFC 7009 revocation endpoint URL (overrides discovery).
    pub revocation_endpoint: Option<String>,
    /// How often discovery and the JWKS are refetched (duration, default "1h").
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub metadata_refresh: Option<String>,
}

/// `downstream` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawDownstream {
    /// Required `iss` of downstream tokens.
    #[cfg_attr(feature = "schema", schemars(required))]
    pub issuer: Option<String>,
    /// Required `aud` of downstream tokens.
    #[cfg_attr(feature = "schema", schemars(required))]
    pub audience: Option<String>,
    /// Allowed `alg` values: a subset of HS256, ES256, EdDSA, RS256 (required
    /// without `login`; with it, the signing key's `alg` is added).
    pub algorithms: Option<Vec<String>>,
    /// Verification keys (required without `login`, at least one; a kid on each
    /// when several; with `login`, the signing key's public half is added).
    pub keys: Option<Vec<RawKey>>,
    /// Clock skew tolerated on exp/nbf (duration, default "30s").
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub leeway: Option<String>,
    /// Cookie carrying the token for browsers (default "vigil_session"; with
    /// `login`, "__Host-vigil_session" when `cookie_secure` without
    /// `cookie_domain` and with `cookie_path` "/", else "__Secure-vigil_session"
    /// when `cookie_secure`).
    pub cookie_name: Option<String>,
    /// Request header carrying "Bearer <token>" (default "authorization").
    pub header: Option<String>,
}

/// One entry of `downstream.keys`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawKey {
    /// Key id the token header must carry (optional with a single key).
    pub kid: Option<String>,
    /// One of HS256, ES256, EdDSA, RS256 (required).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub alg: Option<String>,
    /// HS256 only: the shared secret (its UTF-8 bytes, at least 32).
    pub secret: Option<String>,
    /// HS256 only: VM environment variable holding the secret.
    pub secret_env: Option<String>,
    /// ES256, EdDSA, RS256: the public key, PEM (SubjectPublicKeyInfo).
    pub public_key: Option<String>,
}

/// `login` section: vigil runs the authorization code flow with PKCE.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawLogin {
    /// Absolute callback URL registered at the IdP; its path is served by vigil (required).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub redirect_uri: Option<String>,
    /// Requested scopes (default ["openid", "profile", "email"]; must contain "openid").
    pub scopes: Option<Vec<String>>,
    /// Send prompt=consent when offline_access is requested (default true).
    pub consent_for_offline_access: Option<bool>,
    /// Path that ends the session (default: none).
    pub logout_path: Option<String>,
    /// Where the IdP sends the browser after logout (absolute URL).
    pub post_logout_redirect_uri: Option<String>,
    /// Path accepting OIDC back-channel logout POSTs (default: none).
    pub backchannel_logout_path: Option<String>,
    /// Lifetime of a login session and its cookie (duration, default "8h", <= max_token_lifetime).
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub session_lifetime: Option<String>,
    /// Time allowed between the redirect to the IdP and the callback (duration, default "10m").
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub state_lifetime: Option<String>,
    /// HMAC key of the login state cookie, at least 32 bytes (default: derived from the signing key).
    pub state_secret: Option<String>,
    /// VM environment variable holding the state cookie key.
    pub state_secret_env: Option<String>,
    /// Key that signs downstream tokens (required); it is added to downstream.keys.
    #[cfg_attr(feature = "schema", schemars(required))]
    pub signing_key: Option<RawSigningKey>,
    /// Domain attribute of the cookies (default: none, host-only).
    pub cookie_domain: Option<String>,
    /// Path attribute of the session cookie (default "/").
    pub cookie_path: Option<String>,
    /// Name of the login state cookie (default: `__Host-`, `__Secure-` or no
    /// prefix like the session cookie, then the session cookie's name
    /// without its prefix, then `_login`: "__Host-vigil_session_login").
    pub state_cookie_name: Option<String>,
    /// Secure attribute (default true; false only for local http development).
    pub cookie_secure: Option<bool>,
    /// Userinfo claims copied into the downstream token (default []).
    pub token_claims: Option<Vec<String>>,
}

/// `login.signing_key`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawSigningKey {
    /// Key id put in the token header (default "vigil").
    pub kid: Option<String>,
    /// EdDSA, ES256 or HS256 (required).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub alg: Option<String>,
    /// EdDSA/ES256: PKCS#8 private key, PEM.
    pub private_key: Option<String>,
    /// EdDSA/ES256: VM environment variable holding the PEM.
    pub private_key_env: Option<String>,
    /// HS256: the secret (at least 32 bytes).
    pub secret: Option<String>,
    /// HS256: VM environment variable holding the secret.
    pub secret_env: Option<String>,
}

/// `rules` section: every non-empty condition must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawRules {
    /// Globs (`*`, `?`) one of which `sub` must match.
    pub allowed_subjects: Option<Vec<String>>,
    /// Globs one of which `email` (lower-cased) must match.
    pub allowed_emails: Option<Vec<String>>,
    /// Domains one of which `email` must end in after `@` (case-insensitive).
    pub allowed_email_domains: Option<Vec<String>>,
    /// Claim holding the groups (default "groups").
    pub groups_claim: Option<String>,
    /// Groups that must all be present.
    pub required_groups: Option<Vec<String>>,
    /// Require `email_verified` to be true (default false).
    pub require_email_verified: Option<bool>,
}

/// `session_headers` section: the header name (lower-case) for each time.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawSessionHeaders {
    /// Header carrying the session's last successful validation (Unix seconds).
    pub validated_at: Option<String>,
    /// Header carrying when the next revalidation is due (Unix seconds; not
    /// sent when revalidation is disabled).
    pub revalidate_at: Option<String>,
}

/// `mcp` section: vigil as the OAuth 2.1 authorization server that MCP
/// clients use to obtain tokens for the protected resources behind it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawMcp {
    /// The protected resources (MCP servers) behind vigil (required, 1 to 16).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub resources: Option<Vec<RawMcpResource>>,
    /// Issuer of the authorization server, an https URL (default: `downstream.issuer`).
    pub issuer: Option<String>,
    /// Scopes clients may request (default []).
    pub scopes: Option<Vec<String>>,
    /// Lifetime of an access token (duration, default "5m", 10s..=1h).
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub access_token_lifetime: Option<String>,
    /// Longest life of a refresh token family (duration, default "8h"; never past the vigil session).
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub refresh_token_lifetime: Option<String>,
    /// Lifetime of an authorization code (duration, default "60s", 10s..=10m).
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub code_lifetime: Option<String>,
    /// Path of the authorization endpoint (default "/oauth2/authorize").
    pub authorization_path: Option<String>,
    /// Path of the token endpoint (default "/oauth2/token").
    pub token_path: Option<String>,
    /// Path of the registration endpoint (default "/oauth2/register").
    pub registration_path: Option<String>,
    /// Path of the revocation endpoint (default "/oauth2/revoke").
    pub revocation_path: Option<String>,
    /// Pre-registered clients (default []).
    pub clients: Option<Vec<RawMcpClient>>,
    /// Accept RFC 7591 dynamic client registration (default true).
    pub dynamic_registration: Option<bool>,
    /// Accept Client ID Metadata Documents (default: none, off).
    pub client_id_metadata_documents: Option<RawMcpCimd>,
    /// Key of client ids, codes and refresh tokens, at least 32 bytes (default: derived from the login signing key).
    pub secret: Option<String>,
    /// VM environment variable holding `secret`.
    pub secret_env: Option<String>,
    /// Refresh token family slots in shared data (default 4096, 1..=1000000).
    pub refresh_families: Option<u64>,
}

/// One entry of `mcp.resources`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawMcpResource {
    /// Canonical URI of the MCP server, the `aud` of its tokens (required).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub resource: Option<String>,
    /// Request paths it covers, each with everything below it (default: the resource URL's path).
    pub paths: Option<Vec<String>>,
    /// Scopes a token needs to use it (default []).
    pub scopes: Option<Vec<String>>,
    /// Human-readable name in its metadata (default: none).
    pub name: Option<String>,
}

/// One entry of `mcp.clients`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawMcpClient {
    /// The client id (required).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub client_id: Option<String>,
    /// Name shown on the consent page.
    pub client_name: Option<String>,
    /// Exact redirect URIs (required; loopback ones match any port).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub redirect_uris: Option<Vec<String>>,
    /// "none", "client_secret_basic" or "client_secret_post" (default "none").
    pub token_endpoint_auth_method: Option<String>,
    /// The client secret inline (secret methods: one of the two).
    pub secret: Option<String>,
    /// VM environment variable holding the client secret.
    pub secret_env: Option<String>,
    /// Grant types: "authorization_code" and optionally "refresh_token" (default both).
    pub grant_types: Option<Vec<String>>,
    /// Ask the user before issuing a code (default true).
    pub consent: Option<bool>,
}

/// `mcp.client_id_metadata_documents`: https client ids are fetched and validated.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawMcpCimd {
    /// Callout target for the documents: an Envoy cluster that reaches them, or host:port on nginx (required).
    #[cfg_attr(feature = "schema", schemars(required))]
    pub upstream: Option<String>,
    /// Accepted hosts: "example.com" or ".example.com" for subdomains (default []: any public host).
    pub allowed_hosts: Option<Vec<String>>,
    /// Timeout of one fetch (duration, default "5s", 1s..=30s).
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub timeout: Option<String>,
    /// Longest use of a fetched document (duration, default "5m", 1m..=24h).
    #[cfg_attr(feature = "schema", schemars(pattern(DURATION_PATTERN)))]
    pub cache_ttl: Option<String>,
    /// Largest accepted document in bytes (default 5120, 256..=65536).
    pub max_document_size: Option<u64>,
    /// Cached documents in shared data (default 256, 1..=65536).
    pub cache_entries: Option<u64>,
}

/// The JSON Schema (draft 2020-12) of [`RawConfig`], pretty-printed.
#[cfg(feature = "schema")]
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(RawConfig);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

#[cfg(all(test, feature = "schema"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::Value;

    #[test]
    fn schema_lists_every_key_and_forbids_unknown_ones() {
        let schema: Value = serde_json::from_str(&super::json_schema()).unwrap();
        let props = schema["properties"].as_object().unwrap();
        for key in ["revalidate_interval", "max_staleness", "idp", "downstream", "rules"] {
            assert!(props.contains_key(key), "{key}");
        }
        assert_eq!(schema["additionalProperties"], Value::Bool(false));
        let text = schema.to_string();
        for key in ["client_secret_env", "public_key", "require_email_verified"] {
            assert!(text.contains(key), "{key}");
        }
        assert!(text.contains("client_secret_basic") && text.contains("deny"));
        let required = schema["required"].as_array().unwrap();
        assert!(required.contains(&Value::from("idp")), "{required:?}");
        assert!(required.contains(&Value::from("downstream")), "{required:?}");
        assert!(props["revalidate_interval"].to_string().contains("ms|s|m|h"));
    }
}
