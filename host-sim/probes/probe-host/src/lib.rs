//! Probe filter for host-sim's own tests. The plugin configuration is `key=value;…` (`reject`, `trap_start`,
//! `tick=<ms>`, `tick_twice`, `queue=<name>`, `no_queue`, `tick_action=<action>`, `root_dispatch=<target>`,
//! `root_then=<chain|local|resume>`); each request's path picks a behaviour (see `on_http_request_headers`).
//! Every request keeps a trace of its callbacks, sent back in the `x-probe-trace` response header, so a test
//! can compare host-sim with a real proxy. Panics are deliberate here: they are how a filter traps.

use proxy_wasm::traits::*;
use proxy_wasm::types::*;
use proxy_wasm::types::MapType;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Shared {
    config: String,
    queue: Option<u32>,
    last_cas: Option<u32>,
    counter: Option<u32>,
    gauge: Option<u32>,
    histogram: Option<u32>,
    /// The last request parked by `/pause-for-root`, for the root's `tick_action`.
    paused: Option<u32>,
    root_dispatched: bool,
}

#[derive(Default)]
struct Root {
    shared: Rc<RefCell<Shared>>,
}

fn setting(config: &str, key: &str) -> Option<String> {
    config.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _: usize) -> bool {
        log::info!("on_vm_start");
        true
    }

    fn on_configure(&mut self, _: usize) -> bool {
        let config = self.get_plugin_configuration().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        log::info!("on_configure config={config}");
        if setting(&config, "reject").is_some() {
            log::error!("rejecting configuration: reject requested");
            return false;
        }
        if setting(&config, "trap_start").is_some() {
            panic!("trap during on_configure");
        }
        if let Some(ms) = setting(&config, "tick").and_then(|v| v.parse().ok()) {
            self.set_tick_period(Duration::from_millis(ms));
            if setting(&config, "tick_twice").is_some() {
                self.set_tick_period(Duration::from_millis(ms + 1));
            }
        }
        let queue = match setting(&config, "no_queue") {
            Some(_) => 0,
            None => self.register_shared_queue(&setting(&config, "queue").unwrap_or_else(|| "q".to_string())),
        };
        let mut shared = self.shared.borrow_mut();
        shared.queue = Some(queue);
        shared.counter = proxy_wasm::hostcalls::define_metric(MetricType::Counter, "probe_requests").ok();
        shared.gauge = proxy_wasm::hostcalls::define_metric(MetricType::Gauge, "probe_gauge").ok();
        shared.histogram = proxy_wasm::hostcalls::define_metric(MetricType::Histogram, "probe_latency").ok();
        log::info!("queue token={queue} counter={:?} gauge={:?} histogram={:?}", shared.counter, shared.gauge, shared.histogram);
        shared.config = config;
        true
    }

    fn on_tick(&mut self) {
        log::info!("tick at={}", now_ns(self));
        let config = self.shared.borrow().config.clone();
        if setting(&config, "no_queue").is_none() {
            if let Some(queue) = self.shared.borrow().queue {
                while let Ok(Some(item)) = self.dequeue_shared_queue(queue) {
                    log::info!("tick dequeued {}", String::from_utf8_lossy(&item));
                }
            }
        }
        if let Some(target) = setting(&config, "root_dispatch") {
            if !self.shared.borrow().root_dispatched {
                self.shared.borrow_mut().root_dispatched = true;
                let token = self.dispatch_http_call(&target, vec![(":method", "GET"), (":path", "/root")], None, vec![], Duration::from_secs(1));
                log::info!("root dispatched {token:?}");
            }
        }
        let paused = self.shared.borrow_mut().paused.take();
        if let (Some(action), Some(ctx)) = (setting(&config, "tick_action"), paused) {
            log::info!("tick acts on ctx={ctx}: {action}");
            let _ = proxy_wasm::hostcalls::set_effective_context(ctx);
            root_action(&action);
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        let item = self.dequeue_shared_queue(queue_id).ok().flatten().map(|b| String::from_utf8_lossy(&b).into_owned());
        log::info!("queue_ready queue={queue_id} item={item:?}");
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe {
            id: context_id,
            shared: self.shared.clone(),
            path: String::new(),
            status_check: false,
            trace: Vec::new(),
            chain_left: 0,
            quiet: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, _: usize, _: usize) {
        let status = proxy_wasm::hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":dispatch_status").ok().flatten();
        log::info!("root callout_response token={token} headers={num_headers} dispatch_status={status:?}");
        let config = self.shared.borrow().config.clone();
        match setting(&config, "root_then").as_deref() {
            Some("chain") => {
                let target = setting(&config, "root_dispatch").unwrap_or_default();
                let again = self.dispatch_http_call(&target, vec![(":method", "GET"), (":path", "/again")], None, vec![], Duration::from_secs(1));
                log::info!("root chained {again:?}");
            }
            Some(action) => root_action(action),
            None => {}
        }
    }
}

