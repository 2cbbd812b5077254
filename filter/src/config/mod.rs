//! Plugin configuration: the validated model and its JSON parser.

pub mod duration;
pub mod endpoint;
mod keypath;
pub mod model;
pub mod model_mcp;
pub mod parse;
mod parse_login;
mod parse_mcp;
pub mod raw;

pub use duration::parse_duration;
pub use model::*;
pub use model_mcp::*;
pub use parse::{parse, ConfigError};
