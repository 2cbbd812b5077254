//! The validated `mcp` section: vigil as the OAuth 2.1 authorization server
//! of MCP clients (`crate::mcp`). Filled by `parse_mcp.rs`; everything is
//! checked there (URLs, paths, lifetimes, client metadata), so the request
//! path never re-validates.

use std::time::Duration;

/// vigil as the authorization server MCP clients use.
#[derive(Clone)]
pub struct McpConfig {
    /// `iss` of the access tokens and `issuer` of the metadata, exactly as
    /// configured (an https URL, or http on a loopback host; no trailing `/`).
    pub issuer: String,
    /// `scheme://host[:port]` of the issuer: the endpoints are served there.
    pub issuer_origin: String,
    /// The issuer's path (`""` or `/tenant`), for the RFC 8414 well-known forms.
    pub issuer_path: String,
    pub resources: Vec<McpResource>,
    /// Scopes clients may request (`scopes_supported` of the server metadata).
    pub scopes: Vec<String>,
    pub access_token_lifetime: Duration,
    /// Longest life of a refresh token family (never past its vigil session).
    pub refresh_token_lifetime: Duration,
    pub code_lifetime: Duration,
    pub paths: McpPaths,
    pub clients: Vec<McpClientConfig>,
    /// RFC 7591 registration at `paths.register`.
    pub dynamic_registration: bool,
    /// Client ID Metadata Documents; `None` = https client ids are unknown.
    pub cimd: Option<CimdConfig>,
    /// HKDF-SHA256 pseudorandom key every MCP key is expanded from
    /// (`crate::mcp::keys`); derived from `mcp.secret(_env)` or the login
    /// signing key.
    pub prk: [u8; 32],
    /// Refresh-token family slots in shared data (`P mf:<slot>`).
    pub refresh_families: u32,
}

impl std::fmt::Debug for McpConfig {
    // The key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpConfig")
            .field("issuer", &self.issuer)
            .field("resources", &self.resources)
            .field("scopes", &self.scopes)
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("refresh_token_lifetime", &self.refresh_token_lifetime)
            .field("code_lifetime", &self.code_lifetime)
            .field("paths", &self.paths)
            .field("clients", &self.clients)
            .field("dynamic_registration", &self.dynamic_registration)
            .field("cimd", &self.cimd)
            .field("refresh_families", &self.refresh_families)
            .finish_non_exhaustive()
    }
}

/// One protected resource (an MCP server behind vigil).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpResource {
    /// The canonical resource URI (RFC 8707/9728): the `aud` of its tokens.
    /// Lower-case scheme and host, no trailing `/`, no query or fragment.
    pub resource: String,
    /// `host[:port]` of `resource` (default port elided).
    pub authority: String,
    /// Path of `resource` (`""` for a resource at the root).
    pub path: String,
    /// Request paths it covers: each entry covers itself and everything
    /// below it (`/mcp` covers `/mcp` and `/mcp/x`, not `/mcpx`).
    pub paths: Vec<String>,
    /// Scopes a token must carry to use it (the challenge's `scope`).
    pub scopes: Vec<String>,
    /// `resource_name` of its metadata.
    pub name: Option<String>,
    /// The RFC 9728 metadata URL (`/.well-known/oauth-protected-resource` +
    /// the resource path, at the resource's origin).
    pub metadata_url: String,
}

/// The authorization server's own endpoints (absolute paths at the issuer's origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpPaths {
    pub authorize: String,
    pub token: String,
    pub register: String,
    pub revoke: String,
}

/// How a pre-registered client authenticates at the token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub enum McpClientAuth {
    /// A public client (PKCE only).
    None,
    /// RFC 6749 §2.3.1 HTTP Basic.
    SecretBasic(String),
    /// `client_secret` in the form body.
    SecretPost(String),
}

impl McpClientAuth {
    /// The RFC 7591 `token_endpoint_auth_method` name.
    pub fn method(&self) -> &'static str {
        match self {
            McpClientAuth::None => "none",
            McpClientAuth::SecretBasic(_) => "client_secret_basic",
            McpClientAuth::SecretPost(_) => "client_secret_post",
        }
    }
}

impl std::fmt::Debug for McpClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.method())
    }
}

/// A client registered in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpClientConfig {
    pub client_id: String,
    pub name: Option<String>,
    /// Exact redirect URIs (loopback ones match on any port, RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    pub auth: McpClientAuth,
    /// May use the `refresh_token` grant (gets refresh tokens).
    pub refresh: bool,
    /// Ask the user before issuing a code (`false`: a trusted first-party client).
    pub consent: bool,
}

/// Client ID Metadata Documents: https client ids whose document the
/// adapter fetches through `upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CimdConfig {
    /// The `dispatch_http_call` target for the documents (an Envoy cluster
    /// able to reach the allowed hosts, e.g. a dynamic forward proxy; on
    /// nginx `host:port` of a forward proxy).
    pub upstream: String,
    /// Hosts whose documents are accepted: `example.com` (exactly) or
    /// `.example.com` (any subdomain); empty = any public host name.
    pub allowed_hosts: Vec<String>,
    pub timeout: Duration,
    /// How long a fetched document is used (capped by its `Cache-Control`).
    pub cache_ttl: Duration,
    pub max_document_size: usize,
    /// Cache slots in shared data (`P mc:<i>`).
    pub cache_entries: u32,
}
