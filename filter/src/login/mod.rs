//! Login, callback, logout and back-channel logout (OIDC authorization code
//! flow with PKCE), as pure functions and small state machines: they take
//! the request, the configuration, shared data, the proxy clock and a random
//! source, and return replies, cookies and IdP calls as values. The adapter
//! performs the calls and feeds the answers back.

pub mod authorize;
pub mod backchannel;
pub mod callback;
pub mod cookies;
pub mod error;
pub mod fetch;
pub mod form;
pub mod id_token;
pub mod idp_call;
pub mod idp_jwt;
pub mod jwks;
pub mod logout;
pub mod pkce;
pub mod provider;
pub mod request;
pub mod return_url;
pub mod route;
pub mod runtime;
pub mod seen;
pub mod state;
pub mod test_signing;

#[cfg(test)]
pub(crate) mod testkeys;

pub use backchannel::{backchannel_logout, BackchannelDone, LoggedOut};
pub use callback::{Callback, CallbackDone, CallbackStep, LoggedIn, LoginContext};
pub use error::LoginError;
pub use idp_call::{IdpRequest, LoginCallKind};
pub use logout::{logout, LogoutDone};
pub use request::RequestView;
pub use route::{route, LoginRoute};
pub use runtime::LoginVm;
