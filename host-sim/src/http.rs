//! What a test sends and what it gets back: requests, replies, outcomes.

use std::fmt;

/// A downstream request. Pseudo-headers `:method`, `:path`, `:authority`, `:scheme` come first, as Envoy's HCM
/// has populated them before the filter runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authority: String,
    pub scheme: String,
    pub headers: Vec<(String, String)>,
    /// Headers whose values are arbitrary bytes (not UTF-8, say), after `headers`.
    pub raw_headers: Vec<(String, Vec<u8>)>,
    /// Body chunks as they arrive (one chunk per `.body()` call).
    pub body_chunks: Vec<Vec<u8>>,
    pub trailers: Vec<(String, String)>,
    /// What the upstream answers if the request is forwarded.
    pub upstream_reply: Reply,
}

impl Request {
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Request {
            method: method.into(),
            path: path.into(),
            authority: "example.com".into(),
            scheme: "http".into(),
            headers: Vec::new(),
            raw_headers: Vec::new(),
            body_chunks: Vec::new(),
            trailers: Vec::new(),
            upstream_reply: Reply::default(),
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new("GET", path)
    }

    pub fn post(path: impl Into<String>) -> Self {
        Self::new("POST", path)
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A header whose value is any bytes (a client may send bytes that are not UTF-8).
    pub fn header_bytes(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.raw_headers.push((name.into(), value.into()));
        self
    }

    /// Appends a body chunk (call several times to deliver the body in pieces).
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body_chunks.push(bytes.into());
        self
    }

    pub fn trailer(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.trailers.push((name.into(), value.into()));
        self
    }

    pub fn authority(mut self, host: impl Into<String>) -> Self {
        self.authority = host.into();
        self
    }

    pub fn scheme(mut self, scheme: impl Into<String>) -> Self {
        self.scheme = scheme.into();
        self
    }

    pub fn upstream_reply(mut self, reply: Reply) -> Self {
        self.upstream_reply = reply;
        self
    }

    pub(crate) fn header_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = vec![
            (":authority".to_string(), self.authority.clone()),
            (":path".to_string(), self.path.clone()),
            (":method".to_string(), self.method.clone()),
            (":scheme".to_string(), self.scheme.clone()),
        ];
        pairs.extend(self.headers.iter().cloned());
        pairs
    }
}

/// An HTTP response (upstream, local or synthesised by the host). `headers` exclude `:status`.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Default for Reply {
    fn default() -> Self {
        Reply::new(200).with_header("content-type", "text/plain").with_body(b"upstream ok".to_vec())
    }
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Reply { status, headers: Vec::new(), body: Vec::new() }
    }

    /// Builder: adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Builder: sets the body.
    pub fn with_body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = bytes.into();
        self
    }

    /// First value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Every value of a header, in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

/// The request as it left the filter towards the upstream.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// Final headers including pseudo-headers, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

impl UpstreamRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

impl fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamRequest")
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("trailers", &self.trailers)
            .finish()
    }
}

/// Where a stream stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not finished: paused by the filter (or waiting for an upstream in serve mode).
    Paused,
    /// Went upstream; `reply` is what the client received after the response path ran.
    Forwarded { upstream_request: UpstreamRequest, reply: Reply },
    /// The filter answered itself (`send_http_response`); the reply as the client received it.
    LocalReply(Reply),
    /// Reset by the filter (`close_stream`/`reset_http_request`) or abandoned by the client.
    Reset,
    /// The VM failed (FAIL_CLOSED / FAIL_RELOAD before the reload): Envoy's 503 `wasm_fail_stream`.
    FailedVm(Reply),
}

impl Outcome {
    /// Status the client saw, if a response was sent.
    pub fn status(&self) -> Option<u16> {
        self.reply().map(|r| r.status)
    }

    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Outcome::Forwarded { reply, .. } | Outcome::LocalReply(reply) | Outcome::FailedVm(reply) => Some(reply),
            Outcome::Paused | Outcome::Reset => None,
        }
    }

    pub fn is_paused(&self) -> bool {
        matches!(self, Outcome::Paused)
    }

    pub fn is_forwarded(&self) -> bool {
        matches!(self, Outcome::Forwarded { .. })
    }

    pub fn is_local_reply(&self) -> bool {
        matches!(self, Outcome::LocalReply(_))
    }

    pub fn upstream_request(&self) -> Option<&UpstreamRequest> {
        match self {
            Outcome::Forwarded { upstream_request, .. } => Some(upstream_request),
            _ => None,
        }
    }

    /// A header of the request that went upstream (None when not forwarded).
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.upstream_request().and_then(|r| r.header(name)).map(str::to_string)
    }
}
