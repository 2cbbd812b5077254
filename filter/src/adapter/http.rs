//! The per-request context: hands the request to the VM state and maps its
//! answer to an `Action`.

use super::login::BodyAction;
use super::vm::{RequestAction, SharedVm, WaitOutcome};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

pub struct Http {
    id: u32,
    /// `None` only if the host opened a stream on a VM whose configuration
    /// was rejected; such requests fail closed with 503.
    vm: Option<SharedVm>,
}

impl Http {
    pub fn new(id: u32, vm: Option<SharedVm>) -> Http {
        Http { id, vm }
    }
}

impl Context for Http {
    /// On nginx, the answer to this request's wait call (see `Vm::on_wait_answer`);
    /// the request makes no other call.
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, _body_size: usize, _num_trailers: usize) {
        super::host::enter_stream(self.id);
        if let Some(Ok(mut vm)) = self.vm.as_ref().map(|vm| vm.try_borrow_mut()) {
            let outcome = if num_headers > 0 && super::host::call_dispatch_status().is_none_or(|s| s == "ok") {
                WaitOutcome::Answered
            } else {
                WaitOutcome::Failed { timed_out: super::host::call_dispatch_status().as_deref() == Some("timeout") }
            };
            vm.on_wait_answer(self.id, token, outcome);
        }
    }

    fn on_done(&mut self) -> bool {
        let _ = super::host::take_late_headers(self.id);
        // The client may be gone while the request waits for a revalidation:
        // forget it so nobody resumes a context that no longer exists.
        if let Some(Ok(mut vm)) = self.vm.as_ref().map(|vm| vm.try_borrow_mut()) {
            vm.forget_stream(self.id);
        }
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        super::host::enter_stream(self.id);
        let Some(Ok(mut vm)) = self.vm.as_ref().map(|vm| vm.try_borrow_mut()) else {
            // No configuration (or a host that re-enters): fail closed, never trap.
            let _ = proxy_wasm::hostcalls::send_http_response(503, vec![("content-type", "text/plain")], Some(b"vigil is not configured\n"));
            return Action::Pause;
        };
        match vm.on_request(self.id, end_of_stream) {
            RequestAction::Continue => Action::Continue,
            RequestAction::Pause | RequestAction::Replied => Action::Pause,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        super::host::enter_stream(self.id);
        let Some(Ok(mut vm)) = self.vm.as_ref().map(|vm| vm.try_borrow_mut()) else {
            return Action::Continue;
        };
        match vm.on_request_body(self.id, body_size, end_of_stream) {
            BodyAction::Continue => Action::Continue,
            // Envoy buffers and calls again with the cumulative size.
            BodyAction::Buffer | BodyAction::Replied => Action::Pause,
        }
    }

    /// nginx: add what this stream's local reply could not carry (see `host::send_local`).
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in super::host::take_late_headers(self.id) {
            let _ = super::host::add_response_header(&name, &value);
        }
        Action::Continue
    }
}
