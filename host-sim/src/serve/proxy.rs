//! The HTTP/1.1 side (tokio + hyper): one worker VM per connection, round robin.

use super::engine::{Command, EngineHandle};
use crate::http::{Outcome, Request};
use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

pub async fn serve(listen: SocketAddr, workers: usize, engine: EngineHandle) -> Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let (socket, _) = listener.accept().await?;
        let worker = next.fetch_add(1, Ordering::Relaxed) % workers;
        let engine = engine.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, worker, engine.clone()));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(socket), service).await;
        });
    }
}

#[derive(Debug)]
struct StreamReset;

impl std::fmt::Display for StreamReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stream reset by the filter")
    }
}

impl std::error::Error for StreamReset {}

async fn handle(req: hyper::Request<Incoming>, worker: usize, engine: EngineHandle) -> Result<hyper::Response<Full<Bytes>>, StreamReset> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let authority = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let mut request = Request::new(parts.method.as_str(), path).authority(authority);
    for (name, value) in &parts.headers {
        if name == hyper::header::HOST || name == hyper::header::CONNECTION || name == hyper::header::CONTENT_LENGTH {
            continue;
        }
        request = request.header(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
    }
    if !body.is_empty() {
        request = request.body(body.to_vec());
    }
    let (respond, outcome) = tokio::sync::oneshot::channel();
    if engine.tx.send(Command::Request { worker, request, respond }).is_err() {
        return Err(StreamReset);
    }
    let reply = match outcome.await {
        Ok(Outcome::Forwarded { reply, .. }) | Ok(Outcome::LocalReply(reply)) | Ok(Outcome::FailedVm(reply)) => reply,
        Ok(Outcome::Reset) | Ok(Outcome::Paused) | Err(_) => return Err(StreamReset),
    };
    let mut response = hyper::Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        if matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection") {
            continue;
        }
        response = response.header(name.as_str(), value.as_str());
    }
    response.body(Full::new(Bytes::from(reply.body))).map_err(|_| StreamReset)
}
