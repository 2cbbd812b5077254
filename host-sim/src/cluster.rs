//! Callout targets: scripted handlers, manual (the test answers), or a real HTTP/1.1 server on loopback.

use crate::types::VmRef;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

type Handler = dyn Fn(&CalloutRequest) -> CalloutReply + Send + Sync;

/// What answers callouts to one cluster name.
#[derive(Clone)]
pub enum Cluster {
    Scripted(Arc<Handler>),
    Manual,
    Real(String),
}

impl Cluster {
    /// A handler called when the callout is dispatched; its reply is delivered after `CalloutReply::after`.
    pub fn scripted(handler: impl Fn(&CalloutRequest) -> CalloutReply + Send + Sync + 'static) -> Self {
        Cluster::Scripted(Arc::new(handler))
    }

    /// Callouts wait until the test calls `Sim::answer` (or their timeout fires).
    pub fn manual() -> Self {
        Cluster::Manual
    }

    /// Real HTTP/1.1 to `host:port`.
    pub fn real(address: impl Into<String>) -> Self {
        Cluster::Real(address.into())
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cluster::Scripted(_) => f.write_str("Cluster::Scripted"),
            Cluster::Manual => f.write_str("Cluster::Manual"),
            Cluster::Real(a) => write!(f, "Cluster::Real({a})"),
        }
    }
}

/// Identifies a dispatched callout (index into `Sim::callouts()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CalloutId(pub usize);

/// A callout as the filter dispatched it.
#[derive(Clone, PartialEq, Eq)]
pub struct CalloutRequest {
    pub id: CalloutId,
    pub cluster: String,
    /// Lower-cased keys, in the filter's order (pseudo-headers included).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// `None` when the filter passed 0 (no timeout).
    pub timeout: Option<Duration>,
    pub vm: VmRef,
    pub token: u32,
    pub at_ns: u64,
}

impl CalloutRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.header(":path").unwrap_or("")
    }

    pub fn method(&self) -> &str {
        self.header(":method").unwrap_or("")
    }

    pub fn authority(&self) -> &str {
        self.header(":authority").unwrap_or("")
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `application/x-www-form-urlencoded` body field (no percent-decoding beyond `+` and `%XX`).
    pub fn form_field(&self, name: &str) -> Option<String> {
        let body = self.body_str();
        body.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match s.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Debug for CalloutRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CalloutRequest")
            .field("id", &self.id)
            .field("cluster", &self.cluster)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("timeout", &self.timeout)
            .field("vm", &self.vm)
            .field("token", &self.token)
            .field("at_ns", &self.at_ns)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    Response { status: u16, headers: Vec<(String, String)>, body: Vec<u8>, trailers: Vec<(String, String)> },
    Reset,
    ConnectFailure,
    NoAnswer,
    /// An nginx `:dispatch_status` failure (Envoy: the closest equivalent).
    Fail(crate::types::CallFailure),
}

/// How a cluster answers one callout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalloutReply {
    pub(crate) kind: ReplyKind,
    pub(crate) delay: Duration,
}

impl CalloutReply {
    pub fn ok(status: u16) -> Self {
        CalloutReply {
            kind: ReplyKind::Response { status, headers: Vec::new(), body: Vec::new(), trailers: Vec::new() },
            delay: Duration::ZERO,
        }
    }

    /// JSON body with `content-type: application/json`.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        CalloutReply::ok(status).header("content-type", "application/json").body(value.to_string())
    }

    /// The stream is reset before a response: `on_http_call_response(.., 0, 0, 0)` + `get_status` = (11, "reset")
    /// (nginx: `:dispatch_status: broken connection`).
    pub fn reset() -> Self {
        CalloutReply { kind: ReplyKind::Reset, delay: Duration::ZERO }
    }

    /// The cluster cannot be reached: Envoy's router answers 503 "upstream connect error…" (nginx:
    /// `:dispatch_status: broken connection`).
    pub fn connect_failure() -> Self {
        CalloutReply { kind: ReplyKind::ConnectFailure, delay: Duration::ZERO }
    }

    /// A failure as ngx_wasm_module reports it (`:dispatch_status`). On Envoy: `Timeout` ends the call at its
    /// timeout (504), `BrokenConnection` is a reset, `TlsHandshake` and `Resolver` are the router's 503 for a
    /// failed connection, `Reader` is a reset.
    pub fn fail(failure: crate::types::CallFailure) -> Self {
        CalloutReply { kind: ReplyKind::Fail(failure), delay: Duration::ZERO }
    }

    /// Never answers: only the callout's timeout (504) ends it.
    pub fn no_answer() -> Self {
        CalloutReply { kind: ReplyKind::NoAnswer, delay: Duration::ZERO }
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let ReplyKind::Response { headers, .. } = &mut self.kind {
            headers.push((name.into(), value.into()));
        }
        self
    }

    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        if let ReplyKind::Response { body, .. } = &mut self.kind {
            *body = bytes.into();
        }
        self
    }

    pub fn trailer(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let ReplyKind::Response { trailers, .. } = &mut self.kind {
            trailers.push((name.into(), value.into()));
        }
        self
    }

    /// Virtual delay between dispatch (or `Sim::answer`) and delivery.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}
