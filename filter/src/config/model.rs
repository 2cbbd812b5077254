//! The validated configuration the rest of the filter works with.
//!
//! `parse.rs` turns the operator's JSON into these types; everything here is
//! already checked (durations parsed, keys decoded, combinations consistent),
//! so request-path code never re-validates.

use std::time::Duration;

/// What to do when the IdP gives a non-fatal answer (outage, 5xx, timeout...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Let the request through with a warning (availability; seed default).
    Allow,
    /// Reject the request with 401 (security).
    Deny,
}

/// How the client authenticates at the IdP token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with url-encoded client id and secret (RFC 6749 §2.3.1).
    SecretBasic,
    /// `client_id` and `client_secret` in the form body.
    SecretPost,
}

/// One endpoint at the IdP, split into what a `dispatch_http_call` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The full URL as configured (for logs and docs only).
    pub url: String,
    /// `:path` including the query string.
    pub path: String,
    /// `:authority` to send (configured `idp.authority`, else the URL's host[:port]).
    pub authority: String,
    /// `:scheme` of the URL (`https` or `http`).
    pub scheme: String,
}

/// Where and how vigil talks to the upstream IdP.
#[derive(Clone, PartialEq, Eq)]
pub struct IdpConfig {
    /// First argument of `dispatch_http_call`: an Envoy cluster name
    /// (`outbound|443||idp.example.com` in Istio) or, on nginx, `host:port`.
    pub upstream: String,
    pub token_endpoint: Endpoint,
    pub userinfo_endpoint: Endpoint,
    pub client_id: String,
    /// Resolved at configure time (inline value or VM environment variable).
    pub client_secret: String,
    pub client_auth: ClientAuth,
}

impl std::fmt::Debug for IdpConfig {
    // The client secret never reaches a log line, even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpConfig")
            .field("upstream", &self.upstream)
            .field("token_endpoint", &self.token_endpoint.url)
            .field("userinfo_endpoint", &self.userinfo_endpoint.url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

/// A key the filter accepts for downstream tokens.
#[derive(Clone)]
pub struct VerificationKey {
    /// `kid` the token header must carry to select this key; `None` = any kid
    /// (only allowed when a single key is configured).
    pub kid: Option<String>,
    pub material: KeyMaterial,
}

/// Key material, one variant per algorithm family so that an HMAC secret can
/// never be used to check an asymmetric token or the reverse.
// Built once per configuration, so the size of the RSA variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum KeyMaterial {
    Hs256(Vec<u8>),
    Es256(jwt_simple::prelude::ES256PublicKey),
    EdDsa(jwt_simple::prelude::Ed25519PublicKey),
    Rs256(jwt_simple::prelude::RS256PublicKey),
}

impl KeyMaterial {
    /// The JOSE `alg` this material verifies.
    pub fn alg(&self) -> &'static str {
        match self {
            KeyMaterial::Hs256(_) => "HS256",
            KeyMaterial::Es256(_) => "ES256",
            KeyMaterial::EdDsa(_) => "EdDSA",
            KeyMaterial::Rs256(_) => "RS256",
        }
    }
}

impl std::fmt::Debug for VerificationKey {
    // Never print key material (HMAC secrets are secrets).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.material.alg())
            .finish()
    }
}

/// How downstream (vigil-issued) tokens are found and checked.
#[derive(Debug, Clone)]
pub struct DownstreamConfig {
    pub issuer: String,
    pub audience: String,
    /// Allowed `alg` values; every configured key's alg must be in it.
    pub algorithms: Vec<String>,
    pub keys: Vec<VerificationKey>,
    /// Clock skew tolerated on `exp`/`nbf`.
    pub leeway: Duration,
    /// Cookie that carries the token for browsers.
    pub cookie_name: String,
    /// Request header that carries `Bearer <token>` (lower-case).
    pub header: String,
}

/// Conditions on the userinfo claims, checked at login and on every fresh
/// userinfo answer; a rule no longer met is handled like a fatal answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationRules {
    /// Globs (`*` any run, `?` one char) on `sub`; empty = no condition.
    pub allowed_subjects: Vec<String>,
    /// Globs on `email`; empty = no condition.
    pub allowed_emails: Vec<String>,
    /// Exact domains (case-insensitive) the `email` must end in after `@`.
    pub allowed_email_domains: Vec<String>,
    /// Claim holding the user's groups (array of strings or one string).
    pub groups_claim: String,
    /// Every one of these groups must be present.
    pub required_groups: Vec<String>,
    /// Require `email_verified == true`.
    pub require_email_verified: bool,
}

