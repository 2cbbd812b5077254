//! Differential tests: the same probe requests in the real nginx + ngx_wasm_module build (`make nginx`,
//! `.tools/nginx-wasm/sbin/nginx` or `NGINX_BIN`) and in host-sim's nginx profile, compared. Skipped (with a
//! message) when that binary is absent.
//!
//! One nginx runs the probe with one worker, an echo upstream that answers with the request it received, and
//! call targets (an answering server, a refused port, a server that never answers). A second server block
//! carries the `proxy_set_header NAME $http_NAME;` lines of vigil's nginx example.

#[allow(dead_code)]
#[path = "host/common.rs"]
mod common;

use host_sim::{Cluster, Outcome, Profile, Request, ShmEviction, Sim};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn nginx_bin() -> Option<PathBuf> {
    let path = std::env::var_os("NGINX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/nginx-wasm/sbin/nginx"));
    path.exists().then_some(path)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A loopback server answering every connection with `respond(request head + body)`.
fn server(respond: impl Fn(&str) -> Option<String> + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
            let request = read_request(&mut socket);
            match respond(&request) {
                Some(response) => {
                    let _ = socket.write_all(response.as_bytes());
                }
                // Never answer: keep the socket open until the peer goes.
                None => {
                    let mut sink = [0u8; 64];
                    while matches!(socket.read(&mut sink), Ok(n) if n > 0) {}
                }
            }
        }
    });
    address
}

fn read_request(socket: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
            let length = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(0);
            if seen.len() >= end + 4 + length {
                break;
            }
        }
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

