//! `fms demo`: the main job, end to end.

use crate::CliResult;

#[derive(clap::Args)]
pub struct Args {
    /// Corpus scale (1 = the ~26,000-entity content site).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
}

pub fn run(_a: Args) -> CliResult {
    Err("demo: not implemented yet".into())
}
