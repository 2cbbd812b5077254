//! Thin, non-panicking wrappers over the proxy-wasm hostcalls vigil uses.
//!
//! The SDK's trait methods `unwrap` host statuses and its String getters
//! `unwrap` UTF-8, so a hostile header value would trap the VM (in Envoy: 503
//! for every later request on that worker). Everything here goes through the
//! `hostcalls` functions that return `Result`, and through the `_bytes`
//! variants for anything the client controls.

use crate::store::{SharedStore, StoreError, CREATE_IF_ABSENT_CAS};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, Status};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

/// Whether this VM runs in nginx (ngx_wasm_module), from the configuration's
/// `nginx` section. A property of the proxy process, shared by every plugin
/// of the VM; the hostcall wrappers below follow that host's rules.
static NGINX: AtomicBool = AtomicBool::new(false);

pub fn set_nginx(nginx: bool) {
    NGINX.store(nginx, Ordering::Relaxed);
}

pub fn is_nginx() -> bool {
    NGINX.load(Ordering::Relaxed)
}

/// Current proxy time in nanoseconds since the Unix epoch (0 if unavailable).
pub fn now_ns() -> u64 {
    match hostcalls::get_current_time() {
        Ok(t) => t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0),
        Err(_) => 0,
    }
}

/// 64 random bits from WASI `random_get` (the proxy's CSPRNG); `None` when
/// it fails. They feed secrets (state, nonce, PKCE verifier, session nonces),
/// so there is no fallback: callers fail closed (503).
pub fn random_u64() -> Option<u64> {
    let mut buf = [0u8; 8];
    getrandom::fill(&mut buf).ok().map(|()| u64::from_le_bytes(buf))
}

/// A request header as bytes; `None` when absent or the map is unavailable.
pub fn request_header(name: &str) -> Option<Vec<u8>> {
    hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name).ok().flatten()
}

/// The names of the request's headers (pseudo-headers included).
pub fn request_header_names() -> Vec<String> {
    hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Remove a request header. On nginx a removed header is still sent: there
/// it is blanked instead (replaced by an empty value in place), and the
/// example's `proxy_set_header NAME $http_NAME;` lines make nginx drop empty
/// ones. ngx_wasm_module replaces only one copy reliably, so requests with two
/// copies of a header vigil manages are refused up front (`Vm::request`).
pub fn remove_request_header(name: &str) -> Result<(), Status> {
    if is_nginx() {
        if request_header(name).is_none() {
            return Ok(());
        }
        return hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, Some(b""));
    }
    hostcalls::remove_map_value(MapType::HttpRequestHeaders, name)
}

/// Replace a request header with one value.
pub fn set_request_header(name: &str, value: &str) -> Result<(), Status> {
    hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, Some(value.as_bytes()))
}

/// Every `cookie` line of the request, joined with "; " as one header (a
/// client may split its cookies over several lines; HTTP/2 does), and how many
/// lines there were. Lines that are not UTF-8 are skipped: they cannot carry
/// vigil's (ASCII) cookies.
pub fn request_cookies() -> (Option<String>, usize) {
    let pairs = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
    let lines: Vec<String> = pairs
        .into_iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("cookie"))
        .filter_map(|(_, value)| String::from_utf8(value).ok())
        .collect();
    let count = lines.len();
    ((count > 0).then(|| lines.join("; ")), count)
}

/// Replace every line of a request header by `value` (or by nothing). On
/// nginx, which cannot replace more than one line reliably (its `Cookie` chain
/// least of all), vigil refuses requests with repeated `cookie` lines up front
/// (`Vm::request`): there is one line, replaced in place, and "nothing" is a
/// blank line that the example's `proxy_set_header` drops.
pub fn replace_all_request_lines(name: &str, value: Option<&str>) -> Result<(), Status> {
    if is_nginx() {
        return set_request_header(name, value.unwrap_or(""));
    }
    hostcalls::remove_map_value(MapType::HttpRequestHeaders, name)?;
    match value {
        Some(value) => hostcalls::add_map_value_bytes(MapType::HttpRequestHeaders, name, value.as_bytes()),
        None => Ok(()),
    }
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

    /// The pure logic speaks Envoy's cas rules (module doc of `store`); on
    /// nginx they are translated to ngx_wasm_module's, where a key is created
    /// only with cas 0 and an existing key is written only with its own cas.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        if is_nginx() {
            return nginx_set(key, value, cas);
        }
        host_set(key, value, cas)
    }
}