fn echo(request: &str) -> Option<String> {
    Some(format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{request}", request.len()))
}

struct Nginx {
    child: Child,
    dir: PathBuf,
    plain: u16,
    example: u16,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // The master stops its workers on TERM (a KILL would orphan them).
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Nginx {
    fn start(bin: &Path, upstream: &str) -> Nginx {
        Nginx::start_with(bin, upstream, "no_queue")
    }

    /// `config`: the probe's configuration in the plain location.
    fn start_with(bin: &Path, upstream: &str, config: &str) -> Nginx {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("host-sim-nginx-real-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let wasm = dir.join("probe.wasm");
        std::fs::copy(common::probe("probe-host"), &wasm).unwrap();
        // Workers run as nobody.
        for path in [dir.clone(), dir.join("logs")] {
            let _ = Command::new("chmod").args(["0777", path.to_str().unwrap()]).status();
        }
        let _ = Command::new("chmod").args(["0644", wasm.to_str().unwrap()]).status();
        let (plain, example) = (free_port(), free_port());
        let conf = format!(
            "worker_processes 1;\nevents {{ worker_connections 256; }}\n\
             wasm {{ module probe {wasm}; shm_kv * 1m; shm_kv ns 1m; }}\n\
             http {{\n  access_log off;\n\
               server {{ listen 127.0.0.1:{plain}; location / {{ proxy_wasm probe '{config}'; proxy_pass http://{upstream}; }} }}\n\
               server {{ listen 127.0.0.1:{example}; location / {{ proxy_wasm probe 'no_queue';\n\
                 proxy_set_header Authorization $http_authorization; proxy_set_header Cookie $http_cookie;\n\
                 proxy_set_header x-vigil-user $http_x_vigil_user; proxy_set_header x-vigil-email $http_x_vigil_email;\n\
                 proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_pass http://{upstream}; }} }}\n}}\n",
            wasm = wasm.display()
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let _ = Command::new("chmod").args(["0644", conf_path.to_str().unwrap()]).status();
        let mut child = Command::new(bin)
            .args(["-p", dir.to_str().unwrap(), "-c", conf_path.to_str().unwrap(), "-g", "daemon off; master_process on; error_log stderr info;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let nginx = Nginx { child, dir, plain, example, stderr: rx };
        // Ready once the worker configured the probe.
        let mut log = Vec::new();
        loop {
            match nginx.stderr.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    let ready = line.contains("on_configure");
                    log.push(line);
                    if ready {
                        break;
                    }
                }
                Err(_) => panic!("nginx did not start:\n{}", log.join("\n")),
            }
        }
        nginx
    }

    /// Lines nginx logged since the last call.
    fn drain_log(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// Lines nginx logs until one contains a needle (or `wait` has passed).
    fn log_until(&self, needles: &[&str], wait: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + wait;
        let mut lines = Vec::new();
        while let Ok(line) = self.stderr.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            let found = needles.iter().any(|n| line.contains(n));
            lines.push(line);
            if found {
                break;
            }
        }
        lines
    }
}

/// What a client got: status, headers (lower-cased names), body.
#[derive(Debug, PartialEq)]
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn values(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

fn send(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Got {
    send_within(port, method, path, headers, body, Duration::from_secs(20))
}

fn send_within(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str, wait: Duration) -> Got {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).unwrap();
    socket.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = socket.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    Got { status, headers, body: body.to_string() }
}

/// The header lines of a request as the echo upstream received it (transport lines nginx adds left out).
fn received(echoed: &str) -> Vec<(String, String)> {
    let head = echoed.split("\r\n\r\n").next().unwrap_or("");
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .filter(|(k, _)| !matches!(k.as_str(), "host" | "connection" | "content-length"))
        .collect()
}

fn sim_builder(targets: &[(&str, &str)]) -> host_sim::SimBuilder {
    let mut builder = common::host_probe()
        .profile(Profile::Nginx)
        .plugin_config("no_queue")
        .shm_kv("*", Some(1 << 20), ShmEviction::Slru)
        .shm_kv("ns", Some(1 << 20), ShmEviction::Slru);
    for (name, address) in targets {
        builder = builder.cluster(*name, Cluster::real(*address));
    }
    builder.real_targets(true)
}

fn example_lines(builder: host_sim::SimBuilder) -> host_sim::SimBuilder {
    builder
        .proxy_set_header("Authorization", "$http_authorization")
        .proxy_set_header("Cookie", "$http_cookie")
        .proxy_set_header("x-vigil-user", "$http_x_vigil_user")
        .proxy_set_header("x-vigil-email", "$http_x_vigil_email")
        .proxy_set_header("Connection", "")
}

fn sim_send(sim: &mut Sim, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Outcome {
    let mut request = Request::new(method, path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    if !body.is_empty() {
        request = request.body(body.as_bytes().to_vec()).header("content-length", body.len().to_string());
    }
    let s = sim.send(0, request);
    sim.advance(Duration::from_millis(500));
    sim.outcome(s)
}

/// Lines the upstream got from host-sim, as `received` reports them for nginx.
fn sim_received(outcome: &Outcome) -> Vec<(String, String)> {
    outcome
        .upstream_request()
        .map(|u| {
            u.headers
                .iter()
                .filter(|(k, _)| !k.starts_with(':') && !matches!(k.as_str(), "host" | "connection" | "content-length"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

struct Diff {
    mismatches: Vec<String>,
}

impl Diff {
    fn check<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, real: T, sim: T) {
        if real != sim {
            self.mismatches.push(format!("{what}:\n    real nginx: {real:?}\n    host-sim:   {sim:?}"));
        }
    }
}

#[test]
fn the_nginx_profile_answers_probe_requests_as_real_nginx_does() {
    let Some(bin) = nginx_bin() else {
        eprintln!("SKIPPED: no real nginx + ngx_wasm_module at .tools/nginx-wasm/sbin/nginx (run `make nginx`, or set NGINX_BIN)");
        return;
    };
    let upstream = server(echo);
    let answering = server(|_| Some("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx: 1\r\n\r\nhi".to_string()));
    let silent = server(|_| None);
    let refused = format!("127.0.0.1:{}", free_port());
    let nginx = Nginx::start(&bin, &upstream);
    let targets = [(answering.as_str(), answering.as_str()), (silent.as_str(), silent.as_str())];
    let mut diff = Diff { mismatches: Vec::new() };

    // 1. Shared data: CAS rules, counters, deletes, CRC-32 aliases (whole key hashed, `ns/` zone included).
    let mut sim = sim_builder(&targets).build().unwrap();
    let run = format!("r{}", std::process::id());
    let kv_steps: Vec<(String, String, String, u32)> = [
        ("set", "k", "v", 5),
        ("set", "k", "v", 0),
        ("get", "k", "", 0),
        ("set", "k", "w", 0),
        ("set", "k", "w", 1),
        ("get", "k", "", 0),
        ("del", "k", "", 0),
        ("del", "k", "", 2),
        ("del", "k", "", 0),
        ("set", "k", "again", 0),
        ("get", "k", "", 0),
        ("empty", "k", "", 1),
        ("get", "k", "", 0),
    ]
    .iter()
    .map(|(op, key, value, cas)| (op.to_string(), format!("{run}-{key}"), value.to_string(), *cas))
    .chain(
        [
            ("set", "alias-29685295", "v1", 0),
            ("get", "alias-32060020", "", 0),
            ("set", "alias-32060020", "v2", 1),
            ("get", "alias-29685295", "", 0),
            ("set", "ns/k9994957", "n1", 0),
            ("get", "ns/k10060200", "", 0),
        ]
        .iter()
        .map(|(op, key, value, cas)| (op.to_string(), key.to_string(), value.to_string(), *cas)),
    )
    .collect();
    for (op, key, value, cas) in &kv_steps {
        let path = format!("/kv?op={op}&key={}&value={value}&cas={cas}", key.replace('/', "%2F"));
        let real = send(nginx.plain, "GET", &path, &[], "").body.trim_end().to_string();
        let sim_body = sim_send(&mut sim, "GET", &path, &[], "").reply().map(|r| r.body_str().trim_end().to_string()).unwrap_or_default();
        diff.check(&format!("shared data {op} {key} {value:?} cas {cas}"), real, sim_body);
    }

    // 5. Request header writes (plain location), and with the example's proxy_set_header lines.
    let header_cases: &[(&str, &[(&str, &str)])] = &[
        ("rm:x-a", &[("x-a", "1"), ("x-b", "2")]),
        ("set:x-a:v", &[("x-a", "1"), ("x-b", "2")]),
        ("set:x-a:", &[("x-a", "1")]),
        ("set:x-a:v", &[("x-a", "1"), ("x-a", "2")]),
        ("rm:x-a;set:x-a:new", &[("x-a", "1")]),
        ("rm:authorization;set:authorization:Basic x", &[("authorization", "Bearer t")]),
        ("rm:authorization;rm:cookie", &[("authorization", "Bearer t"), ("cookie", "s=1")]),
        ("map:x-new:1", &[("x-a", "1")]),
    ];
    let example_cases: &[(&str, &[(&str, &str)])] = &[
        // vigil's way: blank its credential, blank then set an identity header the client spoofed.
        ("set:authorization:;set:x-vigil-user:;set:x-vigil-user:alice", &[("authorization", "Bearer t"), ("x-vigil-user", "mallory")]),
        // The same with two spoofed copies.
        ("set:x-vigil-user:;set:x-vigil-user:alice", &[("x-vigil-user", "mallory"), ("X-Vigil-User", "eve")]),
        // A cookie header kept in part, and two cookie lines.
        ("set:cookie:theme=dark", &[("cookie", "theme=dark; vigil_session=t")]),
        ("set:cookie:theme=dark", &[("cookie", "theme=dark"), ("cookie", "vigil_session=t")]),
        ("set:x-vigil-email:", &[]),
    ];
    for (location, cases) in [("plain", header_cases), ("example", example_cases)] {
        let mut sim = match location {
            "plain" => sim_builder(&targets).build().unwrap(),
            _ => example_lines(sim_builder(&targets)).build().unwrap(),
        };
        let port = if location == "plain" { nginx.plain } else { nginx.example };
        for (ops, headers) in cases.iter() {
            let path = format!("/hdr?do={}", ops.replace(':', "%3A").replace(';', "%3B").replace(' ', "%20"));
            let real = send(port, "GET", &path, headers, "");
            let outcome = sim_send(&mut sim, "GET", &path, headers, "");
            diff.check(&format!("{location} headers {ops} (sent {headers:?}): upstream received"), received(&real.body), sim_received(&outcome));
            // host-sim lower-cases names; nginx writes a built-in header's canonical name (`Authorization`).
            let sim_trace = outcome.reply().and_then(|r| r.header("x-probe-trace")).unwrap_or_default().to_ascii_lowercase();
            diff.check(&format!("{location} headers {ops}: the filter saw"), real.header("x-probe-trace").unwrap_or_default().to_ascii_lowercase(), sim_trace);
        }
    }

    // 6. Bodies: the callbacks of a GET and of a POST.
    let mut sim = sim_builder(&targets).build().unwrap();
    for (method, body) in [("GET", ""), ("POST", "payload")] {
        let real = send(nginx.plain, method, "/", &[], body);
        let outcome = sim_send(&mut sim, method, "/", &[], body);
        let sim_trace = outcome.reply().and_then(|r| r.header("x-probe-trace")).unwrap_or_default().to_string();
        diff.check(&format!("{method} callbacks"), real.header("x-probe-trace").unwrap_or_default().to_string(), sim_trace);
    }

    // 7. Callout results and :dispatch_status; 4. auto-resume after the last call.
    for (target, timeout) in [(answering.as_str(), "1000"), (refused.as_str(), "1000"), (silent.as_str(), "300")] {
        let path = format!("/callout-status/{target}");
        let headers = [("x-timeout-ms", timeout), ("x-no-body", "1")];
        let real = send(nginx.plain, "GET", &path, &headers, "");
        let outcome = sim_send(&mut sim, "GET", &path, &headers, "");
        let sim_body = outcome.reply().map(|r| r.body_str()).unwrap_or_default();
        diff.check(&format!("call to {target}: the response map"), real.body.trim_end().to_string(), sim_body.trim_end().to_string());
    }
    let path = format!("/callout-idle/{answering}");
    let real = send(nginx.plain, "GET", &path, &[], "");
    let outcome = sim_send(&mut sim, "GET", &path, &[], "");
    diff.check("a request whose callback did nothing: forwarded", (real.status, real.body.starts_with("GET /callout-idle")), (outcome.status().unwrap_or(0), outcome.is_forwarded()));

    // 9. Local replies.
    for path in ["/local-cookies", "/local-cookies-late"] {
        let real = send(nginx.plain, "GET", path, &[], "");
        let reply = sim_send(&mut sim, "GET", path, &[], "").reply().cloned().unwrap();
        let sim_got = (reply.status, reply.header_values("set-cookie").iter().map(|s| s.to_string()).collect::<Vec<_>>(), reply.body_str());
        let real_got = (real.status, real.values("set-cookie").iter().map(|s| s.to_string()).collect::<Vec<_>>(), real.body.clone());
        diff.check(&format!("local reply {path}"), real_got, sim_got);
    }

    // 11. A trap: 500, then a fresh instance serves the next request.
    let real = (send(nginx.plain, "GET", "/trap", &[], "").status, send(nginx.plain, "GET", "/", &[], "").status);
    let outcome = (sim_send(&mut sim, "GET", "/trap", &[], "").status(), sim_send(&mut sim, "GET", "/", &[], "").status());
    diff.check("a trap, then a request", (Some(real.0), Some(real.1)), outcome);

    let log = nginx.drain_log();
    let crashed: Vec<&String> = log.iter().filter(|l| l.contains("exited on signal")).collect();
    assert!(crashed.is_empty(), "the real nginx crashed: {crashed:?}\n{}\n\nmismatches so far:\n  {}", log.join("\n"), diff.mismatches.join("\n  "));
    assert!(diff.mismatches.is_empty(), "host-sim's nginx profile differs from real nginx:\n  {}", diff.mismatches.join("\n  "));
}

/// How one request ended, in words both sides can produce.
fn ending(status: Option<u16>, aborted: bool, spinning: bool) -> String {
    match (aborted, spinning) {
        (true, _) => "the worker aborts (SIGABRT)".to_string(),
        (_, true) => "the worker spins on send() returned zero".to_string(),
        _ => format!("answered {status:?}"),
    }
}

#[test]
fn timed_out_calls_break_the_request_as_in_real_nginx() {
    let Some(bin) = nginx_bin() else {
        eprintln!("SKIPPED: no real nginx + ngx_wasm_module at .tools/nginx-wasm/sbin/nginx (run `make nginx`, or set NGINX_BIN)");
        return;
    };
    let upstream = server(echo);
    let silent = server(|_| None);
    let mut diff = Diff { mismatches: Vec::new() };
    // (chain length, what the last callback does, whether the calls carry a body)
    let cases = [(1, "local", false), (2, "local", false), (2, "resume", false), (1, "local", true), (1, "resume", true), (2, "resume", true)];
    for (calls, then, body) in cases {
        let path = format!("/callout-chain/{silent}/{calls}/{then}");
        let mut headers = vec![("x-timeout-ms", "200"), ("x-quiet", "1")];
        if !body {
            headers.push(("x-no-body", "1"));
        }
        // A fresh nginx each time: an aborted or spinning worker is not worth reusing.
        let nginx = Nginx::start(&bin, &upstream);
        let got = send_within(nginx.plain, "GET", &path, &headers, "", Duration::from_secs(3));
        let log = if got.status == 0 {
            nginx.log_until(&["exited on signal", "send() returned zero"], Duration::from_secs(3))
        } else {
            nginx.drain_log()
        };
        let real = ending(
            (got.status != 0).then_some(got.status),
            log.iter().any(|l| l.contains("exited on signal 6")),
            log.iter().any(|l| l.contains("send() returned zero")),
        );
        drop(nginx);
        let mut sim = sim_builder(&[(silent.as_str(), silent.as_str())]).build().unwrap();
        let outcome = sim_send(&mut sim, "GET", &path, &headers, "");
        let crashes = sim.take_host_crashes();
        let sim_end = ending(
            outcome.status(),
            crashes.iter().any(|c| c.hostcall == "proxy_send_local_response"),
            crashes.iter().any(|c| c.hostcall == "proxy_http_call"),
        );
        diff.check(&format!("{calls} timed-out call(s){}, then {then}", if body { " with a body" } else { "" }), real, sim_end);
    }
    assert!(diff.mismatches.is_empty(), "host-sim's nginx profile differs from real nginx:\n  {}", diff.mismatches.join("\n  "));
}

#[test]
fn a_root_acting_on_a_request_crashes_the_worker_as_in_real_nginx() {
    let Some(bin) = nginx_bin() else {
        eprintln!("SKIPPED: no real nginx + ngx_wasm_module at .tools/nginx-wasm/sbin/nginx (run `make nginx`, or set NGINX_BIN)");
        return;
    };
    let upstream = server(echo);
    let answering = server(|_| Some("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi".to_string()));
    let mut diff = Diff { mismatches: Vec::new() };
    let cases = [
        // The root acts on the request a tick found paused (set_effective_context is a no-op in nginx).
        ("no_queue;tick=100;tick_action=resume".to_string(), "/pause-for-root"),
        ("no_queue;tick=100;tick_action=local".to_string(), "/pause-for-root"),
        ("no_queue;tick=100;tick_action=read-header".to_string(), "/pause-for-root"),
        // The root dispatches from a tick (fine), then again from that call's response (not fine).
        (format!("no_queue;tick=100;root_dispatch={answering}"), "/local/200"),
        (format!("no_queue;tick=100;root_dispatch={answering};root_then=chain"), "/local/200"),
    ];
    for (config, path) in cases {
        let nginx = Nginx::start_with(&bin, &upstream, &config);
        let got = send_within(nginx.plain, "GET", path, &[], "", Duration::from_secs(1));
        let log = nginx.log_until(&["exited on signal"], Duration::from_millis(1500));
        let signal = log.iter().find_map(|l| l.split("exited on signal ").nth(1)).map(str::to_string);
        let real = match signal {
            Some(signal) => format!("the worker dies (signal {signal})"),
            None => format!("answered {:?}", (got.status != 0).then_some(got.status)),
        };
        drop(nginx);
        let mut sim = sim_builder(&[(answering.as_str(), answering.as_str())]).plugin_config(config.clone()).build().unwrap();
        let s = sim.send(0, Request::get(path));
        sim.advance(Duration::from_millis(300));
        let crashes = sim.take_host_crashes();
        let sim_end = match crashes.first() {
            Some(_) => "the worker dies".to_string(),
            None => format!("answered {:?}", sim.outcome(s).status()),
        };
        let real = real.split(" (signal").next().unwrap_or_default().to_string();
        diff.check(&format!("{config} {path}"), real, sim_end);
    }
    assert!(diff.mismatches.is_empty(), "host-sim's nginx profile differs from real nginx:\n  {}", diff.mismatches.join("\n  "));
}
