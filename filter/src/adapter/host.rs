//! Thin, non-panicking wrappers over the proxy-wasm hostcalls vigil uses.
//!
//! The SDK's trait methods `unwrap` host statuses and its String getters
//! `unwrap` UTF-8, so a hostile header value would trap the VM (in Envoy: 503
//! for every later request on that worker). Everything here goes through the
//! `hostcalls` functions that return `Result`, and through the `_bytes`
//! variants for anything the client controls.

use crate::store::{SharedStore, StoreError};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, Status};
use std::time::{Duration, UNIX_EPOCH};

/// Current proxy time in nanoseconds since the Unix epoch (0 if unavailable).
pub fn now_ns() -> u64 {
    match hostcalls::get_current_time() {
        Ok(t) => t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0),
        Err(_) => 0,
    }
}

/// 64 random bits from WASI `random_get` (the proxy's CSPRNG).
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    match getrandom::fill(&mut buf) {
        Ok(()) => u64::from_le_bytes(buf),
        // No entropy source: fall back to the clock; only used for ids that
        // need uniqueness, never for secrets.
        Err(_) => now_ns() ^ 0x9e37_79b9_7f4a_7c15,
    }
}

/// A request header as bytes; `None` when absent or the map is unavailable.
pub fn request_header(name: &str) -> Option<Vec<u8>> {
    hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name).ok().flatten()
}

/// Remove every copy of a request header.
pub fn remove_request_header(name: &str) -> Result<(), Status> {
    hostcalls::remove_map_value(MapType::HttpRequestHeaders, name)
}

/// Replace a request header (all copies) with one value.
pub fn set_request_header(name: &str, value: &str) -> Result<(), Status> {
    hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, Some(value.as_bytes()))
}

/// The shared data store as the pure logic sees it.
pub struct ProxyStore;

impl SharedStore for ProxyStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), cas)) => Some((value, cas.unwrap_or(0))),
            // Envoy keeps "removed" keys with an empty value: present, empty.
            Ok((None, Some(cas))) => Some((Vec::new(), cas)),
            Ok((None, None)) => None,
            Err(_) => None,
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let cas = if cas == 0 { None } else { Some(cas) };
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(status) => Err(StoreError::Host(status as u32)),
        }
    }
}

/// One outgoing IdP call.
pub fn dispatch(
    upstream: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<u32, Status> {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let body = if body.is_empty() { None } else { Some(body) };
    // A zero timeout means "no timeout" to Envoy: never send it.
    let timeout = timeout.max(Duration::from_millis(1));
    hostcalls::dispatch_http_call(upstream, headers, body, vec![], timeout)
}

/// What the IdP answered, read during `on_http_call_response`.
pub struct CallResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Largest IdP response body vigil reads (userinfo/token answers are small).
const MAX_IDP_BODY: usize = 256 * 1024;

/// Read the callout response; `None` when the call failed (0 headers: reset
/// or connect failure as Envoy reports it).
pub fn read_call_response(num_headers: usize, body_size: usize) -> Option<CallResponse> {
    if num_headers == 0 {
        return None;
    }
    let headers: Vec<(String, String)> = hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let status = headers
        .iter()
        .find(|(k, _)| k == ":status")
        .and_then(|(_, v)| v.parse::<u16>().ok())
        .unwrap_or(0);
    let body = if body_size == 0 {
        Vec::new()
    } else {
        hostcalls::get_buffer(
            proxy_wasm::types::BufferType::HttpCallResponseBody,
            0,
            body_size.min(MAX_IDP_BODY),
        )
        .ok()
        .flatten()
        .unwrap_or_default()
    };
    Some(CallResponse { status, headers, body })
}

/// Send a local reply built by the pure logic.
pub fn send_local(reply: &crate::reply::LocalReply) {
    let headers: Vec<(&str, &str)> = reply.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _ = hostcalls::send_http_response(reply.status, headers, Some(&reply.body));
}

/// The buffered request body (`size` is the cumulative size Envoy reports).
pub fn request_body(size: usize) -> Vec<u8> {
    if size == 0 {
        return Vec::new();
    }
    hostcalls::get_buffer(proxy_wasm::types::BufferType::HttpRequestBody, 0, size)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The request as the login logic sees it. Values that are not UTF-8 are
/// decoded lossily (vigil's own cookies and parameters are ASCII).
pub fn request_view() -> crate::login::RequestView {
    let pairs = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
    let mut method = String::new();
    let mut path = String::new();
    let mut headers = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        let value = String::from_utf8_lossy(&value).into_owned();
        match name.as_str() {
            ":method" => method = value,
            ":path" => path = value,
            _ if name.starts_with(':') => {}
            _ => headers.push((name, value)),
        }
    }
    crate::login::RequestView { method, path, headers }
}