/// What the root does to "a request" (its effective context, which nginx ignores).
fn root_action(action: &str) {
    match action {
        "resume" => {
            let _ = proxy_wasm::hostcalls::resume_http_request();
        }
        "local" => {
            let _ = proxy_wasm::hostcalls::send_http_response(403, vec![], Some(b"from the root"));
        }
        "read-header" => {
            let value = proxy_wasm::hostcalls::get_map_value(MapType::HttpRequestHeaders, ":path");
            log::info!("root read {value:?}");
        }
        "write-header" => {
            let _ = proxy_wasm::hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-root", Some("1"));
        }
        "body" => {
            let body = proxy_wasm::hostcalls::get_buffer(BufferType::HttpRequestBody, 0, 100);
            log::info!("root body {body:?}");
        }
        other => log::info!("unknown root action {other}"),
    }
}

fn now_ns(ctx: &dyn Context) -> u128 {
    ctx.get_current_time().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_value(map: u32, key: *const u8, key_len: usize, ret: *mut *mut u8, ret_len: *mut usize) -> u32;
}

/// A call-response header, `None` for any status but Ok (the SDK panics on BadArgument).
fn call_response_header(name: &str) -> Option<String> {
    let mut ptr: *mut u8 = std::ptr::null_mut();
    let mut len: usize = 0;
    let status = unsafe { proxy_get_header_map_value(MapType::HttpCallResponseHeaders as u32, name.as_ptr(), name.len(), &mut ptr, &mut len) };
    if status != 0 || ptr.is_null() {
        return None;
    }
    let bytes = unsafe { Vec::from_raw_parts(ptr, len, len) };
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn random_get(buf: *mut u8, len: usize) -> u16;
}

struct Probe {
    id: u32,
    shared: Rc<RefCell<Shared>>,
    path: String,
    status_check: bool,
    /// Callbacks seen, for the `x-probe-trace` response header.
    trace: Vec<String>,
    /// `/callout-chain`: calls still to make.
    chain_left: u32,
    /// `x-quiet` request header: the response callbacks change nothing.
    quiet: bool,
}

/// `a=1&b=2` of the path's query, `%2F` and `%3A` decoded.
fn query(path: &str, name: &str) -> Option<String> {
    let (_, q) = path.split_once('?')?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| v.replace("%2F", "/").replace("%3A", ":").replace("%20", " ").replace("%3B", ";"))
    })
}

impl Probe {
    fn reply(&self, status: u32, body: &str) -> Action {
        self.send_http_response(status, vec![("x-probe-local", "1")], Some(body.as_bytes()));
        Action::Pause
    }

    fn segment(&self, i: usize) -> String {
        self.path.split('/').nth(i).unwrap_or("").to_string()
    }

    fn trace(&mut self, what: String) {
        self.trace.push(what);
    }

    /// `/kv?op=get|set|del|empty&key=K&value=V&cas=N`: one shared-data call, its result as the reply body.
    fn kv(&mut self) -> Action {
        let q = |n: &str| query(&self.path, n);
        let key = q("key").unwrap_or_default();
        let cas = q("cas").and_then(|c| c.parse::<u32>().ok());
        let body = match q("op").as_deref() {
            Some("get") => {
                let (value, cas) = self.get_shared_data(&key);
                format!("value={:?} cas={cas:?}", value.map(|v| String::from_utf8_lossy(&v).into_owned()))
            }
            Some("set") => format!("{:?}", self.set_shared_data(&key, Some(q("value").unwrap_or_default().as_bytes()), cas)),
            Some("empty") => format!("{:?}", self.set_shared_data(&key, Some(b""), cas)),
            Some("del") => format!("{:?}", self.remove_shared_data(&key, cas)),
            other => format!("unknown op {other:?}"),
        };
        self.reply(200, &body)
    }

