//! Which MCP endpoint a request is for, and the canonical form of resource
//! identifiers.

use crate::config::endpoint::HttpUrl;
use crate::config::McpConfig;

/// RFC 9728 well-known path prefix.
pub const RESOURCE_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
/// RFC 8414 well-known path prefix.
pub const SERVER_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
/// OpenID Connect Discovery path.
pub const OPENID_WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// An MCP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpRoute {
    /// Protected resource metadata of `mcp.resources[i]`.
    ResourceMetadata(usize),
    /// Authorization server metadata (RFC 8414 and OpenID discovery paths).
    ServerMetadata,
    /// `GET`: an authorization request; `POST`: the consent form.
    Authorize,
    Token,
    Register,
    Revoke,
    /// A request to protected resource `mcp.resources[i]`: `guard` it.
    Resource(usize),
}

impl McpRoute {
    /// Whether the adapter must buffer the body (at most
    /// `http::MAX_BODY_LEN`, else `http::body_too_large`) before `serve`.
    pub fn reads_body(&self, method: &str) -> bool {
        match self {
            McpRoute::Token | McpRoute::Register | McpRoute::Revoke => method == "POST",
            McpRoute::Authorize => method == "POST",
            _ => false,
        }
    }

    /// Whether `serve` wants the request's vigil session (the cookie's
    /// verified claims, after admission).
    pub fn wants_session(&self) -> bool {
        matches!(self, McpRoute::Authorize)
    }
}

/// `scheme://authority[path]` with a lower-case scheme and host, no default
/// port, no trailing `/` on a root path; `None` for anything that is not an
/// absolute http(s) URI without query and fragment.
pub fn canonical_resource(text: &str) -> Option<String> {
    if text.len() > 512 {
        return None;
    }
    let url = HttpUrl::parse(text).ok()?;
    if url.query().is_some() || text.contains('?') {
        return None;
    }
    let path = if url.path() == "/" { "" } else { url.path() };
    Some(format!("{}://{}{path}", url.scheme(), url.authority()))
}

/// The configured resource `text` names (RFC 8707 `resource`; scheme and
/// host compared case-insensitively, MCP §Canonical Server URI).
pub fn find_resource(mcp: &McpConfig, text: &str) -> Option<usize> {
    let canonical = canonical_resource(text)?;
    mcp.resources.iter().position(|r| r.resource == canonical)
}

/// `host[:port]`, lower-case, without `:443`/`:80`.
fn normal_authority(authority: &str) -> String {
    let lower = authority.trim().to_ascii_lowercase();
    lower
        .strip_suffix(":443")
        .or_else(|| lower.strip_suffix(":80"))
        .unwrap_or(&lower)
        .to_string()
}

/// The resources on the request's authority (all of them when the
/// request names none, or none of them matches: vigil may sit behind a
/// proxy that changes the host).
fn on_host(mcp: &McpConfig, authority: &str) -> Vec<usize> {
    let authority = normal_authority(authority);
    let all = 0..mcp.resources.len();
    let here: Vec<usize> = all.clone().filter(|&i| mcp.resources[i].authority == authority).collect();
    if here.is_empty() {
        all.collect()
    } else {
        here
    }
}

