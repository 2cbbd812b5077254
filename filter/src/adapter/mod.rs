//! The proxy-wasm adapter: maps host callbacks onto the pure logic.
//!
//! One `Root` per VM owns the VM-wide state (`Vm`): configuration, token
//! verifier and cache, the requests waiting for a revalidation, and the
//! revalidation jobs this VM leads. IdP callouts are always dispatched from a
//! root callback, so they belong to the root context and survive the client
//! that triggered them going away (a rotated refresh token is never lost).

mod host;
mod http;
mod login;
mod metrics;
mod root;
mod vm;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(root::Root::new(context_id))
    });
}}
