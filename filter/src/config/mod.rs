//! Plugin configuration: the validated model and its JSON parser.

pub mod model;

pub use model::*;
