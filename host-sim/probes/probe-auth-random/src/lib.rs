//! Written against the SDK's documented API only (after its `http_auth_random`
//! example): every request pauses, asks the `httpbin` cluster for random bytes,
//! then answers 403 when the first byte is even, or resumes when it is odd.

use proxy_wasm::traits::*;
use proxy_wasm::types::*;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(AuthRandom) });
}}

struct AuthRandom;

impl HttpContext for AuthRandom {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        match self.dispatch_http_call(
            "httpbin",
            vec![(":method", "GET"), (":path", "/bytes/1"), (":authority", "httpbin.org")],
            None,
            vec![],
            Duration::from_secs(1),
        ) {
            Ok(_) => Action::Pause,
            Err(e) => panic!("{:?}", e),
        }
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        self.set_http_response_header("Powered-By", Some("proxy-wasm"));
        Action::Continue
    }
}

impl Context for AuthRandom {
    fn on_http_call_response(&mut self, _: u32, _: usize, body_size: usize, _: usize) {
        if let Some(body) = self.get_http_call_response_body(0, body_size) {
            if !body.is_empty() && body[0] % 2 == 0 {
                log::info!("Access granted.");
                self.resume_http_request();
                return;
            }
        }
        log::info!("Access forbidden.");
        self.send_http_response(403, vec![("Powered-By", "proxy-wasm")], Some(b"Access forbidden.\n"));
    }
}