/// Whether `prefix` covers `path`: itself and everything below it.
pub(crate) fn covers(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || path == prefix
        || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// The MCP endpoint of a request (`path` with or without its query), or
/// `None` for everything else. The proxy must normalise paths before vigil
/// sees them (Envoy `normalize_path`, `merge_slashes`; nginx does): vigil
/// compares them byte for byte.
pub fn route(mcp: &McpConfig, path: &str, authority: &str) -> Option<McpRoute> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if path == RESOURCE_WELL_KNOWN {
        // The root form: the resource at this host's root, else this
        // host's only resource.
        let here = on_host(mcp, authority);
        let at_root = here.iter().copied().find(|&i| mcp.resources[i].path.is_empty());
        let only = if here.len() == 1 { here.first().copied() } else { None };
        return at_root.or(only).map(McpRoute::ResourceMetadata);
    }
    if let Some(suffix) = path.strip_prefix(RESOURCE_WELL_KNOWN).filter(|s| s.starts_with('/')) {
        return on_host(mcp, authority)
            .into_iter()
            .find(|&i| mcp.resources[i].path == suffix)
            .or_else(|| mcp.resources.iter().position(|r| r.path == suffix))
            .map(McpRoute::ResourceMetadata);
    }
    let issuer_path = mcp.issuer_path.as_str();
    let server_paths = [
        format!("{SERVER_WELL_KNOWN}{issuer_path}"),
        format!("{OPENID_WELL_KNOWN}{issuer_path}"),
        format!("{issuer_path}{OPENID_WELL_KNOWN}"),
    ];
    if server_paths.iter().any(|p| p == path) {
        return Some(McpRoute::ServerMetadata);
    }
    let paths = &mcp.paths;
    for (endpoint, which) in [
        (&paths.authorize, McpRoute::Authorize),
        (&paths.token, McpRoute::Token),
        (&paths.register, McpRoute::Register),
        (&paths.revoke, McpRoute::Revoke),
    ] {
        if path == endpoint {
            if which == McpRoute::Register && !mcp.dynamic_registration {
                return None;
            }
            return Some(which);
        }
    }
    let covered = |i: &usize| mcp.resources[*i].paths.iter().any(|p| covers(p, path));
    on_host(mcp, authority)
        .into_iter()
        .find(covered)
        .or_else(|| (0..mcp.resources.len()).find(covered))
        .map(McpRoute::Resource)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::testing::mcp_config;

    #[test]
    fn canonical_resources() {
        assert_eq!(canonical_resource("https://MCP.Example.com/mcp").as_deref(), Some("https://mcp.example.com/mcp"));
        assert_eq!(canonical_resource("HTTPS://mcp.example.com:443/mcp").as_deref(), Some("https://mcp.example.com/mcp"));
        assert_eq!(canonical_resource("https://mcp.example.com/").as_deref(), Some("https://mcp.example.com"));
        assert_eq!(canonical_resource("https://mcp.example.com:8443").as_deref(), Some("https://mcp.example.com:8443"));
        for bad in ["mcp.example.com", "https://mcp.example.com#f", "https://mcp.example.com/?", "https://mcp.example.com/mcp?x=1", "urn:x"] {
            assert_eq!(canonical_resource(bad), None, "{bad}");
        }
        let mcp = mcp_config();
        assert_eq!(find_resource(&mcp, "https://mcp.example.com/mcp"), Some(0));
        assert_eq!(find_resource(&mcp, "https://MCP.EXAMPLE.COM/mcp"), Some(0));
        assert_eq!(find_resource(&mcp, "https://tools.example.com/"), Some(1));
        assert_eq!(find_resource(&mcp, "https://mcp.example.com/mcp/"), None);
        assert_eq!(find_resource(&mcp, "https://mcp.example.com/MCP"), None);
        assert_eq!(find_resource(&mcp, "https://evil.example.com/mcp"), None);
    }

    #[test]
    fn every_endpoint_is_found_by_its_path() {
        let mcp = mcp_config();
        let r = |p: &str, a: &str| route(&mcp, p, a);
        assert_eq!(r("/.well-known/oauth-protected-resource/mcp", "mcp.example.com"), Some(McpRoute::ResourceMetadata(0)));
        assert_eq!(r("/.well-known/oauth-protected-resource/mcp", ""), Some(McpRoute::ResourceMetadata(0)));
        assert_eq!(r("/.well-known/oauth-protected-resource", "tools.example.com"), Some(McpRoute::ResourceMetadata(1)));
        assert_eq!(r("/.well-known/oauth-protected-resource", "mcp.example.com:443"), Some(McpRoute::ResourceMetadata(0)));
        assert_eq!(r("/.well-known/oauth-protected-resource/other", ""), None);
        assert_eq!(r("/.well-known/oauth-authorization-server", ""), Some(McpRoute::ServerMetadata));
        assert_eq!(r("/.well-known/openid-configuration?x", ""), Some(McpRoute::ServerMetadata));
        assert_eq!(r("/oauth2/authorize?client_id=x", ""), Some(McpRoute::Authorize));
        assert_eq!(r("/oauth2/token", ""), Some(McpRoute::Token));
        assert_eq!(r("/oauth2/register", ""), Some(McpRoute::Register));
        assert_eq!(r("/oauth2/revoke", ""), Some(McpRoute::Revoke));
        assert_eq!(r("/mcp", "mcp.example.com"), Some(McpRoute::Resource(0)));
        assert_eq!(r("/mcp/messages?session=1", ""), Some(McpRoute::Resource(0)));
        assert_eq!(r("/tools", ""), Some(McpRoute::Resource(1)));
        assert_eq!(r("/mcpx", ""), None);
        assert_eq!(r("/", ""), None);
        let mut off = mcp.clone();
        off.dynamic_registration = false;
        assert_eq!(route(&off, "/oauth2/register", ""), None);
        let mut tenant = mcp.clone();
        tenant.issuer_path = "/tenant".into();
        assert_eq!(route(&tenant, "/.well-known/oauth-authorization-server/tenant", ""), Some(McpRoute::ServerMetadata));
        assert_eq!(route(&tenant, "/.well-known/openid-configuration/tenant", ""), Some(McpRoute::ServerMetadata));
        assert_eq!(route(&tenant, "/tenant/.well-known/openid-configuration", ""), Some(McpRoute::ServerMetadata));
        assert_eq!(route(&tenant, "/.well-known/oauth-authorization-server", ""), None);
        assert!(McpRoute::Token.reads_body("POST") && !McpRoute::Authorize.reads_body("GET"));
        assert!(McpRoute::Authorize.wants_session() && !McpRoute::Token.wants_session());
    }

    #[test]
    fn path_coverage_is_by_segment() {
        assert!(covers("/mcp", "/mcp") && covers("/mcp", "/mcp/x") && covers("/", "/anything"));
        assert!(!covers("/mcp", "/mcpx") && !covers("/mcp", "/") && !covers("/mcp", "/MCP"));
    }
}