/// One identity header sent to the upstream service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeader {
    /// Lower-case header name; incoming copies are always stripped.
    pub header: String,
    /// Claim name in the userinfo (or downstream token) claims.
    pub claim: String,
    /// The claim is a list even when it is one string (`rules.groups_claim`):
    /// a value containing the list separator is refused.
    pub list: bool,
}

/// Headers telling the upstream when the session was last validated and when
/// its next revalidation is due (`session_headers`). Each is off when `None`;
/// incoming copies of a configured name are always stripped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionHeaders {
    /// Lower-case header name for the last successful validation time.
    pub validated_at: Option<String>,
    /// Lower-case header name for the time the next revalidation is due.
    pub revalidate_at: Option<String>,
}

impl SessionHeaders {
    /// The configured names, to strip from incoming requests.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        [self.validated_at.as_deref(), self.revalidate_at.as_deref()]
            .into_iter()
            .flatten()
    }
}

/// The whole validated plugin configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `0` disables revalidation.
    pub revalidate_interval: Duration,
    /// Bound on one revalidation (refresh + userinfo together).
    pub revalidate_timeout: Duration,
    pub on_failure: FailurePolicy,
    /// Under `Allow`: deny anyway once the last success is older than this.
    pub max_staleness: Option<Duration>,
    /// Refresh the upstream access token when it expires within this margin.
    pub refresh_margin: Duration,
    pub idp: IdpConfig,
    pub downstream: DownstreamConfig,
    pub rules: AuthorizationRules,
    pub identity_headers: Vec<IdentityHeader>,
    pub session_headers: SessionHeaders,
    /// Prefix of every shared-data key and queue name.
    pub shared_data_prefix: String,
    /// Number of session slots in shared data (the memory bound).
    pub max_sessions: u32,
    /// Number of revocation buckets in shared data.
    pub revocation_buckets: u32,
    /// Longest lifetime of a downstream token (revocations older than this
    /// are dropped from shared data: every token they covered has expired).
    pub max_token_lifetime: Duration,
    /// Tick period: how often followers poll and paused requests are checked
    /// against their deadline (the only wake-up path on nginx).
    pub poll_interval: Duration,
    /// Register a shared queue per VM so a leader can wake other VMs' waiting
    /// requests at once. `false` on nginx: ngx_wasm_module traps on a queue
    /// name not declared with `shm_queue` and never notifies anyway, so ticks
    /// are the only wake-up there.
    pub wake_queues: bool,
    /// The proxy vigil runs in, where its control flow must differ.
    pub host: HostKind,
    /// Login, callback and logout served by vigil; `None` = tokens come from
    /// elsewhere and only revalidation runs.
    pub login: Option<LoginConfig>,
    /// vigil as the OAuth 2.1 authorization server of MCP clients
    /// (`crate::mcp`); `None` = off. Requires `login`.
    pub mcp: Option<super::model_mcp::McpConfig>,
}

/// The proxy vigil runs in. Only the adapter looks at it: the pure logic is
/// the same on every host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HostKind {
    /// Envoy or Istio (proxy-wasm-cpp-host): the default.
    #[default]
    Envoy,
    /// nginx with Kong's ngx_wasm_module.
    Nginx(NginxHost),
}

/// What vigil needs to know in nginx: where a paused request sends its
/// wait calls (ngx_wasm_module can only resume or answer a request from that
/// request's own callbacks, and only a finished call of its own runs them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxHost {
    /// `host:port` of an nginx server that serves `wait_path`.
    pub wait_upstream: String,
    /// Path of the location that answers after about `poll_interval`.
    pub wait_path: String,
}

impl Config {
    pub fn nginx(&self) -> Option<&NginxHost> {
        match &self.host {
            HostKind::Nginx(host) => Some(host),
            HostKind::Envoy => None,
        }
    }
}

/// How the filter signs the downstream tokens it mints at login. Its public
/// part (or HS256 secret) is also the first key of `downstream.keys`.
#[derive(Clone)]
pub struct SigningKeyConfig {
    pub kid: Option<String>,
    pub material: SigningMaterial,
}

/// Private signing material, checked at configure time.
#[derive(Clone)]
pub enum SigningMaterial {
    Hs256(Vec<u8>),
    /// PKCS#8 PEM of an Ed25519 key.
    EdDsaPem(String),
    /// PKCS#8 (or SEC1) PEM of a P-256 key.
    Es256Pem(String),
}

impl SigningKeyConfig {
    /// A signer for this key (never fails for a parsed configuration).
    pub fn signer(&self) -> Result<crate::token::Signer, crate::token::MintError> {
        use crate::token::Signer;
        match &self.material {
            SigningMaterial::Hs256(secret) => Signer::hs256(secret, self.kid.clone()),
            SigningMaterial::EdDsaPem(pem) => Signer::ed25519_pem(pem, self.kid.clone()),
            SigningMaterial::Es256Pem(pem) => Signer::es256_pem(pem, self.kid.clone()),
        }
    }
}