fn host_set(key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
    let cas = if cas == 0 { None } else { Some(cas) };
    match hostcalls::set_shared_data(key, Some(value), cas) {
        Ok(()) => Ok(()),
        Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
        Err(status) => Err(StoreError::Host(status as u32)),
    }
}

/// Envoy's cas rules on ngx_wasm_module:
/// * `CREATE_IF_ABSENT_CAS` ("create; fail if someone else did"): cas 0,
///   which nginx accepts only for an absent key: an atomic create.
/// * `0` ("write whatever is there"): write with the key's current cas (or
///   0 to create it), re-reading on a race a bounded number of times.
/// * any other cas: the same compare-and-swap as Envoy (both count per write).
fn nginx_set(key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
    match cas {
        CREATE_IF_ABSENT_CAS => host_set_exact(key, value, 0),
        0 => {
            for _ in 0..crate::session::CAS_RETRIES {
                let current = match hostcalls::get_shared_data(key) {
                    Ok((_, Some(cas))) => cas,
                    _ => 0,
                };
                match host_set_exact(key, value, current) {
                    Err(StoreError::CasMismatch) => continue,
                    other => return other,
                }
            }
            Err(StoreError::CasMismatch)
        }
        cas => host_set_exact(key, value, cas),
    }
}

/// A write with exactly this cas (0 included: on nginx it means "create").
fn host_set_exact(key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
    match hostcalls::set_shared_data(key, Some(value), Some(cas)) {
        Ok(()) => Ok(()),
        Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
        Err(status) => Err(StoreError::Host(status as u32)),
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
    // The host takes whole milliseconds: round up, or the proxy's timeout
    // answer (Envoy's 504) could come up to 1 ms before vigil's deadline and
    // be classified as a server error instead of `timeout`. A zero timeout
    // means "no timeout" to Envoy: never send it.
    let millis = u64::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX).max(1);
    let timeout = Duration::from_millis(millis);
    hostcalls::dispatch_http_call(upstream, headers, body, vec![], timeout)
}

/// What the IdP answered, read during `on_http_call_response`.
pub struct CallResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// ngx_wasm_module's `:dispatch_status` of the call being answered ("ok",
/// "timeout", "broken connection", ...); `None` on Envoy.
pub fn call_dispatch_status() -> Option<String> {
    hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":dispatch_status")
        .ok()
        .flatten()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
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

thread_local! {
    /// The HTTP context whose callback is running (set by `adapter::http`).
    static CURRENT_STREAM: Cell<u32> = const { Cell::new(0) };
    /// nginx: response headers a local reply could not carry, by stream.
    static LATE_HEADERS: RefCell<HashMap<u32, Vec<(String, String)>>> = RefCell::new(HashMap::new());
}

/// Called by each HTTP context callback before it hands over to the VM state.
pub fn enter_stream(context_id: u32) {
    CURRENT_STREAM.with(|c| c.set(context_id));
}

/// Send a local reply built by the pure logic. ngx_wasm_module sets each
/// header of a local reply in "replace" mode, so of two `set-cookie` lines
/// only the last would reach the client: there every repeated name after its
/// first line is held back and added in the response-headers callback, which
/// nginx runs for local replies too (`take_late_headers`).
pub fn send_local(reply: &crate::reply::LocalReply) {
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(reply.headers.len());
    let mut late = Vec::new();
    for (name, value) in &reply.headers {
        if is_nginx() && headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            late.push(((*name).to_string(), value.clone()));
        } else {
            headers.push((*name, value.as_str()));
        }
    }
    if !late.is_empty() {
        let stream = CURRENT_STREAM.with(Cell::get);
        LATE_HEADERS.with(|l| l.borrow_mut().insert(stream, late));
    }
    let _ = hostcalls::send_http_response(reply.status, headers, Some(&reply.body));
}

/// nginx: the headers `send_local` held back for this stream's local reply.
pub fn take_late_headers(context_id: u32) -> Vec<(String, String)> {
    LATE_HEADERS.with(|l| l.borrow_mut().remove(&context_id)).unwrap_or_default()
}

/// Add a response header (a repeated name gives one more line).
pub fn add_response_header(name: &str, value: &str) -> Result<(), Status> {
    hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value)
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
    let mut authority = String::new();
    let mut headers = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        let value = String::from_utf8_lossy(&value).into_owned();
        match name.as_str() {
            ":method" => method = value,
            ":path" => path = value,
            ":authority" => authority = value,
            _ if name.starts_with(':') => {}
            _ => headers.push((name, value)),
        }
    }
    crate::login::RequestView { method, path, authority, headers }
}
