//! Plugin configuration: the validated model and its JSON parser.

pub mod duration;
pub mod model;

pub use duration::parse_duration;
pub use model::*;