impl std::fmt::Debug for SigningKeyConfig {
    // Private keys and secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let alg = match self.material {
            SigningMaterial::Hs256(_) => "HS256",
            SigningMaterial::EdDsaPem(_) => "EdDSA",
            SigningMaterial::Es256Pem(_) => "ES256",
        };
        f.debug_struct("SigningKeyConfig")
            .field("kid", &self.kid)
            .field("alg", &alg)
            .finish()
    }
}

/// Where the IdP's metadata comes from: discovery at the issuer, with
/// explicitly configured endpoints taking precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// `iss` of ID tokens and logout tokens; the discovery document's
    /// `issuer` must equal it byte for byte.
    pub issuer: String,
    /// `false`: no discovery; `authorization_endpoint` and `jwks_uri` are
    /// then configured.
    pub discovery: bool,
    /// `<issuer>/.well-known/openid-configuration`, split for a callout.
    pub discovery_endpoint: Endpoint,
    pub authorization_endpoint: Option<String>,
    pub jwks_uri: Option<Endpoint>,
    pub end_session_endpoint: Option<String>,
    pub revocation_endpoint: Option<Endpoint>,
    /// `idp.authority`, applied to discovered endpoints too.
    pub authority: Option<String>,
    /// How often discovery and the JWKS are fetched again.
    pub metadata_refresh: Duration,
}

/// Cookie attributes of the session cookie (and the login state cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    pub domain: Option<String>,
    pub path: String,
    /// `false` only for local development over plain http.
    pub secure: bool,
}

impl CookieConfig {
    /// Whether a cookie with these attributes and `path` may carry the
    /// `__Host-` prefix (RFC 6265bis §4.1.3.2: `Secure`, no `Domain`, `Path=/`).
    pub fn host_prefix_allowed(&self, path: &str) -> bool {
        self.secure && self.domain.is_none() && path == "/"
    }

    /// The strongest prefix a cookie with these attributes and `path` may
    /// carry: `__Host-`, `__Secure-` (any `Secure` cookie) or none.
    pub fn strongest_prefix(&self, path: &str) -> &'static str {
        if self.host_prefix_allowed(path) {
            HOST_PREFIX
        } else if self.secure {
            SECURE_PREFIX
        } else {
            ""
        }
    }
}

/// Cookie name prefixes browsers enforce (compared case-insensitively).
pub const HOST_PREFIX: &str = "__Host-";
pub const SECURE_PREFIX: &str = "__Secure-";

/// `name` without a `__Host-` or `__Secure-` prefix.
pub fn unprefixed_cookie_name(name: &str) -> &str {
    for prefix in [HOST_PREFIX, SECURE_PREFIX] {
        if name.len() >= prefix.len()
            && name.is_char_boundary(prefix.len())
            && name[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            return &name[prefix.len()..];
        }
    }
    name
}

/// The prefix `name` carries (`HOST_PREFIX`, `SECURE_PREFIX` or "").
pub fn cookie_prefix(name: &str) -> &'static str {
    let rest = unprefixed_cookie_name(name);
    match name.len() - rest.len() {
        n if n == HOST_PREFIX.len() => HOST_PREFIX,
        n if n == SECURE_PREFIX.len() => SECURE_PREFIX,
        _ => "",
    }
}

/// The login, callback and logout endpoints vigil serves itself.
#[derive(Debug, Clone)]
pub struct LoginConfig {
    pub provider: ProviderConfig,
    /// Absolute URL registered at the IdP; its path is the callback path.
    pub redirect_uri: String,
    /// Path (without query) of `redirect_uri`.
    pub callback_path: String,
    pub scopes: Vec<String>,
    /// Send `prompt=consent` when `offline_access` is requested.
    pub consent_for_offline_access: bool,
    pub logout_path: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub backchannel_logout_path: Option<String>,
    /// Lifetime of a login session and of the downstream token.
    pub session_lifetime: Duration,
    /// Lifetime of the state cookie (time allowed at the IdP's login page).
    pub state_lifetime: Duration,
    /// HMAC-SHA256 key of the state cookie (at least 32 bytes).
    pub state_secret: Vec<u8>,
    pub signing_key: SigningKeyConfig,
    pub cookie: CookieConfig,
    /// Name of the login state cookie (`Path=/` when it starts with
    /// `__Host-`, else the callback path).
    pub state_cookie_name: String,
    /// Userinfo claims copied into the downstream token.
    pub token_claims: Vec<String>,
}
