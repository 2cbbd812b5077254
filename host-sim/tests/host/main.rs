//! host-sim's own tests, driven through probe filters built from source.

mod abi;
mod auth_random;
mod callouts;
mod common;
mod determinism;
mod failure;
mod nginx;
mod shared;
mod streams;
mod topology;
