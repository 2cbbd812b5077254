//! Downstream (vigil-issued) tokens: finding them in a request, verifying
//! them, caching verified ones per VM, and minting new ones at login.

pub mod cache;
pub mod claims;
pub mod error;
pub mod extract;
pub mod mint;
pub mod verify;

pub use cache::TokenCache;
pub use claims::DownstreamClaims;
pub use error::TokenError;
pub use extract::extract_token;
pub use mint::{MintClaims, MintError, Signer};
pub use verify::{Verifier, MAX_TOKEN_LEN};
