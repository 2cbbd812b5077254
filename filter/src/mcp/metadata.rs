//! The discovery documents and the resource server's challenges:
//! * RFC 9728 protected resource metadata, per resource;
//! * RFC 8414 authorization server metadata (served at the OpenID
//!   discovery paths too: MCP clients try both), listing only what vigil
//!   implements;
//! * the `401`/`403` challenges of protected paths (RFC 6750 §3 with RFC 9728
//!   §5.1's `resource_metadata`, and `scope` when the resource needs some).

use serde_json::{json, Map, Value};

use crate::config::{McpConfig, McpResource};
use crate::reply::LocalReply;

fn metadata_reply(body: &Value) -> LocalReply {
    LocalReply {
        status: 200,
        headers: vec![
            ("content-type", "application/json".to_string()),
            ("cache-control", "public, max-age=300".to_string()),
            ("access-control-allow-origin", "*".to_string()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// RFC 9728 §2 metadata of `resource`.
pub fn resource_metadata(mcp: &McpConfig, resource: &McpResource) -> LocalReply {
    let mut doc = Map::new();
    doc.insert("resource".into(), json!(resource.resource));
    doc.insert("authorization_servers".into(), json!([mcp.issuer]));
    if !resource.scopes.is_empty() {
        doc.insert("scopes_supported".into(), json!(resource.scopes));
    }
    doc.insert("bearer_methods_supported".into(), json!(["header"]));
    if let Some(name) = &resource.name {
        doc.insert("resource_name".into(), json!(name));
    }
    metadata_reply(&Value::Object(doc))
}

/// The client authentication methods some client may use.
pub(crate) fn auth_methods(mcp: &McpConfig) -> Vec<&'static str> {
    let mut methods = vec!["none"];
    for method in ["client_secret_basic", "client_secret_post"] {
        let used = mcp.dynamic_registration || mcp.clients.iter().any(|c| c.auth.method() == method);
        if used {
            methods.push(method);
        }
    }
    methods
}

/// RFC 8414 §2 metadata of vigil as authorization server.
pub fn server_metadata(mcp: &McpConfig) -> LocalReply {
    let endpoint = |path: &str| format!("{}{path}", mcp.issuer_origin);
    let methods = auth_methods(mcp);
    let mut doc = Map::new();
    doc.insert("issuer".into(), json!(mcp.issuer));
    doc.insert("authorization_endpoint".into(), json!(endpoint(&mcp.paths.authorize)));
    doc.insert("token_endpoint".into(), json!(endpoint(&mcp.paths.token)));
    if mcp.dynamic_registration {
        doc.insert("registration_endpoint".into(), json!(endpoint(&mcp.paths.register)));
    }
    doc.insert("revocation_endpoint".into(), json!(endpoint(&mcp.paths.revoke)));
    doc.insert("response_types_supported".into(), json!(["code"]));
    doc.insert("response_modes_supported".into(), json!(["query"]));
    doc.insert("grant_types_supported".into(), json!(["authorization_code", "refresh_token"]));
    doc.insert("code_challenge_methods_supported".into(), json!(["S256"]));
    doc.insert("token_endpoint_auth_methods_supported".into(), json!(methods));
    doc.insert("revocation_endpoint_auth_methods_supported".into(), json!(methods));
    if !mcp.scopes.is_empty() {
        doc.insert("scopes_supported".into(), json!(mcp.scopes));
    }
    doc.insert("authorization_response_iss_parameter_supported".into(), json!(true));
    doc.insert("client_id_metadata_document_supported".into(), json!(mcp.cimd.is_some()));
    metadata_reply(&Value::Object(doc))
}

/// The `Bearer` challenge of `resource`: `resource_metadata`, `scope` when
/// it needs scopes, and an RFC 6750 error when a token was refused.
pub fn www_authenticate(resource: &McpResource, error: Option<(&str, &str)>) -> String {
    let mut params = Vec::new();
    if let Some((code, description)) = error {
        params.push(format!("error=\"{code}\""));
        params.push(format!("error_description=\"{}\"", description.replace(['"', '\\'], "'")));
    }
    params.push(format!("resource_metadata=\"{}\"", resource.metadata_url));
    if !resource.scopes.is_empty() {
        params.push(format!("scope=\"{}\"", resource.scopes.join(" ")));
    }
    format!("Bearer {}", params.join(", "))
}

fn challenge_reply(status: u32, resource: &McpResource, error: Option<(&'static str, &'static str)>) -> LocalReply {
    let body = match error {
        Some((code, description)) => json!({ "error": code, "error_description": description }),
        None => json!({ "error": "unauthorized", "error_description": "an access token is required" }),
    };
    LocalReply {
        status,
        headers: vec![
            ("www-authenticate", www_authenticate(resource, error)),
            ("content-type", "application/json".to_string()),
            ("cache-control", "no-store".to_string()),
            ("access-control-allow-origin", "*".to_string()),
            ("access-control-expose-headers", "www-authenticate".to_string()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// `401` for a request without a token (no `error`, RFC 6750 §3.1).
pub fn missing_token(resource: &McpResource) -> LocalReply {
    challenge_reply(401, resource, None)
}

/// `401 invalid_token` (refused, expired, revoked, ended session).
pub fn invalid_token(resource: &McpResource, description: &'static str) -> LocalReply {
    challenge_reply(401, resource, Some(("invalid_token", description)))
}

/// `400 invalid_request` (a malformed `Authorization` header).
pub fn invalid_request(resource: &McpResource, description: &'static str) -> LocalReply {
    challenge_reply(400, resource, Some(("invalid_request", description)))
}

/// `403 insufficient_scope` with the scopes the resource needs.
pub fn insufficient_scope(resource: &McpResource) -> LocalReply {
    challenge_reply(403, resource, Some(("insufficient_scope", "the token lacks a scope this resource requires")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::McpClientAuth;
    use crate::mcp::testing::mcp_config;

    fn json_of(reply: &LocalReply) -> Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    fn header<'a>(reply: &'a LocalReply, name: &str) -> &'a str {
        reply.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str()).unwrap()
    }

    #[test]
    fn resource_metadata_names_vigil_as_the_server() {
        let mcp = mcp_config();
        let doc = json_of(&resource_metadata(&mcp, &mcp.resources[0]));
        assert_eq!(doc["resource"], "https://mcp.example.com/mcp");
        assert_eq!(doc["authorization_servers"], json!(["https://auth.example.com"]));
        assert_eq!(doc["scopes_supported"], json!(["mcp:tools"]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(doc["resource_name"], "Example MCP");
        let bare = json_of(&resource_metadata(&mcp, &mcp.resources[1]));
        assert!(bare.get("scopes_supported").is_none() && bare.get("resource_name").is_none());
    }

    #[test]
    fn server_metadata_lists_only_what_vigil_does() {
        let mut mcp = mcp_config();
        let doc = json_of(&server_metadata(&mcp));
        assert_eq!(doc["issuer"], "https://auth.example.com");
        assert_eq!(doc["authorization_endpoint"], "https://auth.example.com/oauth2/authorize");
        assert_eq!(doc["token_endpoint"], "https://auth.example.com/oauth2/token");
        assert_eq!(doc["registration_endpoint"], "https://auth.example.com/oauth2/register");
        assert_eq!(doc["revocation_endpoint"], "https://auth.example.com/oauth2/revoke");
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            json!(["none", "client_secret_basic", "client_secret_post"])
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["client_id_metadata_document_supported"], true);
        assert!(doc.get("jwks_uri").is_none() && doc.get("id_token_signing_alg_values_supported").is_none());
        mcp.dynamic_registration = false;
        mcp.cimd = None;
        mcp.clients.retain(|c| matches!(c.auth, McpClientAuth::None));
        let doc = json_of(&server_metadata(&mcp));
        assert!(doc.get("registration_endpoint").is_none());
        assert_eq!(doc["client_id_metadata_document_supported"], false);
        assert_eq!(doc["token_endpoint_auth_methods_supported"], json!(["none"]));
    }

    #[test]
    fn challenges_carry_the_metadata_url_and_scope() {
        let mcp = mcp_config();
        let r = missing_token(&mcp.resources[0]);
        assert_eq!(r.status, 401);
        assert_eq!(
            header(&r, "www-authenticate"),
            "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools\""
        );
        assert_eq!(header(&r, "access-control-expose-headers"), "www-authenticate");
        let r = invalid_token(&mcp.resources[1], "expired");
        assert_eq!(
            header(&r, "www-authenticate"),
            "Bearer error=\"invalid_token\", error_description=\"expired\", resource_metadata=\"https://tools.example.com/.well-known/oauth-protected-resource\""
        );
        assert_eq!(insufficient_scope(&mcp.resources[0]).status, 403);
        assert_eq!(invalid_request(&mcp.resources[0], "x").status, 400);
    }
}
