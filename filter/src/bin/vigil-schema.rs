//! Prints the JSON Schema of vigil's plugin configuration, derived from the
//! raw config types the parser reads, so the schema cannot drift from it.
//! Build with `cargo run -p vigil-filter --features schema --bin vigil-schema`.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let schema = vigil::config::raw::json_schema();
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{schema}") {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-schema: {e}");
            ExitCode::FAILURE
        }
    }
}
