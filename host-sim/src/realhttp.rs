//! A small blocking HTTP/1.1 client for real clusters and serve mode's upstream (loopback, no TLS).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RealResult {
    Response { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    ConnectFailure(String),
    Reset(String),
    Timeout,
}

/// Sends one request (`headers` may include pseudo-headers; they become the request line and Host).
/// What Envoy's router does with a request it opened upstream as soon as the headers went on, when the
/// filter then answers locally: the request head goes out (with the client's framing, no body), then the
/// stream is reset. Errors are ignored: nobody waits for this request.
pub fn send_head_then_reset(address: &str, request: &crate::http::Request) {
    let Some(addr) = address.to_socket_addrs().ok().and_then(|mut a| a.next()) else { return };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else { return };
    let mut head = format!("{} {} HTTP/1.1\r\nhost: {}\r\n", request.method, request.path, request.authority);
    for (k, v) in &request.headers {
        if k != "host" && k != "connection" {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

pub fn send(address: &str, headers: &[(String, String)], body: &[u8], timeout: Option<Duration>) -> RealResult {
    let pseudo = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let method = pseudo(":method").unwrap_or("GET");
    let path = pseudo(":path").unwrap_or("/");
    let host = pseudo(":authority").unwrap_or(address);
    let Some(addr) = address.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return RealResult::ConnectFailure(format!("cannot resolve {address}"));
    };
    let connect_timeout = timeout.unwrap_or(Duration::from_secs(5)).min(Duration::from_secs(5));
    let mut stream = match TcpStream::connect_timeout(&addr, connect_timeout) {
        Ok(s) => s,
        Err(e) => return RealResult::ConnectFailure(e.to_string()),
    };
    let _ = stream.set_read_timeout(Some(timeout.unwrap_or(Duration::from_secs(60))));
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\n");
    for (k, v) in headers {
        if k.starts_with(':') || k == "host" || k == "content-length" || k == "connection" || k == "transfer-encoding" {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    if stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body)).is_err() {
        return RealResult::Reset("write failed".into());
    }
    match read_response(stream) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => RealResult::Timeout,
        Err(e) => RealResult::Reset(e.to_string()),
    }
}

fn read_response(stream: TcpStream) -> std::io::Result<RealResult> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad status line"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("eof in headers"));
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v): &(String, String)| v.clone());
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).map_err(|_| bad("bad chunk"))?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            line.clear();
            reader.read_line(&mut line)?;
        }
        headers.retain(|(k, _)| k != "transfer-encoding");
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = vec![0; len];
        reader.read_exact(&mut body)?;
    } else {
        reader.read_to_end(&mut body)?;
    }
    headers.retain(|(k, _)| k != "connection");
    Ok(RealResult::Response { status, headers, body })
}