    /// `/hdr?do=rm:N;set:N:V;add:N:V;map:N:V`: request header writes, then `get` of each name and the pairs
    /// (pseudo-headers, Host and Connection left out) go into the trace; the request goes upstream.
    fn headers(&mut self) -> Action {
        let ops = query(&self.path, "do").unwrap_or_default();
        let mut names = Vec::new();
        for op in ops.split(';').filter(|o| !o.is_empty()) {
            let parts: Vec<&str> = op.splitn(3, ':').collect();
            let (verb, name, value) = (parts[0], parts.get(1).copied().unwrap_or(""), parts.get(2).copied().unwrap_or(""));
            match verb {
                "rm" => self.set_http_request_header(name, None),
                "set" => self.set_http_request_header(name, Some(value)),
                "add" => self.add_http_request_header(name, value),
                "map" => {
                    let mut all = self.get_http_request_headers();
                    all.push((name.to_string(), value.to_string()));
                    self.set_http_request_headers(all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect());
                }
                other => log::info!("unknown header op {other}"),
            }
            if !names.contains(&name.to_string()) {
                names.push(name.to_string());
            }
        }
        for name in names {
            let value = self.get_http_request_header(&name);
            self.trace(format!("get({name})={}", value.unwrap_or_else(|| "-".into())));
        }
        // Host and Connection (nginx keeps the client's lines) are left out: they depend on the client.
        let pairs: Vec<String> = self
            .get_http_request_headers()
            .into_iter()
            .filter(|(k, _)| !k.starts_with(':') && !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("connection"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        self.trace(format!("pairs=[{}]", pairs.join(",")));
        Action::Continue
    }

    fn callout(&mut self, cluster: &str, authority: Option<&str>) -> Result<u32, Status> {
        let timeout = self.get_http_request_header("x-timeout-ms").and_then(|v| v.parse().ok()).unwrap_or(1000);
        let mut headers = vec![(":method", "GET"), (":path", "/probe")];
        if let Some(a) = authority {
            headers.push((":authority", a));
        }
        // `x-no-body`: a call without a body (ngx_wasm_module's timeout bugs depend on it).
        let body: Option<&[u8]> = if self.get_http_request_header("x-no-body").is_some() { None } else { Some(b"ping") };
        self.dispatch_http_call(cluster, headers, body, vec![], Duration::from_millis(timeout))
    }
}

impl Context for Probe {
    fn on_done(&mut self) -> bool {
        log::info!("on_done ctx={}", self.id);
        true
    }

    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _: usize) {
        // A failed call (0 headers) has no response map: Envoy answers BadArgument, which the SDK turns into a panic.
        let status = if num_headers > 0 { self.get_http_call_response_header(":status").unwrap_or_default() } else { String::new() };
        let body = if num_headers > 0 {
            self.get_http_call_response_body(0, body_size).map(|b| String::from_utf8_lossy(&b).into_owned())
        } else {
            None
        };
        log::info!("callout_response token={token} headers={num_headers} body={body_size} status={status}");
        // Envoy has no response map for a failed call (BadArgument, on which the SDK panics): read it raw.
        let dispatch_status = call_response_header(":dispatch_status").unwrap_or_else(|| "-".into());
        self.trace(format!("call({num_headers},{dispatch_status})"));
        if num_headers == 0 && self.status_check {
            let (code, message) = self.get_grpc_status();
            log::info!("callout failed get_status={code} {}", message.unwrap_or_default());
        }
        match self.path.as_str() {
            p if p.starts_with("/callout-idle") || p.starts_with("/callout-continue") => {}
            p if p.starts_with("/callout-status") => {
                let pairs: Vec<String> = self.get_http_call_response_headers().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.send_http_response(200, vec![], Some(format!("n={num_headers} [{}]", pairs.join(",")).as_bytes()));
            }
            p if p.starts_with("/callout-chain") => {
                if self.chain_left > 0 {
                    self.chain_left -= 1;
                    let target = self.segment(2);
                    let token = self.callout(&target, None);
                    log::info!("chained {token:?}");
                    return;
                }
                match self.segment(4).as_str() {
                    "resume" => self.resume_http_request(),
                    "local" => self.send_http_response(200, vec![], Some(b"chain done")),
                    _ => {}
                }
            }
            p if p.starts_with("/callout-resume-read") => {
                self.resume_http_request();
                let value = self.get_http_request_header("x-after-resume");
                log::info!("after resume read {value:?}");
            }
            p if p.starts_with("/callout-resume") => {
                self.set_http_request_header("x-callout-status", Some(&status));
                self.resume_http_request();
            }
            _ => {
                let text = format!("callout status={status} headers={num_headers} body={}", body.unwrap_or_default());
                self.send_http_response(200, vec![], Some(text.as_bytes()));
            }
        }
    }
}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _: usize, eos: bool) -> Action {
        self.path = self.get_http_request_header(":path").unwrap_or_default();
        self.status_check = self.get_http_request_header("x-get-status").is_some();
        self.quiet = self.get_http_request_header("x-quiet").is_some();
        log::info!("request_headers ctx={} path={} eos={eos}", self.id, self.path);
        self.trace(format!("headers(eos={eos})"));
        let shared = self.shared.clone();
        if let Some(counter) = shared.borrow().counter {
            let _ = proxy_wasm::hostcalls::increment_metric(counter, 1);
        }
        let path = self.path.clone();
        let route = path.split('/').nth(1).unwrap_or("");
        match route.split('?').next().unwrap_or("") {
            "trap" => panic!("probe trap requested"),
            "local" => {
                let status = self.segment(2).parse().unwrap_or(200);
                self.reply(status, "local body")
            }
            "reset" => {
                self.reset_http_request();
                Action::Pause
            }
            "pause" => Action::Pause,
            "pause-for-root" => {
                shared.borrow_mut().paused = Some(self.id);
                Action::Pause
            }
            "kv" => self.kv(),
            "hdr" => self.headers(),
            "tick-from-stream" => {
                let _ = proxy_wasm::hostcalls::set_tick_period(Duration::from_millis(10));
                Action::Continue
            }
            "local-twice" => {
                self.send_http_response(200, vec![], Some(b"one"));
                self.send_http_response(201, vec![], Some(b"two"));
                Action::Pause
            }
            "local-cookies" | "local-cookies-late" => {
                self.send_http_response(200, vec![("set-cookie", "a=1"), ("set-cookie", "b=2"), ("x-one", "1")], Some(b"cookies"));
                Action::Pause
            }
            "callout-chain" => {
                self.chain_left = self.segment(3).parse::<u32>().unwrap_or(1).saturating_sub(1);
                match self.callout(&self.segment(2), None) {
                    Ok(token) => {
                        log::info!("dispatched token={token}");
                        Action::Pause
                    }
                    Err(e) => self.reply(500, &format!("dispatch failed {e:?}")),
                }
            }
            "callout-idle" | "callout-status" | "callout-continue" => {
                let cluster = self.segment(2);
                let authority = self.get_http_request_header("x-authority");
                match self.callout(&cluster, authority.as_deref()) {
                    Ok(token) => {
                        log::info!("dispatched token={token}");
                        // `callout-continue`: return Continue anyway (nginx still pauses for the call).
                        if path.starts_with("/callout-continue") { Action::Continue } else { Action::Pause }
                    }
                    Err(e) => self.reply(500, &format!("dispatch failed {e:?}")),
                }
            }
            "callout" | "callout-resume" | "callout-resume-read" => {
                let cluster = self.segment(2);
                match self.callout(&cluster, Some("probe.example")) {
                    Ok(token) => {
                        log::info!("dispatched token={token}");
                        Action::Pause
                    }
                    Err(e) => self.reply(500, &format!("dispatch failed {e:?}")),
                }
            }
            "dispatch-no-authority" => match self.callout(&self.segment(2), None) {
                Ok(token) => self.reply(200, &format!("dispatched token={token}")),
                Err(e) => self.reply(400, &format!("dispatch failed {e:?}")),
            },
            "cas-read" => {
                let (value, cas) = self.get_shared_data(&self.segment(2));
                shared.borrow_mut().last_cas = cas;
                self.reply(200, &format!("value={:?} cas={cas:?}", value.map(|v| String::from_utf8_lossy(&v).into_owned())))
            }
            "cas-write" => {
                let cas = shared.borrow().last_cas;
                match self.set_shared_data(&self.segment(2), Some(self.segment(3).as_bytes()), cas) {
                    Ok(()) => self.reply(200, "written"),
                    Err(e) => self.reply(409, &format!("{e:?}")),
                }
            }
            "remove" => {
                let key = self.segment(2);
                let removed = self.remove_shared_data(&key, None);
                let (value, cas) = self.get_shared_data(&key);
                self.reply(200, &format!("removed={removed:?} value={:?} cas={}", value.map(|v| v.len()), cas.is_some()))
            }
            "enqueue" => {
                let queue = shared.borrow().queue.unwrap_or(0);
                let result = self.enqueue_shared_queue(queue, Some(self.segment(2).as_bytes()));
                self.reply(200, &format!("enqueue {result:?}"))
            }
            "resolve" => {
                let found = self.resolve_shared_queue("", "q");
                self.reply(200, &format!("resolved={found:?}"))
            }
            "time" => {
                let wasi = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
                self.reply(200, &format!("host={} wasi={wasi}", now_ns(self)))
            }
            "random" => {
                let mut bytes = [0u8; 8];
                unsafe { random_get(bytes.as_mut_ptr(), bytes.len()) };
                self.reply(200, &format!("{bytes:?}"))
            }
            "env" => self.reply(200, &format!("env={:?}", std::env::var("PROBE_ENV").ok())),
            "config" => {
                let late = proxy_wasm::hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
                    .ok()
                    .flatten()
                    .is_some();
                let cfg = shared.borrow().config.clone();
                self.reply(200, &format!("config={cfg} late={late}"))
            }
            "metrics" => {
                let s = shared.borrow();
                if let Some(g) = s.gauge {
                    let _ = proxy_wasm::hostcalls::record_metric(g, 42);
                }
                if let Some(h) = s.histogram {
                    let _ = proxy_wasm::hostcalls::record_metric(h, 7);
                }
                let bad = s.counter.map(|c| proxy_wasm::hostcalls::increment_metric(c, -1));
                let total = s.counter.map(proxy_wasm::hostcalls::get_metric);
                drop(s);
                self.reply(200, &format!("negative={bad:?} total={total:?}"))
            }
            "resume-then-read" => {
                self.resume_http_request();
                let _ = self.get_http_request_header("x-anything");
                Action::Continue
            }
            "set-headers" => {
                self.set_http_request_header("X-Added", Some("yes"));
                self.add_http_request_header("x-multi", "2");
                self.set_http_request_header("x-remove-me", None);
                let multi = self.get_http_request_header("x-multi");
                log::info!("first x-multi={multi:?}");
                Action::Continue
            }
            _ => {
                self.set_http_request_header("x-probe", Some("passed"));
                Action::Continue
            }
        }
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        log::info!("request_body size={size} eos={eos}");
        self.trace(format!("body({size},eos={eos})"));
        if !self.path.starts_with("/body") {
            return Action::Continue;
        }
        if !eos {
            return Action::Pause;
        }
        if self.path.starts_with("/body-local") {
            // Headers went on; the whole body decides: a local reply (what vigil's back-channel path does).
            return self.reply(403, "refused after the body");
        }
        let body = self.get_http_request_body(0, size).unwrap_or_default();
        let upper = String::from_utf8_lossy(&body).to_uppercase();
        self.set_http_request_body(0, size, upper.as_bytes());
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, count: usize) -> Action {
        let checksum = self.get_http_request_trailer("x-checksum");
        log::info!("request_trailers count={count} x-checksum={checksum:?}");
        if self.path.starts_with("/trailers") {
            self.set_http_request_trailer("x-probe-trailer", Some("added"));
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, eos: bool) -> Action {
        let status = self.get_http_response_header(":status").unwrap_or_default();
        log::info!("response_headers ctx={} status={status} eos={eos}", self.id);
        if self.quiet {
            return Action::Continue;
        }
        self.set_http_response_header("x-probe-response", Some(&status));
        let trace = self.trace.join(" ");
        self.add_http_response_header("x-probe-trace", &trace);
        if self.path.starts_with("/local-cookies-late") {
            self.add_http_response_header("set-cookie", "c=3");
        }
        if self.path.starts_with("/local-in-response") {
            self.send_http_response(418, vec![], Some(b"late"));
        }
        if let Some(target) = self.path.strip_prefix("/dispatch-in-response/") {
            let token = self.dispatch_http_call(target, vec![(":method", "GET"), (":path", "/late")], None, vec![], Duration::from_secs(1));
            log::info!("late dispatch {token:?}");
        }
        if self.path.starts_with("/late-read") {
            let value = self.get_http_request_header("x-anything");
            log::info!("late read {value:?}");
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        log::info!("response_body ctx={} size={size} eos={eos}", self.id);
        Action::Continue
    }

    fn on_log(&mut self) {
        log::info!("on_log ctx={}", self.id);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        log::info!("on_delete ctx={}", self.id);
    }
}
