//! Probe filter for host-sim's own tests. The plugin configuration is `key=value;…` (`reject`, `trap_start`,
//! `tick=<ms>`, `queue=<name>`); each request's path picks a behaviour (see `on_http_request_headers`).
//! Panics are deliberate here: they are how a filter traps.

use proxy_wasm::traits::*;
use proxy_wasm::types::*;
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

impl Context for Root {}

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
        }
        let name = setting(&config, "queue").unwrap_or_else(|| "q".to_string());
        let queue = self.register_shared_queue(&name);
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
        if let Some(queue) = self.shared.borrow().queue {
            while let Ok(Some(item)) = self.dequeue_shared_queue(queue) {
                log::info!("tick dequeued {}", String::from_utf8_lossy(&item));
            }
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        let item = self.dequeue_shared_queue(queue_id).ok().flatten().map(|b| String::from_utf8_lossy(&b).into_owned());
        log::info!("queue_ready queue={queue_id} item={item:?}");
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe { id: context_id, shared: self.shared.clone(), path: String::new(), status_check: false }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

fn now_ns(ctx: &dyn Context) -> u128 {
    ctx.get_current_time().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
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
}

impl Probe {
    fn reply(&self, status: u32, body: &str) -> Action {
        self.send_http_response(status, vec![("x-probe-local", "1")], Some(body.as_bytes()));
        Action::Pause
    }

    fn segment(&self, i: usize) -> String {
        self.path.split('/').nth(i).unwrap_or("").to_string()
    }

    fn callout(&mut self, cluster: &str, authority: Option<&str>) -> Result<u32, Status> {
        let timeout = self.get_http_request_header("x-timeout-ms").and_then(|v| v.parse().ok()).unwrap_or(1000);
        let mut headers = vec![(":method", "GET"), (":path", "/probe")];
        if let Some(a) = authority {
            headers.push((":authority", a));
        }
        self.dispatch_http_call(cluster, headers, Some(b"ping"), vec![], Duration::from_millis(timeout))
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
        if num_headers == 0 && self.status_check {
            let (code, message) = self.get_grpc_status();
            log::info!("callout failed get_status={code} {}", message.unwrap_or_default());
        }
        match self.path.as_str() {
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
        log::info!("request_headers ctx={} path={} eos={eos}", self.id, self.path);
        let shared = self.shared.clone();
        if let Some(counter) = shared.borrow().counter {
            let _ = proxy_wasm::hostcalls::increment_metric(counter, 1);
        }
        let path = self.path.clone();
        match path.split('/').nth(1).unwrap_or("") {
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
        if !self.path.starts_with("/body") {
            return Action::Continue;
        }
        if !eos {
            return Action::Pause;
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
        self.set_http_response_header("x-probe-response", Some(&status));
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
