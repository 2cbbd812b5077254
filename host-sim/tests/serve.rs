//! Serve mode end to end: a loopback upstream, the host-sim binary in front of it, real sockets (bounded by
//! read timeouts, no sleeps).

#[allow(dead_code)]
#[path = "host/common.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let probe = if String::from_utf8_lossy(&seen).contains("x-probe: passed") { "filtered" } else { "unfiltered" };
            let body = format!("upstream {probe}");
            let _ = write!(socket, "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        }
    });
    address
}

struct Proxy {
    child: Child,
    address: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(upstream: &str, extra: &[&str]) -> Proxy {
    let wasm = common::probe("probe-host");
    let mut child = Command::new(env!("CARGO_BIN_EXE_host-sim"))
        .args(["serve", "--wasm", wasm.to_str().unwrap(), "--listen", "127.0.0.1:0", "--upstream", upstream, "--workers", "2"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_string();
    Proxy { child, address }
}

fn get(address: &str, path: &str) -> String {
    let mut socket = TcpStream::connect(address).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(socket, "GET {path} HTTP/1.1\r\nhost: demo.local\r\nconnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn requests_go_through_the_filter_to_the_upstream_and_back() {
    let proxy = serve(&upstream(), &[]);
    let response = get(&proxy.address, "/");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("x-probe-response: 200"), "{response}");
    assert!(response.ends_with("upstream filtered"), "{response}");
    let local = get(&proxy.address, "/local/418");
    assert!(local.starts_with("HTTP/1.1 418"), "{local}");
    assert!(local.ends_with("local body"), "{local}");
}

#[test]
fn an_unreachable_upstream_is_a_502_not_a_crash() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let proxy = serve(&closed, &[]);
    let response = get(&proxy.address, "/");
    assert!(response.starts_with("HTTP/1.1 502"), "{response}");
    assert!(get(&proxy.address, "/local/200").starts_with("HTTP/1.1 200"));
}

fn failing(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_host-sim")).args(args).output().unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn startup_errors_are_clear_and_exit_non_zero() {
    let base = ["serve", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9"];
    let missing = failing(&[&base[..], &["--wasm", "/nonexistent/filter.wasm"]].concat());
    assert!(missing.contains("wasm file not found: /nonexistent/filter.wasm"), "{missing}");

    let dir = std::env::temp_dir().join(format!("host-sim-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.wasm");
    std::fs::write(&bad, b"not wasm").unwrap();
    let bad_module = failing(&[&base[..], &["--wasm", bad.to_str().unwrap()]].concat());
    assert!(bad_module.contains("cannot load"), "{bad_module}");

    let config = dir.join("reject.cfg");
    std::fs::write(&config, b"reject").unwrap();
    let wasm = common::probe("probe-host");
    let rejected = failing(&[&base[..], &["--wasm", wasm.to_str().unwrap(), "--config", config.to_str().unwrap()]].concat());
    assert!(rejected.contains("configuration rejected"), "{rejected}");
    assert!(rejected.contains("rejecting configuration: reject requested"), "{rejected}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn get_with(address: &str, path: &str, header: &str) -> String {
    let mut socket = TcpStream::connect(address).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(socket, "GET {path} HTTP/1.1\r\nhost: demo.local\r\n{header}\r\nconnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn the_nginx_profile_serves_wait_locations_and_calls_host_port_targets_for_real() {
    let upstream = upstream();
    let proxy = serve(&upstream, &["--profile", "nginx", "--shm-queue", "q", "--wait-location", "127.0.0.1:1=20ms"]);
    // vigil's nginx wait location: a 504 after the delay, a success as far as the call goes.
    let wait = get_with(&proxy.address, "/callout-status/127.0.0.1:1", "x-no-body: 1");
    assert!(wait.starts_with("HTTP/1.1 200"), "{wait}");
    assert!(wait.contains("n=2 [:status=504,:dispatch_status=ok,content-type=text/html"), "{wait}");
    // Any other host:port is called over real HTTP.
    let real = get_with(&proxy.address, &format!("/callout-status/{upstream}"), "x-no-body: 1");
    assert!(real.contains(":status=200,:dispatch_status=ok"), "{real}");
}
