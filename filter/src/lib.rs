//! vigil: a proxy-wasm HTTP filter that checks downstream tokens inline and
//! periodically revalidates the user's upstream OpenID Connect session.
//!
//! Everything outside `adapter` is pure logic with no proxy-wasm import; it is
//! unit-tested natively. The adapter exists only in the wasm32 build.

pub mod config;
pub mod metrics;
pub mod reply;
pub mod store;
pub mod session;
pub mod revalidation;
pub mod token;

#[cfg(target_arch = "wasm32")]
mod adapter;
pub mod glob;
pub mod rules;
pub mod identity;
pub mod login;
pub mod mcp;
